"""Validation of a panel's time axis: order, regular grids and their gaps, missing-value filling, and the
phrases that name the offending ids and times in error messages. Used by ``rnr.forecast.panel``."""
import warnings

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset


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


def all_positive(panel) -> bool:
    """Every observed target of the panel is > 0 (what multiplicative smoothing needs)."""
    y = panel.y if panel.observed is None else panel.y[panel.observed]
    return bool(len(y)) and bool(np.all(y > 0))


def all_nonnegative(panel) -> bool:
    """Every observed target of the panel is >= 0 (sales, counts: data whose forecasts are clipped at 0)."""
    y = panel.y if panel.observed is None else panel.y[panel.observed]
    return bool(len(y)) and bool(np.all(y >= 0))


def first_nonpositive(panel) -> str:
    """Where the panel's first observed target <= 0 is, in words: series, value and time."""
    seen = np.ones_like(panel.y, dtype=bool) if panel.observed is None else panel.observed
    row = int(np.flatnonzero(((panel.y <= 0) & seen).any(axis=1))[0])
    s = int(np.searchsorted(panel.offsets, row, side="right") - 1)
    return f"series {panel.ids[s]!r} has {float(panel.y[row].min()):g} at {_fmt(panel.time[row])}"
