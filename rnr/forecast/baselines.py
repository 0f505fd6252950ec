"""Classical forecasters for panels of series: naive, seasonal naive, the M4 Naive2 and a pooled lagged ridge.

All share one small interface (scikit-learn conventions: ``__init__`` only stores, learned state ends in ``_``)::

    model.fit(histories)      # list of (n_i,) arrays, lengths may differ; returns self
    model.predict(h)          # list of (h,) arrays, one per series, in the order given to fit

References: Makridakis, Spiliotis & Assimakopoulos (2020), "The M4 Competition: 100,000 time series and 61
forecasting methods", IJF 36(1):54-74, and the M4-methods benchmark code (Naive2: the 90% autocorrelation test
for seasonality, classical multiplicative decomposition, naive on the adjusted series); Hyndman &
Athanasopoulos, "Forecasting: Principles and Practice" (3rd ed., 2021), sections 3.4 and 5.2 (classical
decomposition, benchmark methods); Hoerl & Kennard (1970), "Ridge regression", Technometrics 12(1):55-67;
Montero-Manso & Hyndman (2021), "Principles and algorithms for forecasting groups of time series: locality and
globality", IJF 37(4):1632-1653 (one linear autoregression pooled over all series); Hastie, Tibshirani &
Friedman (2009), "The Elements of Statistical Learning", 2nd ed., section 7.10 (the one-standard-error rule).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rnr.base import Estimator
from rnr.core.checks import check_positive_int
from rnr.metrics import smape

__all__ = ["Naive", "SeasonalNaive", "Naive2", "LaggedRidge", "seasonality_test", "seasonal_indices"]


def _check_histories(histories, name: str = "histories", min_len: int = 1) -> list[np.ndarray]:
    """A list of finite float64 vectors ``(n_i,)`` with ``n_i >= min_len``."""
    if isinstance(histories, np.ndarray) and histories.ndim == 2:
        histories = list(histories)
    if not isinstance(histories, (list, tuple)):
        raise TypeError(
            f"{name} must be a list of 1-D arrays (one per series), got {type(histories).__name__}; wrap a single "
            f"series as [y]"
        )
    if len(histories) == 0:
        raise ValueError(f"{name} must hold at least one series, got an empty list")
    out = []
    for i, y in enumerate(histories):
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name}[{i}] must be a numeric array, got {type(y).__name__}") from None
        if y.ndim != 1:
            raise ValueError(f"{name}[{i}] must be 1-dimensional, got shape {y.shape}; pass one array per series")
        if y.size < min_len:
            raise ValueError(f"{name}[{i}] must have at least {min_len} values, got {y.size}")
        if not np.isfinite(y).all():
            k = int(np.flatnonzero(~np.isfinite(y))[0])
            raise ValueError(f"{name}[{i}] must be finite, got {y[k]} at index {k}; fill missing values first")
        out.append(y)
    return out


class _Baseline(Estimator):
    """Shared plumbing: the estimator contract (parameters, ``repr``) and the fitted check."""

    def _check_predict(self, h) -> int:
        if not hasattr(self, "n_series_"):
            raise ValueError(f"this {type(self).__name__} is not fitted; call fit(histories) before predict(h)")
        return check_positive_int(h, "h")


class Naive(_Baseline):
    """Repeats the last observed value: ``f_{n+j} = y_n`` for j = 1..h."""

    def fit(self, histories) -> "Naive":
        self.last_ = np.array([y[-1] for y in _check_histories(histories)])  # (S,)
        self.n_series_ = len(self.last_)
        return self

    def predict(self, h: int) -> list[np.ndarray]:
        h = self._check_predict(h)
        return [np.full(h, v) for v in self.last_]


class SeasonalNaive(_Baseline):
    """Repeats the last season: ``f_{n+j} = y_{n+j-m*k}`` with k the smallest integer putting the index in the data.

    Parameters
    ----------
    m : int
        Seasonal period; every series needs at least ``m`` values (shorter ones raise: use ``Naive`` or a
        smaller ``m``).
    """

    def __init__(self, m: int):
        self.m = m

    def fit(self, histories) -> "SeasonalNaive":
        m = check_positive_int(self.m, "m")
        ys = _check_histories(histories)
        for i, y in enumerate(ys):
            if y.size < m:
                raise ValueError(
                    f"histories[{i}] must have at least m={m} values to hold one season, got {y.size}; use Naive "
                    f"for it or a smaller m"
                )
        self.season_ = [y[-m:].copy() for y in ys]  # each (m,)
        self.n_series_ = len(ys)
        return self

    def predict(self, h: int) -> list[np.ndarray]:
        h = self._check_predict(h)
        return [np.resize(s, h) for s in self.season_]  # tiles the last season from its start


def _acf(y: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations ``r_1..r_max_lag`` ``(max_lag,)``: ``sum (y_t - ybar)(y_{t+k} - ybar) / sum (y_t - ybar)^2``."""
    d = y - y.mean()
    den = float(d @ d)
    if den == 0.0:
        return np.zeros(max_lag)
    return np.array([d[k:] @ d[:-k] for k in range(1, max_lag + 1)]) / den


def seasonality_test(y, m: int) -> bool:
    """The M4 test for seasonality: is the lag-``m`` autocorrelation significant at the 90% level?

    ``|r_m| > 1.645 * sqrt((1 + 2 * sum_{k=1}^{m-1} r_k^2) / n)`` (Bartlett's standard error under an MA(m-1)
    null). False when ``m == 1``, when ``n < 3 m`` (too short to judge) and for a constant series.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if m <= 1 or n < 3 * m:
        return False
    r = _acf(y, m)  # (m,): r_1..r_m
    limit = 1.645 * np.sqrt((1.0 + 2.0 * np.sum(r[:-1] ** 2)) / n)
    return bool(abs(r[-1]) > limit)


def seasonal_indices(y, m: int) -> np.ndarray:
    """Classical multiplicative decomposition's seasonal indices ``(m,)``, normalised to mean 1.

    ``index[k]`` belongs to positions ``t`` with ``t % m == k`` (0-based, counted from the series' first value).
    Reference loop: trend = centred moving average of order m (2 x m when m is even: weights
    ``[1/2, 1, ..., 1, 1/2] / m``); ratio_t = y_t / trend_t where the trend exists;
    ``index[k] = mean of ratio_t over t % m == k``; finally ``index /= index.mean()`` (as R's ``decompose``).
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(m) / m if m % 2 else np.r_[0.5, np.ones(m - 1), 0.5] / m  # (m,) or (m+1,)
    trend = np.convolve(y, w, mode="valid")  # (n - len(w) + 1,): centred at t = half .. n-1-half
    half = (len(w) - 1) // 2
    t = np.arange(half, half + trend.size)
    ratio = y[t] / trend
    idx = np.array([ratio[t % m == k].mean() for k in range(m)])  # (m,)
    return idx / idx.mean()


class Naive2(_Baseline):
    """The M4 benchmark Naive2: naive on the seasonally adjusted series, re-seasonalised.

    For each series: if ``seasonality_test(y, m)`` passes (needs ``n >= 3 m``), divide by the multiplicative
    ``seasonal_indices(y, m)``, repeat the last adjusted value and multiply by the indices of the forecast
    positions; otherwise this is ``Naive``. A multiplicative decomposition needs a positive trend: a seasonal
    series whose moving average is not positive everywhere is treated as non-seasonal (M4 has none).

    Parameters
    ----------
    m : int
        Seasonal period (24 for M4 Hourly); ``m = 1`` gives ``Naive``.

    Attributes
    ----------
    seasonal_ : ndarray of bool, shape (S,)
        Which series were found seasonal.
    indices_ : list of ndarray, each (m,)
        The seasonal indices (ones where not seasonal).
    """

    def __init__(self, m: int):
        self.m = m

    def fit(self, histories) -> "Naive2":
        m = check_positive_int(self.m, "m")
        ys = _check_histories(histories)
        self.seasonal_ = np.zeros(len(ys), dtype=bool)
        self.indices_, self.level_, self.n_ = [], np.empty(len(ys)), np.array([y.size for y in ys])
        for i, y in enumerate(ys):
            idx = np.ones(m)
            if seasonality_test(y, m):
                cand = seasonal_indices(y, m)
                if np.isfinite(cand).all() and (cand > 0).all():
                    idx, self.seasonal_[i] = cand, True
            self.indices_.append(idx)
            self.level_[i] = y[-1] / idx[(y.size - 1) % m]  # last seasonally adjusted value
        self.n_series_ = len(ys)
        return self

    def predict(self, h: int) -> list[np.ndarray]:
        h = self._check_predict(h)
        return [lvl * idx[(n + np.arange(h)) % self.m] for lvl, idx, n in zip(self.level_, self.indices_, self.n_)]


def _window_scale(win: np.ndarray, floor=0.0) -> np.ndarray:
    """Mean absolute value of each window row ``(r, L) -> (r,)``, at least ``floor`` (a number or one per row),
    and 1 where both are 0 (an all-zero window of an all-zero series)."""
    s = np.maximum(np.mean(np.abs(win), axis=1), floor)
    return np.where(s > 0, s, 1.0)


def _check_covariates(covs, ys, name: str, lengths=None) -> list[np.ndarray]:
    """Per series a finite float64 matrix ``(len_i, K)`` with the same K for all; 1-D arrays mean K = 1."""
    if not isinstance(covs, (list, tuple)):
        raise TypeError(f"{name} must be a list with one (T_i, K) array per series, got {type(covs).__name__}")
    if len(covs) != len(ys):
        raise ValueError(f"{name} must hold one array per series ({len(ys)}), got {len(covs)}; align it with "
                         f"the histories")
    out, k0 = [], None
    for i, x in enumerate(covs):
        x = np.asarray(x, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        need = ys[i].size if lengths is None else lengths[i]
        if x.ndim != 2 or x.shape[0] < need:
            raise ValueError(f"{name}[{i}] must have shape (>= {need}, K), got {x.shape}; give one row per time step")
        if k0 is not None and x.shape[1] != k0:
            raise ValueError(f"{name}[{i}] must have K={k0} columns like {name}[0], got {x.shape[1]}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name}[{i}] must be finite; fill missing covariate values first")
        k0 = x.shape[1]
        out.append(x)
    return out


class LaggedRidge(_Baseline):
    """One ridge regression on the last L values of the target, pooled over all series (a global linear AR).

    For the target at time t (recursive strategy, H = 1), with ``s_t = mean_{k=1..L} |y_{t-k}|`` (1 where 0)::

        y_t / s_t = b + sum_{k=1}^{L} coef_[k-1] * y_{t-k} / s_t  (+ covariates at t-L+1..t, standardised)

    Each window is divided by the mean absolute value of its own L inputs, so series of any scale share one
    model and the forecast is scale-equivariant (``f(c y) = c f(y)``); the recursion rescales at every step.
    (On M4 Hourly this beats one fixed scale per series, the mean |y| of its last L values: OWA 0.760 against
    0.857 at L = 168.) Without covariates the model reads ``y_t = sum_k coef_[k-1] y_{t-k} + b s_t``: a
    zero-mean AR(L) is represented exactly (b = 0); for a positive series ``b s_t`` is one more linear term.
    ``alpha`` penalises every weight but ``b``: ``w = (A^T A + alpha P)^{-1} A^T T``, accumulated series by
    series from ``sliding_window_view`` windows (no panel-sized design matrix).

    Lags force a choice: the first L observations of every series have no full window and never serve as
    targets (counted in ``n_dropped_``), and a series shorter than L cannot be forecast by the model at all; it
    falls back to seasonal naive when ``m`` is given and it holds a season, else to naive (listed in
    ``fallback_``).

    Parameters
    ----------
    lags : int or sequence of int
        L, the number of lagged values, or candidates for it. With several candidates and ``val_horizon`` given
        to ``fit``, each is fitted without the last ``val_horizon`` values of every series and scored by the
        mean sMAPE of its forecasts of them; the fewest lags whose score is within one standard error (over
        series) of the best win (the one-standard-error rule: longer windows drop more observations and cost
        more), then it is refitted on everything. Without ``val_horizon`` the first candidate is used.
    alpha : float or sequence of float
        Ridge penalty on the normalised weights (the loss is a sum over windows, as scikit-learn's ``Ridge``), or
        candidates for it, chosen with L on the held-out values (``val_horizon``): among the (L, alpha) pairs
        within one standard error of the best, the fewest lags, then the largest penalty.
    floor : float or sequence of float
        A window's scale is at least this share of its series' mean absolute value (0: its own scale always), or
        candidates for it, chosen with L and alpha: near-zero windows of series that start from nothing (new
        products) would otherwise give targets many times their scale. All-zero windows never serve as targets.
    clip : bool
        Keep each series' forecasts within ``[lo - span, hi + span]`` of its training values (``span = hi - lo``;
        the lower bound 0 for a series never below 0), at every step of the recursion: an unstable fitted AR
        cannot run away to values the series never came near.
    horizon_strategy : {"recursive", "direct"}
        ``"recursive"``: one one-step model fed its own forecasts; ``"direct"``: one model per step 1..H
        (solved together, same windows), H = ``horizon`` (or ``val_horizon``) given to ``fit``.
    m : int, optional
        Seasonal period of the fallback for series shorter than L.
    covariates : bool
        Regress also on covariates (``past`` in fit, ``future`` in predict), standardised over the panel, over
        the window ``t-L+1 .. t+H-1`` (they must be known up to the target time).
    max_rows : int, optional
        At most this many training windows, drawn uniformly without replacement (seeded by ``random_state``).
    random_state : int
        Seed of that draw.

    Attributes
    ----------
    chosen_lags_ : int
    chosen_alpha_ : float
    bounds_ : ndarray (S, 2); the range each series' forecasts are clipped to (``clip``)
    coef_ : ndarray (L,) recursive, (L, H) direct; ``coef_[k]`` multiplies lag k+1 (the newest value first)
    intercept_ : float or ndarray (H,)
    coef_cov_ : ndarray (K, L + H - 1, H) or None; covariate weights, oldest step first
    horizon_ : int; H, the steps one fit predicts at once (1 when recursive)
    val_scores_ : dict {L: validation sMAPE}, empty when nothing was selected
    n_rows_, n_dropped_ : int; windows fitted, observations without L predecessors
    fallback_ : ndarray of int, series forecast by the fallback
    """

    def __init__(self, lags=(24, 48, 168), alpha=1.0, horizon_strategy: str = "recursive", m=None,
                 covariates: bool = False, max_rows=None, random_state: int = 0, clip: bool = True, floor=0.0):
        self.lags = lags
        self.alpha = alpha
        self.clip = clip
        self.floor = floor
        self.horizon_strategy = horizon_strategy
        self.m = m
        self.covariates = covariates
        self.max_rows = max_rows
        self.random_state = random_state

    def _candidates(self) -> list[int]:
        cands = [self.lags] if isinstance(self.lags, (int, np.integer)) else list(self.lags)
        if not cands:
            raise ValueError("lags must be an int or a non-empty list of ints, got an empty sequence")
        return [check_positive_int(int(c) if isinstance(c, np.integer) else c, "lags") for c in cands]

    def fit(self, histories, past=None, val_horizon=None, horizon=None) -> "LaggedRidge":
        """Fit on ``histories`` (list of ``(n_i,)``), with ``past`` covariates (list of ``(n_i, K)``) if enabled.

        ``val_horizon``: hold out this many last values per series to choose L among several ``lags``.
        ``horizon``: steps of the direct strategy (default ``val_horizon``); unused when recursive.
        """
        cands = self._candidates()
        alphas = [self.alpha] if np.ndim(self.alpha) == 0 else list(self.alpha)
        for a in alphas:
            if isinstance(a, bool) or not isinstance(a, (int, float, np.floating, np.integer)):
                raise TypeError(f"alpha must be a float or a list of floats, got {type(a).__name__} {a!r}")
            if not a >= 0:
                raise ValueError(f"alpha must be >= 0 (0 is least squares), got {a}")
        if not alphas:
            raise ValueError("alpha must be a float or a non-empty list of floats, got an empty sequence")
        if self.horizon_strategy not in ("recursive", "direct"):
            raise ValueError(f"horizon_strategy must be 'recursive' or 'direct', got {self.horizon_strategy!r}")
        if self.m is not None:
            check_positive_int(self.m, "m")
        if self.max_rows is not None:
            check_positive_int(self.max_rows, "max_rows")
        ys = _check_histories(histories)
        if self.covariates and past is None:
            raise ValueError("past must be given when covariates=True: one (n_i, K) array per series")
        if not self.covariates and past is not None:
            raise ValueError("past was given but covariates=False; build LaggedRidge(covariates=True) to use it")
        xs = _check_covariates(past, ys, "past") if past is not None else None
        if val_horizon is not None:
            check_positive_int(val_horizon, "val_horizon")
        H = 1
        if self.horizon_strategy == "direct":
            H = horizon if horizon is not None else val_horizon
            if H is None:
                raise ValueError("horizon must be given to fit when horizon_strategy='direct' (the steps to model)")
            check_positive_int(H, "horizon")
        if xs is not None:
            allx = np.concatenate(xs)
            self.cov_mean_, self.cov_std_ = allx.mean(0), np.where(allx.std(0) > 0, allx.std(0), 1.0)
        floors = [self.floor] if np.ndim(self.floor) == 0 else list(self.floor)
        if not floors or any(not 0 <= f for f in floors):
            raise ValueError(f"floor must be a number >= 0 or a non-empty list of them, got {self.floor!r}")
        self.val_scores_ = {}
        alpha, floor = alphas[0], floors[0]
        if (len(cands) > 1 or len(alphas) > 1 or len(floors) > 1) and val_horizon is not None:
            keep = [i for i, y in enumerate(ys) if y.size > val_horizon]
            if not keep:
                raise ValueError(f"val_horizon={val_horizon} leaves no series with data to fit; every series has "
                                 f"at most {max(y.size for y in ys)} values; use a smaller val_horizon")
            tr = [ys[i][:-val_horizon] for i in keep]
            px = [xs[i][: ys[i].size - val_horizon] for i in keep] if xs is not None else None
            fx = [xs[i][ys[i].size - val_horizon:] for i in keep] if xs is not None else None
            Hv = val_horizon if self.horizon_strategy == "direct" else 1
            per = {}  # (L, alpha, floor) -> (S_val,) per-series validation sMAPE
            for L in cands:
                if max(y.size for y in tr) < L + Hv:  # too few values for L lags once the held-out ones are aside
                    continue
                for a in alphas:
                    for fl in floors:
                        self._fit_lags(tr, px, L, Hv, a, fl)
                        fc = self._predict(val_horizon, fx)
                        per[L, a, fl] = np.array([smape(ys[i][-val_horizon:], f) for i, f in zip(keep, fc)])
            if not per:
                raise ValueError(f"lags={cands} leave no training window once the last val_horizon={val_horizon} "
                                 f"values are held out; use fewer lags or a smaller val_horizon")
            score = {k: float(v.mean()) for k, v in per.items()}
            best = min(score, key=score.get)
            se = per[best].std(ddof=1) / np.sqrt(len(keep)) if len(keep) > 1 else 0.0
            L, alpha, floor = min((k for k, v in score.items() if v <= score[best] + se),
                                  key=lambda k: (k[0], -k[1], -k[2]))
            self.val_scores_ = {c: v for (c, a, f), v in score.items() if (a, f) == (alpha, floor)}  # by L
        else:
            L = cands[0]
        self.chosen_alpha_, self.chosen_floor_ = float(alpha), float(floor)
        self._fit_lags(ys, xs, L, H, alpha, floor)
        return self

    def _fit_lags(self, ys, xs, L: int, H: int, alpha: float, floor: float = 0.0) -> None:
        """Fit one L on (normalised) windows; sets every learned attribute."""
        K = 0 if xs is None else xs[0].shape[1]
        F = L + K * (L + H - 1) + 1  # features: L lags, covariate windows, intercept
        rows = np.array([max(y.size - L - H + 1, 0) for y in ys])
        offsets = np.r_[0, np.cumsum(rows)]
        if offsets[-1] == 0:
            raise ValueError(f"lags={L} leaves no training window: every series needs at least L + H = {L + H} "
                             f"values, the longest has {max(y.size for y in ys)}; use fewer lags")
        pick = None
        if self.max_rows is not None and offsets[-1] > self.max_rows:
            rng = np.random.default_rng(self.random_state)
            pick = np.sort(rng.choice(offsets[-1], self.max_rows, replace=False))
        G, c = np.zeros((F, F)), np.zeros((F, H))
        for i, y in enumerate(ys):
            if rows[i] == 0:
                continue
            sel = slice(None) if pick is None else pick[(pick >= offsets[i]) & (pick < offsets[i + 1])] - offsets[i]
            win = sliding_window_view(y, L + H)[sel]  # (r_i, L + H): inputs then targets (a view when sel is :)
            informative = np.abs(win[:, :L]).sum(1) > 0  # an all-zero window has no scale: its target, in data
            win = win[informative]  # units, would outweigh every normalised one (series of sales that start at 0)
            # near-zero windows are scaled by a share of the series' level, so that their targets do not either
            win = win / _window_scale(win[:, :L], floor * np.mean(np.abs(y)))[:, None]  # normalised copy
            parts = [win[:, :L]]
            if K:
                xw = sliding_window_view((xs[i][: y.size] - self.cov_mean_) / self.cov_std_, L + H, axis=0)
                parts.append(xw[sel, :, 1:][informative].reshape(len(parts[0]), K * (L + H - 1)))
            A = np.hstack(parts + [np.ones((len(parts[0]), 1))])  # (r_i, F)
            G += A.T @ A
            c += A.T @ win[:, L:]
        P = np.eye(F) * float(alpha)
        P[-1, -1] = 0.0  # the intercept is not penalised
        if alpha > 0:  # positive definite: for positive data the intercept is collinear with the lags
            W = np.linalg.solve(G + P, c)  # (F, H)
        else:  # the minimum-norm least-squares solution
            W = np.linalg.lstsq(G, c, rcond=None)[0]
        self.chosen_lags_, self.horizon_ = L, H
        self.coef_ = W[:L][::-1].copy()  # (L, H): row k multiplies lag k+1
        self.coef_cov_ = W[L:-1].reshape(K, L + H - 1, H) if K else None  # (K, L + H - 1, H)
        self.intercept_ = W[-1].copy()
        if H == 1 and self.horizon_strategy == "recursive":
            self.coef_, self.intercept_ = self.coef_[:, 0], float(self.intercept_[0])
        self._W = W
        self.n_rows_ = int(offsets[-1] if pick is None else len(pick))
        self.n_dropped_ = int(sum(min(y.size, L) for y in ys))
        self.fallback_ = np.array([i for i, y in enumerate(ys) if y.size < L], dtype=int)
        self.tail_ = [y[-max(L, self.m or 1):].copy() for y in ys]
        self.lengths_ = np.array([y.size for y in ys])
        self.floor_ = np.array([floor * np.mean(np.abs(y)) for y in ys])
        lo, hi = np.array([y.min() for y in ys]), np.array([y.max() for y in ys])
        self.bounds_ = np.stack([np.where(lo >= 0, np.maximum(lo - (hi - lo), 0), lo - (hi - lo)), hi + (hi - lo)], 1)
        self.past_tail_ = None if xs is None else [x[: y.size][y.size - L + 1:] for x, y in zip(xs, ys)]
        self.n_series_ = len(ys)

    def predict(self, h: int, future=None) -> list[np.ndarray]:
        """Forecast ``h`` steps per series; ``future``: covariates over them, one ``(>= h, K)`` array per series."""
        h = self._check_predict(h)
        if self.covariates and future is None:
            raise ValueError("future must be given when covariates=True: one (h, K) array per series")
        if not self.covariates and future is not None:
            raise ValueError("future was given but covariates=False; build LaggedRidge(covariates=True) to use it")
        if self.horizon_strategy == "direct" and h > self.horizon_:
            raise ValueError(f"h must be <= the fitted horizon {self.horizon_} for the direct strategy, got {h}; "
                             f"fit with horizon={h}")
        if future is not None:
            need = [self.horizon_ if self.horizon_strategy == "direct" else h] * self.n_series_
            future = _check_covariates(future, self.tail_, "future", lengths=need)
        return self._predict(h, future)

    def _predict(self, h: int, future) -> list[np.ndarray]:
        L, H, W = self.chosen_lags_, self.horizon_, self._W
        out = [None] * self.n_series_
        for i in self.fallback_:
            y, m = self.tail_[i], self.m
            out[i] = np.resize(y[-m:], h) if m and self.lengths_[i] >= m else np.full(h, y[-1])
        ok = np.setdiff1d(np.arange(self.n_series_), self.fallback_)
        if ok.size == 0:
            return out
        Z = np.zeros((ok.size, L + h))  # (S', L + h): the last L values, forecasts appended (data units)
        Z[:, :L] = np.stack([self.tail_[i][-L:] for i in ok])
        C = None
        if future is not None:  # (S', L - 1 + h or H, K): standardised covariates from t-L+1 on
            steps = H if self.horizon_strategy == "direct" else h
            C = np.stack([np.vstack([self.past_tail_[i], future[i][:steps]]) for i in ok])
            C = (C - self.cov_mean_) / self.cov_std_
        if self.horizon_strategy == "direct":
            s = _window_scale(Z[:, :L], self.floor_[ok])  # (S',)
            feats = [Z[:, :L] / s[:, None]] + ([C.transpose(0, 2, 1).reshape(ok.size, -1)] if C is not None else [])
            Z[:, L:] = (np.hstack(feats + [np.ones((ok.size, 1))]) @ W)[:, :h] * s[:, None]  # (S', h)
            if self.clip:
                Z[:, L:] = np.clip(Z[:, L:], self.bounds_[ok, :1], self.bounds_[ok, 1:])
        else:
            for j in range(h):
                s = _window_scale(Z[:, j:j + L], self.floor_[ok])  # (S',): each step rescales by its own window
                acc = Z[:, j:j + L] / s[:, None] @ W[:L, 0] + W[-1, 0]  # (S',)
                if C is not None:
                    acc += C[:, j:j + L].transpose(0, 2, 1).reshape(ok.size, -1) @ W[L:-1, 0]
                Z[:, L + j] = acc * s
                if self.clip:  # inside the recursion: a clipped step is what the next steps read
                    Z[:, L + j] = np.clip(Z[:, L + j], self.bounds_[ok, 0], self.bounds_[ok, 1])
        for r, i in enumerate(ok):
            out[i] = Z[r, L:].copy()
        return out
