"""Per-series target scaling (``Scaler``) and global covariate standardisation (``CovariateScaler``) for panels.

One network is shared by series whose levels differ by orders of magnitude, so each series' targets are put on
a common scale before training and put back after forecasting: ``z = (y - loc[s]) / scale[s]`` and
``y = z * scale[s] + loc[s]``, with one (loc, scale) per series s and target k, learned on training rows only.
Covariates are shared across series (a temperature means the same everywhere), so they get one (loc, scale)
per column over all training rows.

Kinds: "standard" (mean, standard deviation with ddof=0), "robust" (median, interquartile range / 1.349, which
is the standard deviation for normal data), "meanabs" (0, mean absolute value: the scale of DeepAR) and None
(0, 1). A scale that is 0 or undefined (a constant series, a single observed point, no observed point) is set
to 1 and a loc that is undefined to 0; a constant series of two or more points warns, a single point does not.

State for model files: ``to_state()`` gives arrays and plain strings (arrays for safetensors, the rest for JSON)
and ``from_state`` reads them back.

References: Salinas, Flunkert, Gasthaus & Januschowski (2020), "DeepAR: Probabilistic forecasting with
autoregressive recurrent networks", IJF 36(3):1181-1191 (per-series scaling by the mean absolute value);
scikit-learn's ``StandardScaler`` and ``RobustScaler`` (the estimator contract; learned state ends in ``_``).
"""
from __future__ import annotations

import copy
import warnings

import numpy as np

from rnr.forecast.panel import Panel, _as_time

__all__ = ["Scaler", "CovariateScaler", "KINDS"]

KINDS = ("standard", "robust", "meanabs", None)
IQR_NORMAL = 1.349  # interquartile range of N(0, 1): IQR / 1.349 estimates the standard deviation


class Scaler:
    """Per-series, per-target affine scaling of a panel's targets.

    Parameters
    ----------
    kind : "standard" | "robust" | "meanabs" | None (the identity)

    Attributes (after ``fit``)
    --------------------------
    loc_, scale_ : (S, K) float64, one row per series of the panel given to ``fit``, in its order
    """

    def __init__(self, kind: str | None = "standard"):
        self.kind = kind

    def __repr__(self) -> str:
        return "Scaler()" if self.kind == "standard" else f"Scaler({self.kind!r})"

    def fit(self, panel: Panel, until=None) -> Scaler:
        """Learn loc_ and scale_ from the observed target values of each series (those at or before ``until``).

        Parameters
        ----------
        panel : Panel of S series and K targets; values where ``panel.observed`` is False are ignored
        until : a time (like ``panel.time``) or None; rows after it are not training rows and are ignored
        """
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        use = np.broadcast_to(_training_rows(panel, until)[:, None], panel.y.shape)  # (N, K), no copy
        if panel.observed is not None:
            use = use & panel.observed  # unobserved values (stored as 0) never count
        sid = panel.series_index()
        S, K = len(panel), panel.y.shape[1]
        loc, scale = np.zeros((S, K)), np.ones((S, K))
        constant = np.zeros((S, K), bool)
        for k in range(K):
            if self.kind == "robust":  # quantiles need every value of a series at once
                rows = np.flatnonzero(use[:, k])
                v, s = panel.y[rows, k].astype(np.float64), sid[rows]
                n = np.bincount(s, minlength=S)
                with np.errstate(invalid="ignore", divide="ignore"):
                    q1, loc[:, k], q3 = _quantiles(v, s, n, (0.25, 0.5, 0.75))
                    scale[:, k] = (q3 - q1) / IQR_NORMAL
            else:  # sums per series, a block of rows at a time: no copy of the whole column
                n = _series_sums(panel.y[:, k], use[:, k], sid, S, lambda v, s: 1.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    if self.kind == "standard":
                        mean = _series_sums(panel.y[:, k], use[:, k], sid, S, lambda v, s: v) / n
                        loc[:, k] = mean
                        sq = _series_sums(panel.y[:, k], use[:, k], sid, S, lambda v, s: (v - mean[s]) ** 2)
                        scale[:, k] = np.sqrt(sq / n)
                    elif self.kind == "meanabs":
                        scale[:, k] = _series_sums(panel.y[:, k], use[:, k], sid, S, lambda v, s: np.abs(v)) / n
            # no spread, or less than float32 can resolve at the series' level (dividing by it would overflow)
            flat = scale[:, k] <= np.maximum(np.abs(loc[:, k]) * 1e-6, 1e-30)
            constant[:, k] = (n >= 2) & flat
            # a series all alike (or one value) is scaled by its level, so that a forecast off by a fraction of the
            # scale stays that fraction of the level at any magnitude (1e-30 or 1e30); a level of 0 keeps scale 1
            scale[flat, k] = np.abs(loc[flat, k]) if self.kind != "meanabs" else scale[flat, k]
        loc[~np.isfinite(loc)] = 0.0  # no observed value
        scale[~np.isfinite(scale) | (scale <= 0)] = 1.0  # none observed, or all zero
        if constant.any():
            bad = np.flatnonzero(constant.any(axis=1))
            shown = ", ".join(repr(i) for i in panel.ids[bad[:5]].tolist())
            warnings.warn(f"Scaler({self.kind!r}): {len(bad)} series have no spread in their training targets "
                          f"({shown}); each is scaled by its level (1 where the level is 0)", stacklevel=2)
        self.loc_, self.scale_ = loc, scale
        return self

    def transform(self, y, series_index) -> np.ndarray:
        """(y - loc_[s]) / scale_[s] row by row. y (N, ..., K), series_index (N,) ints -> float32 (N, ..., K)."""
        loc, scale = self._rows(y, series_index)
        y = np.asarray(y)
        out = (y - loc) / scale
        too_far = np.abs(out) > np.finfo(np.float32).max
        if too_far.any():  # float32 would make them inf: say which series, rather than train on inf
            rows = np.nonzero(too_far.reshape(len(y), -1).any(axis=1))[0]
            self._refuse(np.unique(np.asarray(series_index)[rows]), float(np.abs(out[too_far]).max()))
        return out.astype(np.float32)

    def check_range(self, panel: Panel, rows=None) -> None:
        """Raise the error ``transform(panel.y, ...)`` would raise, from each series' smallest and largest values
        (the scaled values furthest from the centre), without scaling the panel. ``rows``: the rows of ``loc_`` and
        ``scale_`` of the panel's series (default: the same positions)."""
        self._check_fitted()
        loc, scale = (self.loc_, self.scale_) if rows is None else (self.loc_[rows], self.scale_[rows])
        if len(panel) != len(loc) or panel.y.shape[1] != loc.shape[1]:
            raise ValueError(f"panel must have {len(loc)} series of {loc.shape[1]} targets, as the scaler's rows, got "
                             f"{len(panel)} series of {panel.y.shape[1]}")
        starts = panel.offsets[:-1]  # every series has a row
        lo, hi = np.minimum.reduceat(panel.y, starts, axis=0), np.maximum.reduceat(panel.y, starts, axis=0)  # (S, K)
        far = np.maximum(np.abs((lo - loc) / scale), np.abs((hi - loc) / scale))  # (S, K)
        too_far = far > np.finfo(np.float32).max
        if too_far.any():
            self._refuse(np.flatnonzero(too_far.any(axis=1)), float(far[too_far].max()))

    def _refuse(self, series: np.ndarray, worst: float):
        raise ValueError(f"{self!r} puts values of series {series[:5].tolist()} (positions in the panel) "
                         f"{worst:.3g} scales from their centre, beyond float32; a far outlier in a series of nearly "
                         f"constant values does this: check those values, or use scaler='standard'")

    def inverse(self, y_scaled, series_index) -> np.ndarray:
        """y_scaled * scale_[s] + loc_[s] row by row, undoing ``transform``; shapes as there."""
        loc, scale = self._rows(y_scaled, series_index)
        return (np.asarray(y_scaled) * scale + loc).astype(np.float32)

    def transform_panel(self, panel: Panel) -> Panel:
        """A copy of the panel (the fitted one, or one with its series in the same order) with scaled targets.

        Unobserved values stay 0; every other array is shared with ``panel``, not copied.
        """
        self._check_fitted()
        if not isinstance(panel, Panel) or len(panel) != len(self.loc_):
            raise ValueError(f"panel must have the {len(self.loc_)} series the scaler was fitted on, got "
                             f"{len(panel) if isinstance(panel, Panel) else type(panel).__name__}")
        out = copy.copy(panel)
        out.y = self.transform(panel.y, panel.series_index())
        if panel.observed is not None:
            out.y[~panel.observed] = 0.0
        return out

    def to_state(self) -> dict:
        """{"kind": str ("none" for None), "loc": (S, K) float64, "scale": (S, K) float64}."""
        self._check_fitted()
        return {"kind": "none" if self.kind is None else self.kind, "loc": self.loc_.copy(),
                "scale": self.scale_.copy()}

    @classmethod
    def from_state(cls, state: dict) -> Scaler:
        """The fitted scaler that ``to_state`` described."""
        _check_state(state, ("kind", "loc", "scale"), "Scaler")
        kind = None if state["kind"] in ("none", None) else state["kind"]
        if kind not in KINDS:
            raise ValueError(f"state['kind'] must be one of {list(KINDS)} or 'none', got {state['kind']!r}")
        loc, scale = (np.asarray(state[k], dtype=np.float64) for k in ("loc", "scale"))
        if loc.ndim != 2 or loc.shape != scale.shape:
            raise ValueError(f"state['loc'] and state['scale'] must both have shape (S, K), got {loc.shape} and "
                             f"{scale.shape}; pass the dict that Scaler.to_state() returned")
        out = cls(kind)
        out.loc_, out.scale_ = loc.copy(), scale.copy()
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "loc_"):
            raise ValueError(f"{self!r} is not fitted; call fit(panel) first")

    def _rows(self, y, series_index):
        """loc_ and scale_ of each row's series, shaped to broadcast against y (N, ..., K)."""
        self._check_fitted()
        y = np.asarray(y)
        S, K = self.loc_.shape
        if y.ndim < 2 or y.shape[-1] != K:
            raise ValueError(f"y must have shape (N, ..., K) with K={K} targets in its last axis, got {y.shape}; "
                             f"reshape a single target to (N, 1)")
        s = np.asarray(series_index)
        if s.ndim != 1 or len(s) != len(y) or (len(s) and s.dtype.kind not in "iu"):
            raise ValueError(f"series_index must be (N,) ints with N={len(y)} (one per row of y), got "
                             f"{s.dtype} {s.shape}; build it with panel.series_index()")
        if len(s) and (s.min() < 0 or s.max() >= S):
            raise ValueError(f"series_index must lie in [0, {S}) (the fitted series), got values from {s.min()} to "
                             f"{s.max()}")
        shape = (len(s),) + (1,) * (y.ndim - 2) + (K,)
        return self.loc_[s].reshape(shape), self.scale_[s].reshape(shape)


class CovariateScaler:
    """Standardisation of each past and future covariate column over all training rows of all series.

    Attributes (after ``fit``)
    --------------------------
    past_loc_, past_scale_ : (P,) float64; future_loc_, future_scale_ : (F,) float64
    """

    def __repr__(self) -> str:
        return "CovariateScaler()"

    def fit(self, panel: Panel, until=None) -> CovariateScaler:
        """Mean and standard deviation (ddof=0) of each covariate over rows at or before ``until`` (all if None).

        A constant column, or none in range, gets scale 1 (and loc 0 when there are no rows).
        """
        rows = _training_rows(panel, until)
        self.past_loc_, self.past_scale_ = _moments(panel.past, rows)
        self.future_loc_, self.future_scale_ = _moments(panel.future, rows)
        return self

    def transform(self, past, future) -> tuple[np.ndarray, np.ndarray]:
        """(past (N, P), future (M, F)) -> standardised float32 copies."""
        return (self._apply(past, self.past_loc_, self.past_scale_, "past", 1),
                self._apply(future, self.future_loc_, self.future_scale_, "future", 1))

    def inverse(self, past, future) -> tuple[np.ndarray, np.ndarray]:
        """Undo ``transform``."""
        return (self._apply(past, self.past_loc_, self.past_scale_, "past", -1),
                self._apply(future, self.future_loc_, self.future_scale_, "future", -1))

    def to_state(self) -> dict:
        """{"past_loc", "past_scale", "future_loc", "future_scale"}: float64 arrays."""
        if not hasattr(self, "past_loc_"):
            raise ValueError("CovariateScaler() is not fitted; call fit(panel) first")
        return {k: getattr(self, k + "_").copy() for k in _COV_KEYS}

    @classmethod
    def from_state(cls, state: dict) -> CovariateScaler:
        _check_state(state, _COV_KEYS, "CovariateScaler")
        out = cls()
        for k in _COV_KEYS:
            setattr(out, k + "_", np.asarray(state[k], dtype=np.float64).reshape(-1).copy())
        return out

    def _apply(self, x, loc, scale, name, direction) -> np.ndarray:
        if not hasattr(self, "past_loc_"):
            raise ValueError("CovariateScaler() is not fitted; call fit(panel) first")
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != len(loc):
            raise ValueError(f"{name} must have its {len(loc)} covariates in the last axis, got shape {x.shape}")
        out = (x - loc) / scale if direction == 1 else x * scale + loc
        return out.astype(np.float32)


_COV_KEYS = ("past_loc", "past_scale", "future_loc", "future_scale")


def _training_rows(panel: Panel, until) -> np.ndarray:
    """(N,) bool: the rows at or before ``until`` (all rows if None)."""
    if not isinstance(panel, Panel):
        raise TypeError(f"panel must be an rnr.forecast.panel.Panel, got {type(panel).__name__}; build one with "
                        f"Panel.from_frame(df)")
    if until is None:
        return np.ones(len(panel.time), bool)
    return panel.time <= _as_time(until, panel.time.dtype, "until")


_BLOCK = 1 << 20  # rows per block when summing over a whole panel


def _series_sums(column, use, sid, S: int, f) -> np.ndarray:
    """Per series, the sum in float64 of f(v, s) over the used rows, v the values and s their series."""
    total = np.zeros(S)
    for lo in range(0, len(column), _BLOCK):
        rows = np.flatnonzero(use[lo : lo + _BLOCK]) + lo
        v, s = column[rows].astype(np.float64), sid[rows]
        weights = f(v, s)
        total += np.bincount(s, weights=np.broadcast_to(weights, v.shape), minlength=S)
    return total


def _moments(x: np.ndarray, rows: np.ndarray):
    """Column means and standard deviations (ddof=0) in float64 of x (N, C) over the rows where ``rows`` is True,
    a block of rows at a time; scale 1 where undefined or 0."""
    C = x.shape[1]
    n, total, sq = 0, np.zeros(C), np.zeros(C)
    for lo in range(0, len(x), _BLOCK):
        block = x[lo : lo + _BLOCK][rows[lo : lo + _BLOCK]]
        n += len(block)
        total += block.sum(axis=0, dtype=np.float64)
    if not n:
        return np.zeros(C), np.ones(C)
    loc = total / n
    for lo in range(0, len(x), _BLOCK):
        block = x[lo : lo + _BLOCK][rows[lo : lo + _BLOCK]]
        sq += ((block - loc) ** 2).sum(axis=0)
    scale = np.sqrt(sq / n)
    scale[~np.isfinite(scale) | (scale <= 0)] = 1.0
    return loc, scale


def _quantiles(v, s, n, qs):
    """Per-series quantiles of the values v (n_rows,) of series s, linear as np.quantile; NaN where n = 0."""
    start = np.concatenate([[0], np.cumsum(n)[:-1]])  # v is grouped by series (s is non-decreasing)
    v = np.concatenate([np.sort(v[a:a + m]) for a, m in zip(start, n)])  # ascending within each series
    out = []
    for q in qs:
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        ok = n > 0
        val = np.full(len(n), np.nan)
        a, b = v[(start + lo)[ok]], v[(start + hi)[ok]]
        val[ok] = a + frac[ok] * (b - a)
        out.append(val)
    return out


def _check_state(state, keys, name) -> None:
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict from {name}.to_state(), got {type(state).__name__}")
    lacking = [k for k in keys if k not in state]
    if lacking:
        raise ValueError(f"state must hold {list(keys)}, but lacks {lacking}; pass the dict that "
                         f"{name}.to_state() returned")
