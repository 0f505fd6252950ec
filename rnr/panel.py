"""``Panel``: many time series from one long-format table, stored as contiguous float32 arrays with offsets.

A panel is S series of lengths n_s, N = sum n_s rows in all, laid end to end: series ``s`` is rows
``offsets[s]:offsets[s + 1]`` of every row array. Training samples are indices into these arrays, never copied
windows, so 10,000 series of 1,000 steps with one target cost 40 MB of targets. Shape letters: S series, N rows,
K targets, P past covariates (known up to now), F future covariates (known ahead), C static covariates.

``missing`` decides what happens to NaN targets (and NaN past covariates), so NaN never reaches a loss silently:
"error" raises; "mask" stores 0 and clears ``observed`` so losses skip the value (inputs have no mask, so NaN
past covariates are forward filled); "ffill" and "interpolate" fill within each series. inf is always an error.

References: the long format (``unique_id``, ``ds``, ``y``) of Nixtla's neuralforecast/statsforecast; the
CSR-style offsets of ``scipy.sparse`` and of ragged batches in ``torch.nn.utils.rnn``; Salinas et al. (2020),
"DeepAR", IJF 36(3) (past, future and static covariates of a panel); pandas offset aliases for ``freq``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

__all__ = ["Panel", "PanelColumns", "MISSING"]

MISSING = ("error", "mask", "ffill", "interpolate")


@dataclass(frozen=True)
class PanelColumns:
    """The role of each column of the long frame a panel came from; ``to_frame`` writes them back."""

    id: str = "unique_id"  # series identifier
    time: str = "ds"       # datetimes or an integer time index
    targets: tuple = ("y",)  # K forecast columns
    past: tuple = ()       # P covariates known only up to now
    future: tuple = ()     # F covariates known ahead (calendar, price, a weather forecast)
    static: tuple = ()     # C columns, one value per id, in ``Panel.static`` order: numeric, then categorical


class Panel:
    """S series in contiguous arrays; build one with ``Panel.from_frame(df, ...)``.

    Attributes
    ----------
    ids : (S,) ndarray, in order of first appearance in the frame
    offsets : (S + 1,) int64, series ``s`` is rows ``offsets[s]:offsets[s + 1]``
    time : (N,) datetime64[ns] or int64, increasing within each series on one regular grid
    y : (N, K) float32 targets, finite (0 where ``observed`` is False)
    past : (N, P) float32 and future : (N, F) float32 covariates, finite
    static : (S, C) float32, numeric columns first, then categorical columns as integer codes
    static_categories : dict, categorical column -> list of its categories (code i is category i)
    freq : str (pandas offset alias, e.g. "D", "h", "MS", "W-SUN") or int (the step of an integer time index)
    columns : PanelColumns
    observed : (N, K) bool or None; None means every target value was observed
    missing : str, the policy the panel was built with (``append`` applies it to new rows)
    """

    def __init__(self, ids, offsets, time, y, past, future, static, static_categories, freq, columns,
                 observed=None, missing="error"):
        self.ids, self.offsets, self.time, self.y = ids, offsets, time, y
        self.past, self.future, self.static, self.static_categories = past, future, static, static_categories
        self.freq, self.columns, self.observed, self.missing = freq, columns, observed, missing

    # building -------------------------------------------------------------------------------------------------
    @classmethod
    def from_frame(cls, df, id_col: str = "unique_id", time_col: str = "ds", target="y", past=(), future=(),
                   static=(), freq=None, missing: str = "error", sort: bool = False,
                   fill_gaps: bool = False) -> Panel:
        """Read a long-format pandas (or polars) DataFrame: one row per (id, time).

        Parameters
        ----------
        df : DataFrame with the columns named below; polars frames are converted with ``.to_pandas()``
        id_col, time_col : str; time holds datetimes (no time zone) or integers
        target : str or list of str, the K numeric target columns
        past, future : list of str, numeric covariates known up to now / known ahead (future ones must be complete)
        static : list of str, one value per id: numeric columns, or categorical ones (stored as codes)
        freq : pandas offset alias, or the int step of an integer time; None infers it from the series
        missing : "error" | "mask" | "ffill" | "interpolate", the policy for NaN targets and past covariates
        sort : sort rows by time within each id (otherwise unsorted times are an error)
        fill_gaps : insert the steps missing from each series' regular grid as NaN rows (otherwise an error);
            their targets then follow ``missing`` and their covariates are filled like past covariates

        Returns
        -------
        Panel with ids in order of first appearance (``sort`` orders times within an id, never the ids).
        """
        cols = PanelColumns(id_col, time_col, tuple(_names(target, "target")), tuple(_names(past, "past")),
                            tuple(_names(future, "future")), tuple(_names(static, "static")))
        _check_policy(missing, fill_gaps)
        df = _as_pandas(df)
        ids, offsets, time, values, order = _read(df, cols, sort)
        static_arr, cats, static_names = _statics(df, cols.static, order, offsets, ids)
        cols = PanelColumns(cols.id, cols.time, cols.targets, cols.past, cols.future, tuple(static_names))
        return _finish(ids, offsets, time, *values, static_arr, cats, cols, freq, missing, fill_gaps)

    def append(self, df, fill_gaps: bool = False, sort: bool = False) -> Panel:
        """A new panel with ``df``'s rows added after the end of their series (same columns; used by ``update``).

        Static columns in ``df`` are ignored: a series' statics are fixed when it is first read. The panel's
        ``missing`` policy applies to the new rows (a leading NaN is forward filled from the old rows); values
        filled before are not revisited. ``fill_gaps`` and ``sort`` act as in ``from_frame``.
        """
        c = self.columns
        _check_policy(self.missing, fill_gaps)
        df = _as_pandas(df)
        cols = PanelColumns(c.id, c.time, c.targets, c.past, c.future)
        new_ids, new_off, new_t, (ny, npast, nfut), _ = _read(df, cols, sort)
        if new_t.dtype != self.time.dtype:
            raise TypeError(f"df[{c.time!r}] must hold {self.time.dtype} like the panel, got {new_t.dtype}; "
                            f"convert it before appending")
        pos = self._positions(new_ids.tolist(), "append adds rows to existing series, but df has ids not in the "
                              "panel", "build a new panel with Panel.from_frame for new series")
        last = self.time[self.offsets[1:] - 1][pos]
        first = new_t[new_off[:-1]]
        early = np.flatnonzero(first <= last)
        if len(early):
            ex = [f"{new_ids[i]!r} ends at {_fmt(last[i])} but df starts at {_fmt(first[i])}" for i in early[:5]]
            raise ValueError(f"append needs each series' new rows after its end: {'; '.join(ex)} "
                             f"({len(early)} in all); drop the rows the panel already has")
        sid = np.concatenate([self.series_index(), np.repeat(pos, np.diff(new_off))])
        order = np.argsort(sid, kind="stable")  # each series: its old rows, then its new rows
        y = self.y.copy()
        if self.observed is not None:
            y[~self.observed] = np.nan  # unobserved values become missing again, for the policy to see
        cat = lambda a, b: np.concatenate([a, b])[order]
        offsets = np.concatenate([[0], np.cumsum(np.bincount(sid, minlength=len(self)))]).astype(np.int64)
        return _finish(self.ids, offsets, cat(self.time, new_t), cat(y, ny), cat(self.past, npast),
                       cat(self.future, nfut), self.static, self.static_categories, c, self.freq, self.missing,
                       fill_gaps)

    # reading ----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __repr__(self) -> str:
        c = self.columns
        extra = "".join(f", {k}={list(v)}" for k, v in (("past", c.past), ("future", c.future),
                                                          ("static", c.static)) if v)
        return f"Panel({len(self)} series, {len(self.time)} rows, targets={list(c.targets)}{extra}, " \
               f"freq={self.freq!r})"

    def lengths(self) -> np.ndarray:
        """(S,) int64: the number of steps of each series."""
        return np.diff(self.offsets)

    def series_index(self) -> np.ndarray:
        """(N,) int64: the series each row belongs to."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths())

    def series(self, i: int) -> slice:
        """The rows of series ``i`` (negative counts from the end), for any row array: ``panel.y[panel.series(i)]``."""
        S = len(self)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"i must be an int series position, got {type(i).__name__} {i!r}; "
                            f"find positions of ids with list(panel.ids).index(id)")
        if not -S <= i < S:
            raise ValueError(f"i must be in [-{S}, {S}) for a panel of {S} series, got {i}")
        i = int(i) % S
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def future_times(self, i: int, h: int) -> np.ndarray:
        """(h,) the h timestamps after the end of series ``i``, on the panel's ``freq``."""
        h = _positive_int(h, "h")
        last = self.time[self.series(i).stop - 1]
        if isinstance(self.freq, (int, np.integer)):
            return last + self.freq * np.arange(1, h + 1, dtype=np.int64)
        return pd.date_range(pd.Timestamp(last), periods=h + 1, freq=self.freq).as_unit("ns").to_numpy()[1:]

    def to_frame(self) -> pd.DataFrame:
        """The long frame back: id, time, targets (NaN where not observed), past, future, static columns.

        Numeric columns come back as float32; categorical statics as their categories.
        """
        c, n = self.columns, self.lengths()
        data = {c.id: np.repeat(self.ids, n), c.time: self.time}
        y = self.y if self.observed is None else np.where(self.observed, self.y, np.float32(np.nan))
        data.update({name: y[:, j] for j, name in enumerate(c.targets)})
        data.update({name: self.past[:, j] for j, name in enumerate(c.past)})
        data.update({name: self.future[:, j] for j, name in enumerate(c.future)})
        for j, name in enumerate(c.static):
            col = self.static[:, j]
            if name in self.static_categories:
                col = np.asarray(self.static_categories[name], dtype=object)[col.astype(np.int64)]
            data[name] = np.repeat(col, n)
        return pd.DataFrame(data)

    # splitting --------------------------------------------------------------------------------------------
    def select(self, ids) -> Panel:
        """The series with these ids, in the order given."""
        ids = list(ids)
        if len(set(ids)) != len(ids) or not ids:
            raise ValueError(f"ids must be a non-empty list without repeats, got {_few(ids)}")
        pos = self._positions(ids, "ids must be ids of the panel, got unknown",
                              f"the panel has {_few(self.ids.tolist())}")
        return self._gather(pos, np.zeros(len(pos), np.int64), self.lengths()[pos])

    def split_last(self, h: int, drop_short: bool = False) -> tuple[Panel, Panel]:
        """(train, test): each series without its last h steps, and those h steps.

        Series of h steps or fewer raise, or with ``drop_short=True`` leave both panels with a warning.
        """
        h, n = _positive_int(h, "h"), self.lengths()
        short = np.flatnonzero(n <= h)
        if len(short):
            ex = _few([f"{self.ids[s]!r} has {n[s]}" for s in short], quote=False)
            if not drop_short:
                raise ValueError(f"split_last(h={h}) needs every series longer than h={h} steps: {ex}; pass "
                                 f"drop_short=True to drop them, or a smaller h")
            warnings.warn(f"split_last(h={h}) drops {len(short)} series of <= {h} steps: {ex}", stacklevel=2)
        pos = np.flatnonzero(n > h)
        zero = np.zeros(len(pos), np.int64)
        return self._gather(pos, zero, n[pos] - h), self._gather(pos, n[pos] - h, n[pos])

    def tail(self, n: int) -> Panel:
        """The last n steps of each series (all of a shorter one)."""
        n, lens = _positive_int(n, "n"), self.lengths()
        pos = np.arange(len(self))
        return self._gather(pos, np.maximum(lens - n, 0), lens)

    def head_until(self, cutoff) -> Panel:
        """The steps at or before ``cutoff`` (a time) of each series; series that start after it are dropped."""
        cut = _as_time(cutoff, self.time.dtype, "cutoff")
        keep = np.bincount(self.series_index()[self.time <= cut], minlength=len(self))
        pos = np.flatnonzero(keep)
        if not len(pos):
            raise ValueError(f"cutoff must leave some rows, got {cutoff!r}; the first time is {_fmt(self.time.min())}")
        if len(pos) < len(self):
            warnings.warn(f"head_until drops {len(self) - len(pos)} series that start after {cutoff!r}", stacklevel=2)
        return self._gather(pos, np.zeros(len(pos), np.int64), keep[pos])

    def _positions(self, ids: list, lead: str, fix: str) -> np.ndarray:
        where = {k: i for i, k in enumerate(self.ids.tolist())}
        unknown = [k for k in ids if k not in where]
        if unknown:
            raise ValueError(f"{lead}: {_few(unknown)}; {fix}")
        return np.array([where[k] for k in ids], dtype=np.int64)

    def _gather(self, pos, lo, hi) -> Panel:
        """Rows ``lo[k]:hi[k]`` (within the series) of series ``pos[k]``, each k; every hi > lo."""
        n = (hi - lo).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
        rows = np.repeat(self.offsets[pos] + lo - offsets[:-1], n) + np.arange(offsets[-1])  # (N',)
        obs = None if self.observed is None else self.observed[rows]
        return Panel(self.ids[pos], offsets, self.time[rows], self.y[rows], self.past[rows], self.future[rows],
                     self.static[pos], dict(self.static_categories), self.freq, self.columns,
                     None if obs is None or obs.all() else obs, self.missing)


# reading a frame ------------------------------------------------------------------------------------------------
def _names(x, name: str) -> list:
    if isinstance(x, str):
        return [x]
    if not isinstance(x, (list, tuple)) or not all(isinstance(c, str) for c in x):
        raise TypeError(f"{name} must be a column name or a list of them, got {type(x).__name__} {x!r}")
    return list(x)


def _check_policy(missing, fill_gaps) -> None:
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {list(MISSING)}, got {missing!r}")
    if fill_gaps and missing == "error":
        raise ValueError("fill_gaps=True inserts NaN targets, which missing='error' rejects; pass missing='mask', "
                         "'ffill' or 'interpolate' with it")


def _as_pandas(df) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame) and hasattr(df, "to_pandas"):
        df = df.to_pandas()  # polars
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas or polars DataFrame, got {type(df).__name__}")
    return df


def _read(df, cols: PanelColumns, sort: bool):
    """Rows grouped by id (stable), as arrays: ids (S,), offsets, time (N,), (y, past, future), row order."""
    roles = [("id_col", [cols.id]), ("time_col", [cols.time]), ("target", cols.targets), ("past", cols.past),
             ("future", cols.future), ("static", cols.static)]
    seen = {}
    for role, names in roles:
        for name in names:
            if name in seen:
                raise ValueError(f"column {name!r} is given twice (as {seen[name]} and {role}); give each column "
                                 f"one role")
            seen[name] = role
            if name not in df.columns:
                raise ValueError(f"{role} column {name!r} is not in df; available: {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"df is empty (0 rows); pass a frame with at least one row per series")
    for role, names in roles[2:5]:
        for name in names:
            if not pd.api.types.is_numeric_dtype(df[name].dtype):
                raise TypeError(f"{role} column {name!r} must be numeric, got dtype {df[name].dtype}; convert it "
                                f"with pd.to_numeric, or pass a categorical column as static")
    t = _time_values(df[cols.time], cols.time)
    codes, uniques = pd.factorize(df[cols.id])
    if (codes < 0).any():
        raise ValueError(f"id column {cols.id!r} has {int((codes < 0).sum())} missing values; every row needs an id")
    ids = np.asarray(uniques.to_numpy())
    if sort:
        order = np.lexsort((t.view(np.int64), codes))
    elif np.all(codes[1:] >= codes[:-1]):
        order = None  # already grouped by id: no copy
    else:
        order = np.argsort(codes, kind="stable")  # rows of each id keep their order
    t = t if order is None else t[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(ids)))]).astype(np.int64)
    values = tuple(_floats(df, names, order) for names in (cols.targets, cols.past, cols.future))
    return ids, offsets, t, values, order


def _time_values(col: pd.Series, name: str) -> np.ndarray:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        raise TypeError(f"time column {name!r} must hold time-zone-naive datetimes, got {col.dtype}; convert it "
                        f"with df[{name!r}].dt.tz_convert(None)")
    if pd.api.types.is_datetime64_dtype(col.dtype):
        t = col.to_numpy().astype("datetime64[ns]")
        bad = np.isnat(t)
    elif pd.api.types.is_integer_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        bad = col.isna().to_numpy()
        t = col.to_numpy(dtype=np.int64, na_value=0)
    else:
        raise TypeError(f"time column {name!r} must hold datetimes or integers, got dtype {col.dtype}; convert it "
                        f"with pd.to_datetime(df[{name!r}])")
    if bad.any():
        raise ValueError(f"time column {name!r} has missing values in rows {_few(np.flatnonzero(bad).tolist())}; "
                         f"drop or fill them")
    return t


def _floats(df, names, order) -> np.ndarray:
    out = np.empty((len(df), len(names)), np.float32)  # (N, k)
    for j, name in enumerate(names):
        col = df[name].to_numpy(dtype=np.float32, na_value=np.nan)
        out[:, j] = col if order is None else col[order]
    return out


def _statics(df, names, order, offsets, ids):
    """(S, C) float32 with numeric columns first, then categorical codes; categories; names in that order."""
    first, counts = offsets[:-1], np.diff(offsets)
    num, cat, cats = [], [], {}
    for name in names:
        col = df[name].to_numpy()
        col = col if order is None else col[order]
        head = col[first]  # (S,)
        rep = pd.Series(np.repeat(head, counts))
        vals = pd.Series(col)
        varies = np.flatnonzero(~((vals == rep) | (vals.isna() & rep.isna())).to_numpy())
        if len(varies):
            s = np.searchsorted(offsets, varies, side="right") - 1
            us = np.unique(s)
            ex = [f"{ids[k]!r} has {head[k]!r} and {col[varies[s == k][0]]!r}" for k in us[:5]]
            raise ValueError(f"static column {name!r} must hold one value per id, but it varies within "
                             f"{len(us)} ids: {'; '.join(ex)}; pass it as past or future instead")
        dtype = df[name].dtype
        if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            v = pd.Series(head).to_numpy(dtype=np.float32, na_value=np.nan)
            bad = np.flatnonzero(~np.isfinite(v))
            if len(bad):
                raise ValueError(f"static column {name!r} must be finite, got NaN or inf for ids "
                                 f"{_few(ids[bad].tolist())}; fill them")
            num.append((name, v))
            continue
        if isinstance(dtype, pd.CategoricalDtype):
            categories = list(dtype.categories)
        else:
            uniq = pd.unique(pd.Series(head).dropna())
            try:
                categories = sorted(uniq.tolist())  # the same categories give the same codes in any panel
            except TypeError:
                categories = uniq.tolist()
        codes = pd.Categorical(head, categories=categories).codes
        if (codes < 0).any():
            raise ValueError(f"static column {name!r} is missing for ids {_few(ids[codes < 0].tolist())}; "
                             f"fill it (a category such as 'unknown' works)")
        cat.append((name, codes.astype(np.float32)))
        cats[name] = categories
    both = num + cat
    arr = np.stack([v for _, v in both], axis=1) if both else np.zeros((len(ids), 0), np.float32)
    return arr.astype(np.float32), cats, [n for n, _ in both]


# validating the arrays -----------------------------------------------------------------------------------------
def _finish(ids, offsets, t, y, past, future, static, cats, cols, freq, missing, fill_gaps) -> Panel:
    """Check order, regularity and values of grouped arrays, fill gaps and missing values; a Panel."""
    dt, inner = _check_order(ids, offsets, t, cols.time)
    freq, plan = _regular(ids, offsets, t, dt, inner, freq, fill_gaps, cols.time)
    del dt, inner
    inserted = None
    if plan:
        offsets, t, (y, past, future), inserted = _insert(offsets, t, (y, past, future), plan)
    for names, a, role in ((cols.targets, y, "target"), (cols.past, past, "past"), (cols.future, future, "future")):
        for j, name in enumerate(names):
            bad = np.flatnonzero(np.isinf(a[:, j]))
            if len(bad):
                raise ValueError(f"{role} column {name!r} must not be inf (or beyond float32's range): "
                                 f"{_at(ids, offsets, t, bad)}; replace them with NaN or drop the rows")
    for j, name in enumerate(cols.future):
        bad = np.isnan(future[:, j]) & (True if inserted is None else ~inserted)
        if bad.any():
            raise ValueError(f"future column {name!r} must be complete (future covariates are known ahead), got "
                             f"NaN: {_at(ids, offsets, t, np.flatnonzero(bad))}; fill them or pass the column as past")
    how = "interpolate" if missing == "interpolate" else "ffill"  # inputs have no mask: they are filled
    if inserted is not None:
        _fill(future, offsets, t, how, ids, cols.future, "future")
    if missing == "error":
        for names, a, role in ((cols.targets, y, "target"), (cols.past, past, "past")):
            for j, name in enumerate(names):
                bad = np.flatnonzero(np.isnan(a[:, j]))
                if len(bad):
                    raise ValueError(f"{role} column {name!r} has missing values (NaN): {_at(ids, offsets, t, bad)}; "
                                     f"pass missing='mask' to skip them in the loss, missing='ffill' or "
                                     f"'interpolate' to fill them, or drop the rows")
    _fill(past, offsets, t, how, ids, cols.past, "past")
    observed = None
    if missing == "mask":
        nan = np.isnan(y)
        if nan.any():
            observed = ~nan
            y[nan] = 0.0
    else:
        _fill(y, offsets, t, missing, ids, cols.targets, "target")
    return Panel(ids, offsets, t, y, past, future, static, cats, freq, cols, observed, missing)


def _check_order(ids, offsets, t, name):
    """Raise on unsorted or duplicated times within a series; the steps dt (N-1,) and where they count (N-1,)."""
    inner = np.ones(len(t), bool)
    inner[offsets[:-1]] = False  # row i is compared with row i - 1 unless it starts a series
    inner = inner[1:]  # (N-1,): dt[i] = t[i + 1] - t[i] is a step within a series
    dt = np.diff(t.view(np.int64))
    for cond, what, fix in ((dt < 0, "not increasing within each id", "pass sort=True or sort df by [id, time]"),
                            (dt == 0, "duplicated within an id", "drop them with df.drop_duplicates([id, time])")):
        bad = np.flatnonzero(cond & inner) + 1
        if len(bad):
            raise ValueError(f"timestamps in {name!r} are {what}: {_at(ids, offsets, t, bad)}; {fix}")
    return dt, inner


def _regular(ids, offsets, t, dt, inner, freq, fill_gaps, name):
    """The panel's freq, checked against every series, and the grids of series with gaps to fill."""
    is_dt, given = t.dtype.kind == "M", freq is not None
    if is_dt:
        if given and (isinstance(freq, (bool, int, np.integer)) or not isinstance(freq, (str, pd.DateOffset))):
            raise TypeError(f"freq must be a pandas offset alias such as 'D', 'h' or 'MS' for datetime times, got "
                            f"{type(freq).__name__} {freq!r}")
        try:
            off = to_offset(freq) if given else _infer_dt(t, offsets, dt, inner)
        except ValueError as e:
            if not given:
                raise
            raise ValueError(f"freq must be a pandas offset alias such as 'D', 'h' or 'MS', got {freq!r}") from e
        try:
            bad = inner & (dt != pd.Timedelta(off).value)  # fixed-length steps
        except ValueError:
            rows = np.flatnonzero(inner)  # calendar steps: t[i] + off must be t[i + 1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # some offsets warn that they add element by element
                nxt = (pd.DatetimeIndex(t[rows]) + off).as_unit("ns").asi8
            bad = np.zeros(len(dt), bool)
            bad[rows] = nxt != t.view(np.int64)[rows + 1]
            first = pd.DatetimeIndex(t[offsets[:-1]])
            off_grid = np.flatnonzero((first - off + off) != first)  # e.g. "MS" wants the 1st of a month
            if len(off_grid):
                raise ValueError(f"timestamps in {name!r} must lie on a regular {off.freqstr!r} grid, but "
                                 f"{_at(ids, offsets, t, offsets[off_grid])} starts off it; pass the right freq=")
        freq = off.freqstr
    else:
        if given and (isinstance(freq, bool) or not isinstance(freq, (int, np.integer))):
            raise TypeError(f"freq must be an int step for an integer time index, got {type(freq).__name__} {freq!r}")
        if given and freq < 1:
            raise ValueError(f"freq must be a positive int step, got {freq}")
        if not given and not inner.any():
            raise ValueError("freq cannot be inferred: every series has one step; pass freq= (the int step)")
        freq = int(freq) if given else int(np.min(dt, where=inner, initial=np.iinfo(np.int64).max))
        bad = inner & (dt != freq)
    bad_rows = np.flatnonzero(bad) + 1  # rows whose step from the previous row is not one freq
    if not len(bad_rows):
        return freq, []
    found = {"other": [], "irregular": [], "gap": []}
    plan = []
    for s in np.unique(np.searchsorted(offsets, bad_rows, side="right") - 1):
        seg = t[offsets[s]:offsets[s + 1]]
        own = _own_freq(seg)
        if own is not None and own != freq:
            found["other"].append(f"{ids[s]!r} is {own!r}")
            continue
        grid = (pd.date_range(seg[0], seg[-1], freq=freq).as_unit("ns").to_numpy() if is_dt
                else np.arange(seg[0], seg[-1] + 1, freq, dtype=np.int64))
        r = bad_rows[np.searchsorted(bad_rows, offsets[s])]
        a, b = t[r - 1], t[r]
        if np.isin(seg, grid).all():
            n = int(np.searchsorted(grid, b) - np.searchsorted(grid, a) - 1)
            found["gap"].append(f"{ids[s]!r} jumps from {_fmt(a)} to {_fmt(b)} ({n} missing)")
            plan.append((s, grid))
        else:
            found["irregular"].append(f"{ids[s]!r} steps from {_fmt(a)} to {_fmt(b)}")
    source = "given as freq=" if given else "inferred"
    msgs = {"other": (f"series must share one frequency in {name!r} (the panel's is {freq!r}, {source}), but",
                      "resample them to one frequency, or build a panel per frequency"),
            "irregular": (f"timestamps in {name!r} must lie on a regular {freq!r} grid, but",
                          "resample the series, or pass the right freq="),
            "gap": (f"series must have no gaps in {name!r} (freq {freq!r}), but",
                    "pass fill_gaps=True to insert the missing steps as NaN (with missing='mask', 'ffill' or "
                    "'interpolate'), or pass the right freq=")}
    for kind in ("other", "irregular", "gap"):
        if found[kind] and (kind != "gap" or not fill_gaps):
            lead, fix = msgs[kind]
            raise ValueError(f"{lead} {_few(found[kind], quote=False)}; {fix}")
    return freq, plan


def _infer_dt(t, offsets, dt, inner):
    """The frequency of the longest regular series (pd.infer_freq), else the smallest step."""
    lens = np.diff(offsets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in np.argsort(-lens, kind="stable")[:10]:
            if lens[s] >= 3:
                f = pd.infer_freq(pd.DatetimeIndex(t[offsets[s]:offsets[s + 1]]))
                if f is not None:
                    return to_offset(f)
    if not inner.any():
        raise ValueError("freq cannot be inferred: every series has one timestamp; pass freq= (e.g. 'D')")
    return to_offset(pd.Timedelta(int(np.min(dt, where=inner, initial=np.iinfo(np.int64).max))))


def _own_freq(seg):
    """A series' own frequency if it has one (3+ steps, all alike), else None."""
    if len(seg) < 3:
        return None
    if seg.dtype.kind != "M":
        d = np.unique(np.diff(seg))
        return int(d[0]) if len(d) == 1 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = pd.infer_freq(pd.DatetimeIndex(seg))
    return None if f is None else to_offset(f).freqstr


def _insert(offsets, t, arrays, plan):
    """Put each gappy series on its full grid; new rows hold NaN. Returns offsets, time, arrays, inserted (N',)."""
    lens = np.diff(offsets)
    new_lens = lens.copy()
    for s, grid in plan:
        new_lens[s] = len(grid)
    new_off = np.concatenate([[0], np.cumsum(new_lens)]).astype(np.int64)
    dest = np.arange(len(t)) + np.repeat(new_off[:-1] - offsets[:-1], lens)  # row -> its new row
    new_t = np.empty(new_off[-1], t.dtype)
    for s, grid in plan:
        dest[offsets[s]:offsets[s + 1]] = new_off[s] + np.searchsorted(grid, t[offsets[s]:offsets[s + 1]])
        new_t[new_off[s]:new_off[s + 1]] = grid
    new_t[dest] = t
    inserted = np.ones(len(new_t), bool)
    inserted[dest] = False
    def grow(a):
        b = np.full((len(new_t), a.shape[1]), np.nan, np.float32)  # (N', k)
        b[dest] = a
        return b

    return new_off, new_t, [grow(a) for a in arrays], inserted


def _fill(a, offsets, t, how, ids, names, role) -> None:
    """Fill NaN in each column of a (N, k) within each series, in place: "ffill" (leading NaN take the first
    value) or "interpolate" (linear in time; ends take the nearest value)."""
    N = len(a)
    itype = np.int32 if N < 2**31 - 1 else np.int64  # row numbers: half the memory where they fit
    idx = np.arange(N, dtype=itype)
    starts, ends = offsets[:-1], offsets[1:] - 1
    ti = t.view(np.int64)
    for j in range(a.shape[1]):
        v = a[:, j]
        nan = np.isnan(v)
        if not nan.any():
            continue
        prev = np.where(nan, itype(-1), idx)
        prev[starts] = starts  # a series start bounds the scan (NaN there stays NaN: no previous value)
        rows = np.flatnonzero(nan)
        p = np.maximum.accumulate(prev)[rows]  # last observed row at or before each NaN, within its series
        nxt = np.where(nan, itype(N), idx)
        nxt[ends] = ends
        q = np.minimum.accumulate(nxt[::-1])[::-1][rows]  # first observed row at or after it
        del prev, nxt
        has_p, has_q = ~nan[p], ~nan[q]
        out = np.where(has_p, v[p], v[q]).astype(np.float64)  # leading NaN: the first value
        if how == "interpolate":
            b = has_p & has_q
            w = (ti[rows[b]] - ti[p[b]]) / (ti[q[b]] - ti[p[b]]).astype(np.float64)
            out[b] = v[p[b]] + w * (v[q[b]].astype(np.float64) - v[p[b]])
        still = np.flatnonzero(np.isnan(out))
        if len(still):
            raise ValueError(f"{role} column {names[j]!r} has no value at all in some series to fill from: "
                             f"{_at(ids, offsets, t, rows[still])}; drop those series"
                             + (" or use missing='mask'" if role == "target" else " or fill the column"))
        v[rows] = out


# messages --------------------------------------------------------------------------------------------------------
def _fmt(x) -> str:
    if isinstance(x, np.datetime64):
        s = str(pd.Timestamp(x))
        return s[:-9] if s.endswith(" 00:00:00") else s
    return str(x)


def _few(items, quote: bool = True) -> str:
    shown = ", ".join(repr(i) if quote else str(i) for i in items[:5])
    return f"{shown} ({len(items)} in all)" if len(items) > 5 else shown


def _at(ids, offsets, t, rows) -> str:
    """'a' at 2020-01-03, 'b' at 2020-01-05 (7 in all): the id and time of up to 5 rows."""
    s = np.searchsorted(offsets, rows[:5], side="right") - 1
    shown = ", ".join(f"{ids[k]!r} at {_fmt(t[r])}" for k, r in zip(s, rows[:5]))
    return f"{shown} ({len(rows)} in all)" if len(rows) > 5 else shown


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _as_time(x, dtype, name: str):
    if dtype.kind == "M":
        try:
            return np.datetime64(pd.Timestamp(x), "ns")
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a timestamp like the panel's times, got {x!r}") from None
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name} must be an int like the panel's integer times, got {type(x).__name__} {x!r}")
    return int(x)
