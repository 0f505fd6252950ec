"""Panels larger than memory: long-format Parquet files read in bounded groups of whole series (pyarrow datasets).

``ParquetPanel`` scans the files once, reading only the id and covariate columns a batch at a time, to count each
series' rows (in order of first appearance) and the covariates' moments; it then cuts the series into groups of at
most ``max_rows`` rows (a longer series is a group of its own), and ``read(g)`` loads group ``g`` as a ``Panel``
with a filter on the ids (Parquet row-group statistics skip the files' other parts when they are sorted by id).

``fit_parquet`` trains an ``RNNForecaster`` one group in memory at a time: each series' target scaling is its own,
the covariates are standardised with the moments of the whole scan, each epoch visits the groups in a random order
and each group's batches in a random order (``rnr.forecast.training``), and after training each series' final state
and last values are kept as ``fit`` keeps them, so ``predict`` and ``update`` work as after ``fit``.
"""
import numpy as np
import pandas as pd
import torch

from rnr.core.checks import check_positive_int
from rnr.forecast.panel import Panel
from rnr.forecast.scaling import CovariateScaler, Scaler


def _dataset(source):
    try:
        import pyarrow.dataset as ds  # heavy: pyarrow only for Parquet panels
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        return ds.dataset(source, format="parquet")
    except (FileNotFoundError, OSError, ValueError) as e:
        raise ValueError(f"source {source!r} is not a readable Parquet file or folder ({e}); pass the path of a "
                         f".parquet file, a folder of them, or a list of files") from None


class ParquetPanel:
    """A long-format panel in Parquet, scanned once and read back a group of whole series at a time.

    Args: the column roles of ``Panel.from_frame``, and ``max_rows``: the most rows of a group (a series longer
    than that is a group of its own). Static columns must be numeric here (categories need every series at once).
    """

    def __init__(self, source, id_col: str = "unique_id", time_col: str = "ds", target="y", past=(), future=(),
                 static=(), freq=None, missing: str = "error", max_rows: int = 1_000_000, batch_rows: int = 1 << 20):
        check_positive_int(max_rows, "max_rows")
        self.dataset = _dataset(source)
        self.id_col, self.time_col = id_col, time_col
        self.targets = [target] if isinstance(target, str) else list(target)
        self.past, self.future, self.static = list(past), list(future), list(static)
        self.freq, self.missing = freq, missing
        schema = self.dataset.schema
        wanted = [id_col, time_col, *self.targets, *self.past, *self.future, *self.static]
        absent = [c for c in wanted if c not in schema.names]
        if absent:
            raise ValueError(f"columns {absent} are not in the Parquet data; its columns are {schema.names}")
        import pyarrow as pa  # heavy: pyarrow only for Parquet panels

        text = [c for c in self.static if not (pa.types.is_integer(schema.field(c).type)
                                               or pa.types.is_floating(schema.field(c).type))]
        if text:
            raise ValueError(f"static columns {text} are not numeric; a panel read from Parquet in groups takes "
                             f"numeric static columns only (encode categories as numbers first)")
        self._scan(batch_rows)
        self.groups: list[list] = []
        rows = 0
        for uid, n in self.counts.items():
            if not self.groups or rows + n > max_rows:
                self.groups.append([])
                rows = 0
            self.groups[-1].append(uid)
            rows += n

    def _scan(self, batch_rows: int) -> None:
        """Rows per id in order of first appearance, and the covariates' means and standard deviations."""
        import pyarrow.compute as pc  # heavy: pyarrow only for Parquet panels

        cov = self.past + self.future
        self.counts: dict = {}
        n, mean, m2 = 0, np.zeros(len(cov)), np.zeros(len(cov))
        # one thread and little read-ahead: the scan reads every row, and its buffers are what bounds memory here
        for batch in self.dataset.to_batches(columns=[self.id_col, *cov], batch_size=batch_rows, use_threads=False,
                                             batch_readahead=2, fragment_readahead=1):
            ids = batch.column(self.id_col)
            if ids.null_count:
                raise ValueError(f"id column {self.id_col!r} holds {ids.null_count} missing values; every row needs "
                                 f"its series' id")
            vc = pc.value_counts(ids)
            for uid, k in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                self.counts[uid] = self.counts.get(uid, 0) + k
            if cov:  # Chan et al.'s merge of (count, mean, sum of squared deviations), in float64
                x = np.column_stack([batch.column(c).to_numpy(zero_copy_only=False) for c in cov]).astype(np.float64)
                b, bm = len(x), x.mean(0)
                bm2 = ((x - bm) ** 2).sum(0)
                delta = bm - mean
                mean = mean + delta * b / (n + b)
                m2 = m2 + bm2 + delta**2 * n * b / (n + b)
                n += b
        if not self.counts:
            raise ValueError("the Parquet data holds no rows; give a panel with at least one series")
        scale = np.sqrt(m2 / max(n, 1))
        scale[~np.isfinite(scale) | (scale <= 0)] = 1.0
        P = len(self.past)
        self.cov_scaler = CovariateScaler.from_state({"past_loc": mean[:P], "past_scale": scale[:P],
                                                      "future_loc": mean[P:], "future_scale": scale[P:]})

    def __len__(self) -> int:
        return len(self.groups)

    def lengths(self, g: int) -> np.ndarray:
        return np.array([self.counts[u] for u in self.groups[g]], dtype=np.int64)

    def read(self, g: int) -> Panel:
        """Group ``g`` as a Panel, its series in the order of the scan."""
        import pyarrow as pa  # heavy: pyarrow only for Parquet panels
        import pyarrow.compute as pc  # heavy: pyarrow only for Parquet panels

        ids = self.groups[g]
        columns = list(dict.fromkeys([self.id_col, self.time_col, *self.targets, *self.past, *self.future,
                                      *self.static]))
        table = self.dataset.to_table(columns=columns, filter=pc.field(self.id_col).isin(pa.array(ids)),
                                      use_threads=False, batch_readahead=2, fragment_readahead=1)
        df = table.to_pandas()
        del table
        time = df[self.time_col]
        if pd.api.types.is_object_dtype(time) or pd.api.types.is_string_dtype(time):  # dates written as text
            try:
                df[self.time_col] = pd.to_datetime(time, format="ISO8601")
            except (ValueError, TypeError):
                raise ValueError(f"time column {self.time_col!r} of the Parquet data holds text that is not ISO "
                                 f"dates, e.g. {time.iloc[0]!r}; store it as a timestamp column, or as dates like "
                                 f"2021-01-31") from None
        pa.default_memory_pool().release_unused()  # hand Arrow's buffers back before the group is trained on
        position = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
        df = df.iloc[np.argsort(position.loc[df[self.id_col]].to_numpy(), kind="stable")]
        panel = Panel.from_frame(df, id_col=self.id_col, time_col=self.time_col, target=self.targets,
                                 past=self.past, future=self.future, static=self.static, freq=self.freq,
                                 missing=self.missing, sort=True)
        if self.freq is None:
            self.freq = panel.freq  # every group on the first one's frequency
        return panel


class _Part:
    """One group of a ParquetPanel as a part of a training run: its lengths known, its arrays loaded on demand."""

    def __init__(self, forecaster, source: ParquetPanel, g: int):
        self.forecaster, self.source, self.g = forecaster, source, g

    def lengths(self) -> np.ndarray:
        return self.source.lengths(self.g)

    def load(self):
        panel = self.source.read(self.g)
        return self.forecaster._arrays(panel, Scaler(self.forecaster.config.scaler).fit(panel))


def fit_parquet(forecaster, source, max_rows: int = 1_000_000, **roles):
    """``RNNForecaster.fit_parquet``: train over the groups of a ``ParquetPanel``, then keep every series' state."""
    f = forecaster
    f._check_config()
    if f.ensemble != 1:
        raise ValueError(f"ensemble={f.ensemble} applies to panels in memory (fit(df)); fit_parquet trains one "
                         f"network: pass ensemble=1")
    if f.snapshots != 1:
        raise ValueError(f"snapshots={f.snapshots} applies to panels in memory (fit(df)); fit_parquet keeps the last "
                         f"weights: pass snapshots=1")
    if f.relative_to == "smoothing":
        raise ValueError("relative_to='smoothing' learns parameters for every series with the network, which "
                         "fit_parquet cannot hold part by part; load the panel with pandas and call fit(df), or pass "
                         "relative_to='auto'")
    f.members_ = []
    panel_source = ParquetPanel(source, max_rows=max_rows, **roles)
    f._choose(panel_source.read(0).freq, np.concatenate([panel_source.lengths(g) for g in range(len(panel_source))]))
    c = f.config
    if c.threads:
        torch.set_num_threads(c.threads)
    torch.manual_seed(c.random_state)
    f.cov_scaler_ = panel_source.cov_scaler
    f._build(panel_source.read(0))
    f.history_ = f._train([_Part(f, panel_source, g) for g in range(len(panel_source))])
    locs, scales, states, infos = [], [], [], []
    for g in range(len(panel_source)):  # each group's final states and last values, one group in memory at a time
        panel = panel_source.read(g)
        f.scaler_ = Scaler(c.scaler).fit(panel)
        f._remember(panel, f._arrays(panel))
        locs.append(f.scaler_.loc_)
        scales.append(f.scaler_.scale_)
        states.append(f.state_)
        infos.append(f.panel_info_)
    f.scaler_ = Scaler.from_state({"kind": "none" if c.scaler is None else c.scaler, "loc": np.concatenate(locs),
                                   "scale": np.concatenate(scales)})
    f.state_ = (tuple(torch.cat(parts, dim=1) for parts in zip(*states)) if isinstance(states[0], tuple)
                else torch.cat(states, dim=1))
    f.panel_info_ = {k: (np.concatenate([i[k] for i in infos]) if isinstance(v, np.ndarray) else v)
                     for k, v in infos[0].items()}
    return f
