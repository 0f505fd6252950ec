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

from rnr.forecast.panel_checks import _at, _check_order, _few, _fill, _fmt, _insert, _regular

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
        return next_times(self.time[self.series(i).stop - 1], self.freq, h)

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
        raise ValueError("df is empty (0 rows); pass a frame with at least one row per series")
    for role, names in roles[2:5]:
        for name in names:
            if not pd.api.types.is_numeric_dtype(df[name].dtype):
                raise TypeError(f"{role} column {name!r} must be numeric, got dtype {df[name].dtype}; convert it "
                                f"with pd.to_numeric, or pass a categorical column as static")
    t = _time_values(df[cols.time], cols.time)
    runs = None if sort else _id_runs(df[cols.id])
    if runs is not None:  # rows already grouped by integer ids: no codes
        ids, offsets = runs
        values = tuple(_floats(df, names, None) for names in (cols.targets, cols.past, cols.future))
        return ids, offsets, t, values, None
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


def _id_runs(col: pd.Series):
    """(ids, offsets) where ``col`` holds numpy integers (never missing) whose rows are grouped by id (each id in
    one run of rows), else None. ``pd.factorize`` gives the same ids, but through an int64 code for every row."""
    if not isinstance(col.dtype, np.dtype) or col.dtype.kind not in "iu" or len(col) == 0:
        return None
    v = col.to_numpy()
    starts = np.concatenate([[0], np.flatnonzero(v[1:] != v[:-1]) + 1])  # (runs,)
    ids = v[starts]
    if len(np.unique(ids)) != len(ids):
        return None
    return ids, np.append(starts, len(v)).astype(np.int64)


def _time_values(col: pd.Series, name: str) -> np.ndarray:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        raise TypeError(f"time column {name!r} must hold time-zone-naive datetimes, got {col.dtype}; convert it "
                        f"with df[{name!r}].dt.tz_convert(None)")
    if pd.api.types.is_datetime64_dtype(col.dtype):
        t = col.to_numpy().astype("datetime64[ns]", copy=False)
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
    """(N, k) float32 of the columns ``names`` in row ``order`` (None: as they are). A single float32 column in order
    is the frame's own memory, not a copy: it is then marked read-only, and ``_finish`` copies it before filling."""
    if len(names) == 1 and order is None:
        with np.errstate(over="ignore"):  # beyond float32's range becomes inf, which _finish reports by row
            col = df[names[0]].to_numpy(dtype=np.float32, na_value=np.nan)
        col = col.reshape(-1, 1)  # (N, 1), a view
        col.flags.writeable = False  # it may be the frame's: never written to
        return col
    out = np.empty((len(df), len(names)), np.float32)  # (N, k)
    for j, name in enumerate(names):
        with np.errstate(over="ignore"):  # beyond float32's range becomes inf, which _finish reports by row
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
    past = _writable_if_nan(past)
    _fill(past, offsets, t, how, ids, cols.past, "past")
    observed = None
    y = _writable_if_nan(y)
    if missing == "mask":
        nan = np.isnan(y)
        if nan.any():
            observed = ~nan
            y[nan] = 0.0
    else:
        _fill(y, offsets, t, missing, ids, cols.targets, "target")
    return Panel(ids, offsets, t, y, past, future, static, cats, freq, cols, observed, missing)


def _writable_if_nan(a: np.ndarray) -> np.ndarray:
    """``a``, or a copy of it where it is read-only (the frame's own column) and has NaN to fill."""
    if a.flags.writeable or not np.isnan(a).any():
        return a
    return a.copy()


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


def next_times(last, freq, steps: int) -> np.ndarray:
    """(steps,) the timestamps after ``last``: ``freq`` apart (integer time) or on the pandas offset ``freq``."""
    if isinstance(freq, (int, np.integer)):
        return last + freq * np.arange(1, steps + 1, dtype=np.int64)
    return pd.date_range(pd.Timestamp(last), periods=steps + 1, freq=freq).as_unit("ns").to_numpy()[1:]


_PERIODS = {"MS": "M", "ME": "M", "M": "M", "QS": "Q", "QE": "Q", "Q": "Q", "YS": "Y", "YE": "Y", "Y": "Y", "AS": "Y",
            "A": "Y", "W": "W", "B": "B"}


def time_index(panel: Panel) -> np.ndarray:
    """Integer time ordinals (N,): one apart per step of the panel's frequency, comparable across series."""
    return time_ordinals(panel.time, panel.freq)


def time_ordinals(t: np.ndarray, freq) -> np.ndarray:
    """``time_index`` of any times ``t`` (any shape) on the frequency ``freq``: rows of a panel's time, a batch's."""
    if not np.issubdtype(t.dtype, np.datetime64):
        return t.astype(np.int64, copy=False)
    off = pd.tseries.frequencies.to_offset(freq)
    if isinstance(off, pd.offsets.Tick):
        return t.astype("datetime64[ns]", copy=False).view(np.int64) // off.nanos
    alias = _PERIODS.get(off.rule_code.split("-")[0], "D")
    return pd.DatetimeIndex(t.reshape(-1)).to_period(alias).asi8.astype(np.int64).reshape(t.shape)
