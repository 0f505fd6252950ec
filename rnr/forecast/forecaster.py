"""``RNNForecaster``: forecasts for panels of series of any lengths, with covariates and quantiles.

The forecaster reads each series' whole history with an encoder RNN (state carried across chunks of ``chunk``
steps), so it needs no choice of lags and drops no observation; see ``rnr.forecast.net`` for the model. After
``fit`` it keeps each series' final state, so ``predict`` reads nothing again and ``update(new_rows)`` reads only
the new rows.

Example:
    >>> f = RNNForecaster(horizon=7, season=7, epochs=2).fit(df)          # df: unique_id, ds, y
    >>> f.predict().head()                                                # unique_id, ds, y_hat
"""
import copy
import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from rnr.base import RUN_OPTION_TABLE, Estimator, Option, check_options
from rnr.core.cells import CELLS
from rnr.core.checks import check_positive_int, check_weights
from rnr.core.rnn import put_rows, take_rows
from rnr.forecast import ensemble, files
from rnr.forecast.defaults import choose
from rnr.forecast.net import ForecastNet, SeriesArrays, as_periods, base_back, season_features
from rnr.forecast.panel import Panel, next_times
from rnr.forecast.panel_checks import _fmt, all_nonnegative, all_positive, first_nonpositive
from rnr.forecast.parquet import fit_parquet
from rnr.forecast.scaling import CovariateScaler, Scaler
from rnr.forecast.smoothing import LOG_CLAMP
from rnr.forecast.training import train_forecaster
from rnr.training import distributed
from rnr.training.core import resolve_device


class RNNForecaster(Estimator):
    """Forecast every series of a long-format panel ``horizon`` steps ahead with one shared RNN.

    The arguments are the model's settings, then (keyword-only) the run options; ``fit(df, ...)`` takes the column
    roles. Learned state: ``net_``, ``scaler_``, ``cov_scaler_``, ``state_`` (each series' encoder state),
    ``panel_info_`` (ids, columns, last times), ``history_`` (one row per epoch), ``interrupted_``.
    """

    OPTIONS = {
        "horizon": Option("int", 1), "strategy": Option("choice", choices=("direct", "recursive")),
        "cell": Option("choice", choices=CELLS), "hidden_size": Option("int", 1), "num_layers": Option("int", 1),
        "dilation": Option("any"), "dropout": Option("real", 0, 1, open_high=True), "head_size": Option("int", 1),
        "quantiles": Option("any"), "loss": Option("choice", choices=("mae", "mse")),
        "scaler": Option("choice", choices=("auto", "standard", "robust", "meanabs", None)),
        "relative_to": Option("choice", choices=("auto", None, "last", "seasonal_naive", "smoothing")),
        "base_input": Option("bool"), "nonnegative": Option("bool", none=True), "season": Option("any"),  # its own message: what a season is
        "extra_seasons": Option("any"), "chunk": Option("int", 1), "batch_size": Option("int", 1),
        "epochs": Option("int", 0, none=True), "max_minutes": Option("real", 0, open_low=True, none=True),
        "lr": Option("real", 0, open_low=True), "clip_grad_norm": Option("real", 0, open_low=True, none=True),
        "random_state": Option("seed"), "ensemble": Option("int", 1), "snapshots": Option("int", 1),
        "threads": Option("int", 1, none=True), "device": Option("any"),
        "on_nonfinite": Option("choice", choices=("error", "skip")), **RUN_OPTION_TABLE}

    def __init__(
        self,
        horizon: int,                         # steps forecast ahead (H)
        strategy: str = "direct",             # "direct" (MQ-RNN decoder, whole horizon at once) | "recursive"
        cell: str = "gru",                    # "elman" | "lstm" | "gru" | "mingru" | "minlstm"
        hidden_size: int = 64,                # width of h_t
        num_layers: int = 1,                  # stacked recurrent layers
        dilation: int | tuple = 1,            # per layer: h_t reads h_(t-d) (Chang et al. 2017), e.g. (1, 24)
        dropout: float = 0.0,                 # between stacked layers
        head_size: int = 128,                 # hidden width of the direct strategy's decoder MLP
        quantiles: tuple = (),                # e.g. (0.1, 0.9): the pinball loss, columns y_hat_q10, y_hat_q90
        loss: str = "mae",                    # point loss: "mae" | "mse"
        scaler: str | None = "auto",          # per-series target scaling: "standard" | "robust" | "meanabs" | None;
                                              # "auto": "meanabs" with smoothing, else "standard"
        relative_to: str | None = "auto",     # forecast relative to a base: None | "last" | "seasonal_naive" |
                                              # "smoothing" (per-series exponential smoothing learned with the
                                              # network, ES-RNN); "auto": where there is a season, a network
                                              # relative to each of smoothing (positive data) and the seasonal
                                              # naive, averaged; else the seasonal naive
        base_input: bool = False,             # the head also reads the base values it corrects (needs relative_to)
        nonnegative: bool | None = None,      # forecasts and quantiles clipped at 0; None: where every observed
                                              # training target is >= 0 (sales, counts), shown in chosen_
        season: int | str | None = "auto",    # seasonal period m; adds sin/cos of the phase as inputs; None: none;
                                              # "auto": from the frequency (hourly: 24, and 168 as an extra season)
        extra_seasons: tuple = (),            # more periods whose phase is an input, e.g. (168,): weekly, in hours
        chunk: int = 256,                     # truncated BPTT: steps per optimiser step, state carried
        batch_size: int = 32,                 # series per batch
        epochs: int | None = None,            # passes over every series; None: at least 20 and 300 updates
        max_minutes: float | None = 30.0,     # a time budget: training stops once it is spent; None: none
        lr: float = 3e-3,                     # Adam, cosine-decayed to 0 over the run
        clip_grad_norm: float | None = 1.0,   # gradient-norm clipping
        random_state: int = 0,                # the same random_state gives the same model
        ensemble: int = 1,                    # networks from seeds random_state, +1, ...: forecasts averaged
        snapshots: int = 1,                   # and each network's forecasts averaged over its last k epochs
        threads: int | None = None,           # torch threads (None: as set, else chosen per run: rnr.core.threads)
        device: str = "cpu",                  # where to train: "cpu", "cuda", "cuda:1", ... or "auto"
        on_nonfinite: str = "error",          # a NaN/inf loss or gradient: "error" (stop) | "skip" its batch
        *,
        progress: bool | None = None,         # a progress bar per epoch (None: where stderr is a terminal)
        log_dir: str | None = None,           # metrics.csv per epoch here (and TensorBoard files when installed)
        checkpoint_dir: str | None = None,    # a checkpoint after each epoch (the last two are kept)
        checkpoint_every: int | None = None,  # and after every N batches
        resume: bool = False,                 # continue from the newest good checkpoint in checkpoint_dir
    ):
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    @property
    def config(self) -> SimpleNamespace:
        """The settings as the training run reads them (``config.horizon``, ...): the arguments, with what was
        chosen from the data (``chosen_``) in place of "auto" and None."""
        return SimpleNamespace(**{**self.get_params(), **getattr(self, "chosen_", {})})

    # validation ---------------------------------------------------------------------------------------------
    def _check_config(self) -> None:
        check_options(self)  # each argument's type and range; then the rules between them
        c = self.config
        check_weights(c.hidden_size * c.head_size, f"hidden_size={c.hidden_size} with head_size={c.head_size}",
                      "lower hidden_size or head_size")
        check_weights(c.head_size * c.horizon * (1 + len(c.quantiles)), f"horizon={c.horizon} with head_size="
                      f"{c.head_size}", "lower horizon (forecast fewer steps ahead) or head_size")
        if (c.resume or c.checkpoint_every) and not c.checkpoint_dir:
            raise ValueError("resume and checkpoint_every need checkpoint_dir: pass checkpoint_dir='runs/ckpt'")
        if c.season not in (None, "auto") and (isinstance(c.season, bool) or not isinstance(c.season, int)
                                                or c.season < 2):
            raise ValueError(f"season must be 'auto' (from the data's frequency), None (no season) or a whole number "
                             f"of steps >= 2 (e.g. 24 for the daily cycle of hourly data), got {c.season!r}")
        for m in c.extra_seasons:
            check_positive_int(m, "extra_seasons", minimum=2)
        if c.relative_to == "smoothing":
            if c.season is None:
                raise ValueError("relative_to='smoothing' smooths seasons: it needs season='auto' or a period (e.g. "
                                 "24 for hourly data with a daily cycle); without a season use 'last' or None")
            if c.strategy != "direct":
                raise ValueError("relative_to='smoothing' forecasts the whole horizon at once: it needs "
                                 "strategy='direct'")
            if c.base_input:
                raise ValueError("base_input=True does not apply to relative_to='smoothing' (the network reads the "
                                 "smoothed values already); leave base_input=False")
            if c.scaler in ("standard", "robust"):
                raise ValueError(f"relative_to='smoothing' divides each series by its level, so its values must stay "
                                 f"positive: scaler={c.scaler!r} centres them; use scaler='auto' ('meanabs'), "
                                 f"'meanabs' or None")
        if c.base_input and c.relative_to in (None, "smoothing"):
            raise ValueError("base_input=True feeds the head the base it corrects, so it needs relative_to='last' or "
                             "'seasonal_naive'")
        if c.relative_to == "seasonal_naive" and c.season is None:
            raise ValueError("relative_to='seasonal_naive' needs the seasonal period: pass season=m (e.g. 24 for "
                             "hourly data with a daily cycle)")
        resolve_device(c.device)
        for q in c.quantiles:
            if not isinstance(q, (int, float)) or not 0 < q < 1:
                raise ValueError(f"quantiles must lie strictly between 0 and 1, got {q!r} in {c.quantiles!r}")
        if list(c.quantiles) != sorted(set(c.quantiles)):
            raise ValueError(f"quantiles must be distinct and increasing, got {c.quantiles!r}; pass e.g. "
                             f"{tuple(sorted(set(c.quantiles)))}")

    # fitting ------------------------------------------------------------------------------------------------
    def fit(self, df, id_col: str = "unique_id", time_col: str = "ds", target="y", past=(), future=(), static=(),
            freq=None, missing: str = "error", fill_gaps: bool = False) -> "RNNForecaster":
        """Learn from every observed step of every series of ``df`` (long format; a path is read as Parquet with
        ``fit_parquet``). ``fill_gaps``: insert the steps missing from each series' grid as missing targets (read
        as ``missing`` says). Returns self."""
        if isinstance(df, (str, os.PathLike)):
            if fill_gaps:
                raise ValueError("fill_gaps=True applies to a DataFrame; a Parquet panel must have no gaps (fill them "
                                 "when writing it)")
            return self.fit_parquet(df, id_col=id_col, time_col=time_col, target=target, past=past, future=future,
                                    static=static, freq=freq, missing=missing)
        self._check_config()
        panel = Panel.from_frame(df, id_col=id_col, time_col=time_col, target=target, past=past, future=future,
                                 static=static, freq=freq, missing=missing, fill_gaps=fill_gaps)
        return self.fit_panel(panel)

    def fit_panel(self, panel: Panel) -> "RNNForecaster":
        self._choose(panel.freq, panel.lengths(), all_positive(panel), all_nonnegative(panel))
        c = self.config
        if c.relative_to == "smoothing" and not all_positive(panel):
            raise ValueError(f"relative_to='smoothing' is multiplicative: every observed target must be > 0, but "
                             f"{first_nonpositive(panel)}; use relative_to='seasonal_naive' (or 'auto') for such data")
        if panel.lengths().max() < 2:
            raise ValueError(f"df must hold at least one series of 2 or more steps to learn from (each step learns "
                             f"from the ones before it), got {len(panel)} series of 1 step; give more history")
        if c.threads:
            torch.set_num_threads(c.threads)
        torch.manual_seed(c.random_state)
        self.scaler_ = Scaler(c.scaler).fit(panel)
        self.cov_scaler_ = CovariateScaler().fit(panel)
        arrays = self._arrays(panel)
        self._build(panel, arrays)
        with distributed.held_group(resolve_device(c.device)):  # one process group for every network
            self.history_ = self._train([arrays])
            self._remember(panel, arrays)
            self.members_ = ensemble.fit_members(self, lambda member: member.fit_panel(panel))
        self.members_ += ensemble.snapshot_members(self, panel, arrays)
        return self

    def fit_parquet(self, source, id_col: str = "unique_id", time_col: str = "ds", target="y", past=(), future=(),
                    static=(), freq=None, missing: str = "error", max_rows: int = 1_000_000) -> "RNNForecaster":
        """Learn from a panel in Parquet files (a file, a folder, or a list of files) larger than memory, reading
        at most about ``max_rows`` rows (whole series) at a time; see ``rnr.forecast.parquet``. Returns self."""
        return fit_parquet(self, source, id_col=id_col, time_col=time_col, target=target, past=past,
                           future=future, static=static, freq=freq, missing=missing, max_rows=max_rows)

    def _choose(self, freq, lengths: np.ndarray, positive: bool = False, nonnegative: bool = False) -> None:
        """What the data decides (``rnr.forecast.defaults``), in ``chosen_``; then the settings are checked."""
        self.chosen_ = {}
        self._check_config()
        self.chosen_ = choose(self.get_params(), freq, lengths, positive, nonnegative)
        self._check_config()

    def _build(self, panel: Panel, arrays: SeriesArrays | None = None) -> None:
        """A new network for panels laid out like ``panel`` (whose ``arrays`` start each series' smoothing)."""
        c = self.config
        cards = [len(panel.static_categories[k]) for k in panel.static_categories]
        n_static_num = panel.static.shape[1] - len(cards)
        self.net_args_ = dict(n_targets=panel.y.shape[1], n_past=panel.past.shape[1], n_future=panel.future.shape[1],
                              n_static=n_static_num, cardinalities=cards, season=list(self._periods()),
                              horizon=c.horizon,
                              strategy=c.strategy, quantiles=list(c.quantiles), cell=c.cell,
                              hidden_size=c.hidden_size, num_layers=c.num_layers, dropout=c.dropout,
                              head_size=c.head_size, base_input=c.base_input,
                              dilation=list(c.dilation) if isinstance(c.dilation, tuple) else c.dilation)
        if c.relative_to == "smoothing":
            self.net_args_["smoothing"] = {"n_series": len(panel), "periods": list(self._periods())}
        self.net_ = ForecastNet(**self.net_args_)
        if self.net_.smoothing is not None:
            self.net_.smoothing.init_from(arrays.y_rows, arrays.offsets)

    def _arrays(self, panel: Panel, scaler: Scaler | None = None, rows=None, static=None) -> SeriesArrays:
        """The panel's own arrays with their scaling (``scaler``, default ``scaler_``, and ``cov_scaler_``): no
        scaled copy, ``SeriesArrays.batch`` scales the rows it reads. ``rows``: the rows of the scaler's series that
        the panel's series are (default: the same positions); ``static``: (numeric, codes) in place of the panel's."""
        scaler = scaler or self.scaler_
        scaler.check_range(panel, rows)  # values scaled beyond float32 are refused here, as transform refuses them
        loc, scale = (scaler.loc_, scaler.scale_) if rows is None else (scaler.loc_[rows], scaler.scale_[rows])
        if static is None:
            n_cat = len(panel.static_categories)
            static = (panel.static[:, : panel.static.shape[1] - n_cat].astype(np.float32),
                      panel.static[:, panel.static.shape[1] - n_cat :].astype(np.int64))
        cov = self.cov_scaler_
        return SeriesArrays(panel.y, panel.observed, panel.past, panel.future, panel.time, panel.freq, *static,
                            panel.offsets, (loc, scale), (cov.past_loc_, cov.past_scale_),
                            (cov.future_loc_, cov.future_scale_))

    def _inputs(self, x, static_num, static_cat):
        static = self.net_.static_features(static_num, static_cat)  # (B, C)
        if not static.shape[-1]:  # no static covariates: x as it is, not a copy
            return x
        return torch.cat([x, static[:, None].expand(-1, x.shape[1], -1)], dim=-1)

    def _train(self, parts: list) -> list[dict]:
        """Train ``net_`` on ``config.device`` over the parts of a panel (see ``rnr.forecast.training``); the net
        ends on the CPU."""
        history, self.interrupted_ = train_forecaster(self, parts)
        return history

    # state after the history ------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode_all(self, arrays: SeriesArrays, state=None, smooth=None, rows=None):
        """Each series' final encoder state (L, S, H) (a pair for LSTM) and, with smoothing, its final smoothing
        state (S, W, K) (else None), reading its arrays from ``state`` and ``smooth``. ``rows``: the rows of the
        per-series parameters of the arrays' series (default: the same positions)."""
        net = self.net_
        S = len(arrays.offsets) - 1
        finals, smooth_finals = None, None
        for i in range(0, S, 256):
            series = np.arange(i, min(S, i + 256))
            x, s_num, s_cat, lens, *_ = arrays.batch(series, 1, self._periods())
            st = None if state is None else take_rows(state, torch.from_numpy(series))
            if net.smoothing is not None:
                K = arrays.y.shape[1]
                ids = torch.from_numpy(series if rows is None else rows[series])
                sm = None if smooth is None else smooth[torch.from_numpy(series)]
                feats, *_, sm = net.smoothing(x[..., :K], ids, sm, lens)
                x = torch.cat([feats, x[..., K:]], dim=-1)
                if smooth_finals is None:
                    smooth_finals = sm.new_zeros(S, *sm.shape[1:])
                smooth_finals[torch.from_numpy(series)] = sm
            _, st = net.encode(self._inputs(x, s_num, s_cat), st, lens)
            finals = put_rows(finals, torch.from_numpy(series), st, S)
        return finals, smooth_finals

    def _remember(self, panel: Panel, arrays: SeriesArrays) -> None:
        self.state_, self.smooth_state_ = self._encode_all(arrays)
        last = panel.offsets[1:] - 1
        tix = arrays.tindex(last)  # (S,)
        prev = np.where(panel.lengths() > 1, arrays.tindex(np.maximum(last - 1, 0)), tix - 1)
        self.panel_info_ = {
            "ids": panel.ids, "columns": panel.columns, "freq": panel.freq,
            "last_time": panel.time[last], "last_tindex": tix, "step": tix - prev,
            "last_past": arrays.scaled_past(last), "tail_y": _tails(arrays.y_rows, panel.offsets, self._tail_len()),
            "static_num": arrays.static_num, "static_cat": arrays.static_cat, "missing": panel.missing,
        }
        self.static_categories_ = {k: list(v) for k, v in panel.static_categories.items()}

    def _for_history(self, df) -> "RNNForecaster":
        """A copy of this fitted forecaster that carries the series of ``df`` (their whole history, any ids, seen in
        fit or not) instead of the series it was fitted on: the same network, each series' scaling fitted on its own
        history, its state read from that history. Nothing is refit."""
        cols = self.panel_info_["columns"]
        panel = Panel.from_frame(df, id_col=cols.id, time_col=cols.time, target=list(cols.targets),
                                 past=list(cols.past), future=list(cols.future), static=list(cols.static),
                                 freq=self.panel_info_["freq"], missing=self.panel_info_.get("missing", "error"))
        known = getattr(self, "static_categories_", None)
        if panel.static_categories:
            if known is None:
                raise ValueError("this model file predates forecasts for new series with categorical static columns; "
                                 "fit the model again to forecast them")
            n_num = panel.static.shape[1] - len(panel.static_categories)
            for j, (name, cats) in enumerate(panel.static_categories.items()):
                unseen = sorted(set(map(str, cats)) - set(map(str, known[name])))
                if unseen:
                    raise ValueError(f"df's static column {name!r} holds {unseen}, which the training data never had; "
                                     f"known: {known[name]}. A new series can take only the categories seen in fit")
                code = {str(c): i for i, c in enumerate(known[name])}
                remap = np.array([code[str(c)] for c in cats], dtype=panel.static.dtype)
                panel.static[:, n_num + j] = remap[panel.static[:, n_num + j].astype(np.int64)]
        other = copy.copy(self)
        other.scaler_ = Scaler(self.config.scaler).fit(panel)
        arrays = other._arrays(panel)
        if self.net_.smoothing is not None:  # a series seen in fit keeps its smoothing; a new one gets the median
            other.net_ = copy.copy(self.net_)
            other.net_._modules = dict(self.net_._modules)
            seen = {k: i for i, k in enumerate(self.panel_info_["ids"])}
            rows = np.array([seen.get(i, -1) for i in panel.ids], dtype=np.int64)
            other.net_.smoothing = self.net_.smoothing.for_series(rows, arrays.y_rows, arrays.offsets)
        other._remember(panel, arrays)
        other.static_categories_ = known
        other.members_ = [member._for_history(df) for member in getattr(self, "members_", [])]
        return other

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this RNNForecaster is not fitted yet; call fit(df) first, or load a saved one with "
                             "rnr.load(path)")

    def score(self, df, future_df=None) -> float:
        """Minus the mean absolute error of the forecasts of the steps in ``df`` (long format, the columns the model
        was fitted with) that follow each series' end, up to the horizon: higher is better, as scikit-learn's model
        selection (``GridSearchCV``) expects. Future covariates come from ``future_df``, or else from ``df``."""
        self._check_fitted()
        cols = self.panel_info_["columns"]
        if len(cols.targets) != 1:
            raise ValueError(f"score reads one target; the model forecasts {list(cols.targets)}")
        missing = [c for c in (cols.id, cols.time, cols.targets[0]) if c not in df.columns]
        if missing:
            raise ValueError(f"df must have the columns {missing} the model was fitted with; it has {list(df.columns)}")
        if future_df is None and cols.future:
            future_df = df
        frame = self.predict(future_df=future_df)
        both = frame.merge(df[[cols.id, cols.time, cols.targets[0]]], on=[cols.id, cols.time], how="inner")
        if both.empty:
            raise ValueError(f"df has no row at the forecast times (the {self.config.horizon} steps after each "
                             f"series' end); pass the values that came after the training data")
        return -float(np.mean(np.abs(both[cols.targets[0]].to_numpy(float) - both["y_hat"].to_numpy(float))))

    def update(self, new_rows) -> "RNNForecaster":
        """Read rows that follow each series' end and carry the state forward; nothing is refit."""
        self._check_fitted()
        info = self.panel_info_
        cols = info["columns"]
        panel = Panel.from_frame(new_rows, id_col=cols.id, time_col=cols.time, target=list(cols.targets),
                                 past=list(cols.past), future=list(cols.future), freq=info["freq"],
                                 missing=info.get("missing", "error"))
        pos = _positions(info["ids"], panel.ids, "new_rows")
        first = panel.time[panel.offsets[:-1]]
        early = np.flatnonzero(first <= info["last_time"][pos])
        if len(early):
            ex = [f"{panel.ids[i]!r} ends at {_fmt(info['last_time'][pos[i]])} but new_rows start at {_fmt(first[i])}"
                  for i in early[:3]]
            raise ValueError(f"new_rows must follow the end of each series: {'; '.join(ex)} ({len(early)} in all); "
                             f"drop the rows the model has already read")
        arrays = self._arrays(panel, rows=pos, static=(info["static_num"][pos], info["static_cat"][pos]))
        state = take_rows(self.state_, torch.from_numpy(pos))
        smooth = None if self.smooth_state_ is None else self.smooth_state_[torch.from_numpy(pos)]
        new, smooth = self._encode_all(arrays, state, smooth, rows=pos)
        self.state_ = put_rows(self.state_, torch.from_numpy(pos), new, len(info["ids"]))
        if smooth is not None:
            self.smooth_state_[torch.from_numpy(pos)] = smooth
        last = panel.offsets[1:] - 1
        info["last_time"][pos], info["last_tindex"][pos] = panel.time[last], arrays.tindex(last)
        info["last_past"][pos] = arrays.scaled_past(last)
        info["tail_y"][pos] = _tails(arrays.y_rows, panel.offsets, self._tail_len(), info["tail_y"][pos])
        for member in getattr(self, "members_", []):
            member.update(new_rows)
        return self

    # forecasting --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, h: int | None = None, future_df=None, df=None) -> pd.DataFrame:
        """Forecasts for the next ``h`` steps (default: the horizon) of every series, as a long DataFrame.

        Columns: id, time, ``y_hat`` and ``y_hat_q{NN}`` per quantile (with several targets, a ``target``
        column says which). ``future_df`` must give every future covariate for each of the h steps.
        ``df``: the histories of other series (long format, the columns of fit; ids seen in fit or not) to
        forecast instead of the fitted ones, from their own history, with nothing refit (a global model).
        """
        self._check_fitted()
        if df is not None:
            return self._for_history(df).predict(h, future_df)
        frame = ensemble.predict(self, lambda member: member._predict_one(h, future_df),
                                 lambda member: member.predict(h, future_df))
        if self.config.nonnegative:  # data that is never negative (sales, counts) is not forecast below 0
            columns = [c for c in frame.columns if c.startswith("y_hat")]
            frame[columns] = frame[columns].clip(lower=0)
        return frame

    @torch.no_grad()
    def _predict_one(self, h: int | None, future_df) -> pd.DataFrame:
        """This network's forecasts (``predict`` averages them with the other members' of an ensemble)."""
        c, net, info = self.config, self.net_, self.panel_info_
        h = c.horizon if h is None else check_positive_int(h, "h")
        if c.strategy == "direct" and h > c.horizon:
            raise ValueError(f"h must be <= horizon={c.horizon} with strategy='direct', got h={h}; refit with a "
                             f"longer horizon or use strategy='recursive'")
        S, K = len(info["ids"]), info["tail_y"].shape[2]
        steps = max(h, net.J)
        fut = self._future_block(future_df, steps)  # (S, steps, F)
        tix = info["last_tindex"][:, None] + info["step"][:, None] * np.arange(1, steps + 1)  # (S, steps)
        ahead = torch.cat([torch.from_numpy(fut), season_features(torch.from_numpy(tix), self._periods())], dim=-1)
        top = self.state_[0][-1] if isinstance(self.state_, tuple) else self.state_[-1]  # (S, H)
        if c.strategy == "direct":
            known = ahead[:, : net.J].reshape(S, 1, -1)
            back = self._back()
            if back is not None:  # the base of step j: the tail value back[j] - j steps before the end
                tail = torch.from_numpy(info["tail_y"])  # (S, m, K)
                base = tail[:, tail.shape[1] - 1 + np.arange(1, net.J + 1) - back]  # (S, J, K)
                if c.base_input:
                    known = torch.cat([known, base.reshape(S, 1, -1)], dim=-1)
            pred = net.forecast(top[:, None], known)[:, 0, :h]  # (S, h, K, 1 + Q)
            if back is not None:
                pred = pred + base[:, :h, :, None]
            if net.smoothing is not None:  # log ratios to the smoothing's forecast -> scaled values
                level, factors = net.smoothing.ahead(self.smooth_state_, net.J)  # (S, K), (S, J, K)
                expected = level[:, None] * factors[:, :h]
                log_ratio = pred * net.smoothing.scale[:, None, :, None]  # (S, h, K, 1 + Q)
                pred = log_ratio.clamp(-LOG_CLAMP, LOG_CLAMP).exp() * expected[..., None]
        else:
            pred = self._roll_out(ahead, h)
        values = pred.numpy()  # scaled
        if c.quantiles:  # quantile heads are trained apart and may cross: sort them (Chernozhukov et al. 2010)
            values[..., 1:] = np.sort(values[..., 1:], axis=-1)
        sidx = np.repeat(np.arange(S), h)
        out = {}
        names = ["y_hat"] + [f"y_hat_q{int(round(q * 100)):02d}" for q in c.quantiles]
        for j, name in enumerate(names):
            out[name] = self.scaler_.inverse(values[..., j].reshape(S * h, K), sidx)  # (S*h, K)
        return self._frame(out, h, K)

    def _roll_out(self, ahead: torch.Tensor, h: int) -> torch.Tensor:
        """Recursive strategy: forecast one step, feed it back, h times. Returns (S, h, K, 1 + Q)."""
        net, info = self.net_, self.panel_info_
        state = self.state_
        top = state[0][-1] if isinstance(state, tuple) else state[-1]
        static = net.static_features(torch.from_numpy(info["static_num"]), torch.from_numpy(info["static_cat"]))
        past = torch.from_numpy(info["last_past"])  # past covariates are unknown ahead: the last value is held
        preds = []
        back = self._back()
        buffer = list(torch.from_numpy(info["tail_y"]).unbind(1))  # values up to now, then the forecasts, (S, K) each
        for j in range(h):
            known = ahead[:, j : j + 1].reshape(len(top), 1, -1)
            if back is not None:
                base = buffer[len(buffer) - int(back[0])]  # (S, K): y_{t+1-back}
                if self.config.base_input:
                    known = torch.cat([known, base[:, None]], dim=-1)
            p = net.forecast(top[:, None], known)[:, 0, 0]  # (S, K, 1+Q)
            if back is not None:
                p = p + base[..., None]
            buffer.append(p[..., 0])
            preds.append(p)
            F = ahead.shape[-1] - net.n_season
            x = torch.cat([p[..., 0], past, ahead[:, j, :F], ahead[:, j, F:], static], dim=-1)[:, None]
            out, state = net.encode(x, state)
            top = out[:, 0]
        return torch.stack(preds, dim=1)

    def _future_block(self, future_df, steps: int) -> np.ndarray:
        info = self.panel_info_
        cols = info["columns"]
        S = len(info["ids"])
        if not cols.future:
            return np.zeros((S, steps, 0), np.float32)
        if future_df is None:
            raise ValueError(f"future_df must give the future covariates {list(cols.future)} for the next {steps} "
                             f"steps of every series; pass predict(future_df=...)")
        if not isinstance(future_df, pd.DataFrame):
            raise TypeError(f"future_df must be a pandas DataFrame with columns {[cols.id, cols.time, *cols.future]}, "
                            f"got {type(future_df).__name__}")
        lacking = [c for c in (cols.id, cols.time, *cols.future) if c not in future_df.columns]
        if lacking:
            raise ValueError(f"future_df must have the columns {lacking}; it has {list(future_df.columns)}")
        values = future_df[list(cols.future)]
        bad = [c for c in cols.future if not pd.api.types.is_numeric_dtype(values[c])]
        if bad or not np.isfinite(values.to_numpy(np.float64)).all():
            what = f"numeric, got dtypes {[str(values[c].dtype) for c in bad]}" if bad else "finite, got NaN or inf"
            raise ValueError(f"future_df's covariates {bad or list(cols.future)} must be {what}; fill them (future "
                             f"covariates are known ahead)")
        fdf = future_df.set_index([cols.id, cols.time]).sort_index()
        block = np.zeros((S, steps, len(cols.future)), np.float32)
        for s, uid in enumerate(info["ids"]):
            times = next_times(info["last_time"][s], info["freq"], steps)
            try:
                rows = fdf.loc[[(uid, t) for t in times], list(cols.future)].to_numpy(np.float32)
            except KeyError:
                shown = ", ".join(_fmt(t) for t in times[:3]) + (", ..." if steps > 3 else "")
                raise ValueError(f"future_df must cover the next {steps} steps of every series for "
                                 f"{list(cols.future)}; series {uid!r} lacks some of {shown}; add those rows, or "
                                 f"forecast fewer steps with h=") from None
            block[s] = rows
        no_past = np.zeros((0, len(self.cov_scaler_.past_loc_)), np.float32)  # (0, P): only the future is scaled
        _, block = self.cov_scaler_.transform(no_past, block.reshape(S * steps, -1))
        return block.reshape(S, steps, -1)

    def _frame(self, out: dict, h: int, K: int) -> pd.DataFrame:
        info = self.panel_info_
        cols = info["columns"]
        S = len(info["ids"])
        times = np.concatenate([next_times(info["last_time"][s], info["freq"], h) for s in range(S)])
        ids = np.repeat(np.asarray(info["ids"], dtype=object), h)
        if K == 1:
            data = {cols.id: ids, cols.time: times, **{k: v[:, 0] for k, v in out.items()}}
            return pd.DataFrame(data)
        frames = [pd.DataFrame({cols.id: ids, cols.time: times, "target": t, **{k: v[:, i] for k, v in out.items()}})
                  for i, t in enumerate(cols.targets)]
        return pd.concat(frames, ignore_index=True)

    def embed(self) -> pd.DataFrame:
        """Each series' learned representation: its final top-layer hidden state, one row per id."""
        self._check_fitted()
        top = self.state_[0][-1] if isinstance(self.state_, tuple) else self.state_[-1]
        cols = [f"h{i}" for i in range(top.shape[1])]
        return pd.DataFrame(top.numpy(), index=pd.Index(self.panel_info_["ids"], name="unique_id"), columns=cols)


    # settings as the network reads them, and model files (rnr.save / rnr.load: rnr.forecast.files) -------------
    def _periods(self) -> tuple:
        return as_periods(self.config.season) + tuple(self.config.extra_seasons)

    def _back(self) -> np.ndarray | None:
        season = self.config.season
        return base_back(self.net_.J, as_periods(season)[0] if season else None, self.config.relative_to)

    def _tail_len(self) -> int:
        back = self._back()
        return 1 if back is None else int((back - np.arange(1, len(back) + 1)).max()) + 1

    def _to_file(self) -> tuple[dict, dict]:
        """Weights, scalers, carried states and column roles as tensors plus plain JSON data."""
        return files.to_file(self)

    @classmethod
    def _from_file(cls, tensors: dict, config: dict, device="cpu") -> "RNNForecaster":
        return files.from_file(cls, tensors, config, device)


def _positions(known_ids, ids, name: str) -> np.ndarray:
    where = {k: i for i, k in enumerate(known_ids)}
    missing = [i for i in ids if i not in where]
    if missing:
        raise ValueError(f"{name} holds ids the model was not trained on: {missing[:5]} ({len(missing)} in all); "
                         f"fit a model that includes them")
    return np.array([where[i] for i in ids], dtype=np.int64)


def _tails(y: np.ndarray, offsets: np.ndarray, n: int, before: np.ndarray | None = None) -> np.ndarray:
    """The last ``n`` rows of each series' ``y`` (S, n, K), continuing ``before`` (S, n, K) where given; a series
    shorter than n repeats its first value at the front."""
    S, K = len(offsets) - 1, y.shape[1]
    out = np.zeros((S, n, K), np.float32)
    for s in range(S):
        seg = y[offsets[s] : offsets[s + 1]]
        if before is not None:
            seg = np.concatenate([before[s], seg])
        seg = seg[-n:]
        out[s, n - len(seg) :] = seg
        out[s, : n - len(seg)] = seg[0]
    return out
