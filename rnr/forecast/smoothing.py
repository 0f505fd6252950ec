"""Exponential smoothing trained with the network: the ES half of ES-RNN (Smyl 2020), ``relative_to="smoothing"``.

Each series s (and target k) has a multiplicative Holt-Winters model with a level and one seasonal index per period
m of ``periods`` (hourly data: 24 and 168). With the seasonal factor of step t the product over the periods,
``S_t = prod_p s^p_t``, and the level before the step ``l_{t-1}``:

    l_t = alpha * y_t / S_t + (1 - alpha) * l_{t-1}
    s^p_{t+m_p} = gamma_p * y_t / (l_t * S_t / s^p_t) + (1 - gamma_p) * s^p_t

``alpha`` and ``gamma_p`` (through a sigmoid) and the first ``m_p`` seasonal indices of each period (in logs) are
parameters of each series, learned by gradient descent together with the shared network, as in Smyl's hybrid. The
first level is the first observed value divided by its seasonal factor. A step with no observed value (stored as 0:
the smoothed series must be positive) changes nothing.

What the network sees and learns is relative to the smoothing: its inputs at step t are ``log(y_t / (S_t l_{t-1}))``
and ``log(y_t / (S_t l_t))`` (the deseasonalised value against the level before and after it), and its targets
``log(y_{t+j} / (l_t S_{t+j|t}))``, where ``S_{t+j|t}`` is the latest seasonal factor of the phase of ``t + j`` known
at t; both in units of the series' mean absolute seasonal change in logs (``scale``, fixed from the data), so that
the loss weighs a smooth series as much as a noisy one. A forecast is ``exp(scale * output) * l_t * S_{t+j|t}``. The
loss adds a penalty on the wiggliness of the log level (Smyl's level variability penalty: the mean squared change of
its step-to-step change).

The recursion runs step by step in ``recursion`` (torch, the reference) or, by default, in ``_forward`` and
``_backward`` (numba, one task per series, with the backward pass written out by hand); tests hold the two equal,
values and gradients.

State carried from chunk to chunk (and kept after ``fit`` for ``predict`` and ``update``) is one tensor per series,
(B, 2 + sum(periods), K): the level, whether it has started, and the latest ``m_p`` seasonal indices of each period.
"""
import math
import warnings

import numpy as np
import torch
from torch import Tensor, nn

from rnr.core import kernels
from rnr.core.fast import use_torch_threads

if kernels.AVAILABLE:
    _jit = kernels.numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
    prange = kernels.numba.prange
else:  # pragma: no cover - numba is a dependency; without it the reference loop runs
    _jit, prange = (lambda f: f), range

LEVEL_PENALTY = 10.0  # weight of the level's wiggliness in the loss
LOG_CLAMP = 10.0  # log ratios beyond e^10 are clipped: a spike must not blow up the network's inputs


def seasonal_indices(y: np.ndarray, m: int) -> np.ndarray:
    """Multiplicative seasonal indices (m, K) of ``y`` (n, K) (NaN = unobserved), the first at y's first step: the
    mean by phase of y over its centred moving average of one period (two periods' averages for an even m), scaled
    to average 1; clipped to [0.05, 20], and 1 where undefined."""
    n = len(y)
    kernel = np.ones(m) / m
    if m % 2 == 0:
        kernel = np.convolve(kernel, [0.5, 0.5])  # the 2 x m average centred on a step
    half = len(kernel) // 2
    filled = np.where(np.isnan(y), 0.0, y)
    seen = (~np.isnan(y)).astype(np.float64)
    trend = np.full_like(filled, np.nan)
    for k in range(y.shape[1]):
        total = np.convolve(filled[:, k], kernel, mode="valid")
        weight = np.convolve(seen[:, k], kernel, mode="valid")
        with np.errstate(invalid="ignore", divide="ignore"):
            trend[half : half + len(total), k] = np.where(weight > 0.5, total / weight, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a phase with no value: its index becomes 1
        ratio = y / trend
        cycles = -(-n // m)
        padded = np.full((cycles * m, y.shape[1]), np.nan)
        padded[:n] = ratio
        idx = np.nanmean(padded.reshape(cycles, m, -1), axis=0)
        idx = idx / np.nanmean(idx, axis=0, keepdims=True)
    return np.where(np.isfinite(idx) & (idx > 0), idx, 1.0).clip(0.05, 20)


def recursion(y: Tensor, observed: Tensor, alpha: Tensor, gamma: Tensor, level: Tensor, started: Tensor,
              hist0: list[Tensor]) -> tuple[Tensor, Tensor, list[Tensor]]:
    """The smoothing recursion step by step in torch (the reference the compiled loop is held to).

    y (B, T, K) with 1 where unobserved, observed (B, T, K) bool, alpha (B, K), gamma (B, P, K), the carried level and
    started (B, K), hist0: per period the m_p latest seasonal indices (B, m_p, K). Returns the level before each step
    (B, T, K), the level after it (B, T, K) and per period every index (B, m_p + T, K): hist0, then the one computed
    at each step for the same phase one period later.
    """
    hist = [list(h.unbind(1)) for h in hist0]
    periods = [h.shape[1] for h in hist0]
    befores, levels = [], []
    for t in range(y.shape[1]):
        obs = observed[:, t]
        current = [h[-m] for h, m in zip(hist, periods)]  # s^p_t, (B, K) each
        ratio = y[:, t] / math.prod(current)
        prev = torch.where(started, level, ratio)
        ratio = torch.where(obs, ratio, prev)  # an unobserved value is its own forecast: nothing changes
        level = alpha * ratio + (1 - alpha) * prev
        for p, h in enumerate(hist):
            h.append(gamma[:, p] * ratio / level * current[p] + (1 - gamma[:, p]) * current[p])
        started = started | obs
        befores.append(prev)
        levels.append(level)
    return torch.stack(befores, dim=1), torch.stack(levels, dim=1), [torch.stack(h, dim=1) for h in hist]


def compiled_recursion(y, observed, alpha, gamma, level, started, hist0):
    """``recursion`` as one compiled loop per series, forward and backward (``_Recursion``)."""
    befores, levels, *seasons = _Recursion.apply(y, observed, alpha, gamma, level, started, *hist0)
    return befores, levels, seasons


class _Recursion(torch.autograd.Function):
    """The recursion's forward and backward passes in numba (``_forward``, ``_backward``); same inputs and outputs as
    ``recursion``, with the seasonal indices as separate arguments."""

    @staticmethod
    def forward(ctx, y, observed, alpha, gamma, level, started, *hist0):
        B, T, K = y.shape
        periods = np.array([h.shape[1] for h in hist0], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(periods + T)]).astype(np.int64)
        dtype = y.detach().numpy().dtype
        H = np.empty((B, int(offsets[-1]), K), dtype)
        for p, h in enumerate(hist0):
            H[:, offsets[p] : offsets[p] + periods[p]] = h.detach().numpy()
        yn, obs = y.detach().contiguous().numpy(), observed.contiguous().numpy()
        a, g = alpha.detach().contiguous().numpy(), gamma.detach().contiguous().numpy()
        st = started.contiguous().numpy()
        befores, levels = np.empty_like(yn), np.empty_like(yn)
        use_torch_threads()
        _forward(yn, obs, a, g, level.detach().contiguous().numpy(), st, H, offsets, periods, befores, levels)
        ctx.saved = (yn, obs, a, g, st, H, offsets, periods, befores, levels)
        seasons = [torch.from_numpy(H[:, offsets[p] : offsets[p + 1]].copy()) for p in range(len(periods))]
        return (torch.from_numpy(befores), torch.from_numpy(levels), *seasons)

    @staticmethod
    def backward(ctx, g_before, g_level, *g_seasons):
        yn, obs, a, g, st, H, offsets, periods, befores, levels = ctx.saved
        as_np = lambda t, shape: np.zeros(shape, H.dtype) if t is None else t.detach().contiguous().numpy()
        gH = np.empty_like(H)
        for p in range(len(periods)):
            gH[:, offsets[p] : offsets[p + 1]] = as_np(g_seasons[p], (H.shape[0], offsets[p + 1] - offsets[p],
                                                                       H.shape[2]))
        ga, gg, gl0 = np.zeros_like(a), np.zeros_like(g), np.zeros_like(a)
        use_torch_threads()
        _backward(yn, obs, a, g, st, H, offsets, periods, befores, levels, as_np(g_before, yn.shape),
                  as_np(g_level, yn.shape), gH, ga, gg, gl0)
        g_hist0 = [torch.from_numpy(gH[:, offsets[p] : offsets[p] + periods[p]].copy()) for p in range(len(periods))]
        return (None, None, torch.from_numpy(ga), torch.from_numpy(gg), torch.from_numpy(gl0), None, *g_hist0)


@_jit
def _forward(y, obs, alpha, gamma, level0, started0, H, offsets, periods, befores, levels):
    """``recursion`` for every (series, target), one per task; H holds each period's indices at offsets[p]."""
    B, T, K = y.shape
    P = len(periods)
    for job in prange(B * K):
        b, k = job // K, job % K
        level, started, a = level0[b, k], started0[b, k], alpha[b, k]
        for t in range(T):
            season = 1.0
            for p in range(P):
                season *= H[b, offsets[p] + t, k]
            ratio = y[b, t, k] / season
            prev = level if started else ratio
            if not obs[b, t, k]:
                ratio = prev
            level = a * ratio + (1 - a) * prev
            u = ratio / level
            for p in range(P):
                c = H[b, offsets[p] + t, k]
                g = gamma[b, p, k]
                H[b, offsets[p] + t + periods[p], k] = g * u * c + (1 - g) * c
            started = started or obs[b, t, k]
            befores[b, t, k] = prev
            levels[b, t, k] = level


@_jit
def _backward(y, obs, alpha, gamma, started0, H, offsets, periods, befores, levels, g_before, g_level, gH, ga, gg,
              g_level0):
    """Reverse-mode of ``_forward``: adds into gH (every index), ga, gg and g_level0."""
    B, T, K = y.shape
    P = len(periods)
    for job in prange(B * K):
        b, k = job // K, job % K
        a = alpha[b, k]
        first = T  # the first observed step: the level exists before every later step
        if started0[b, k]:
            first = -1
        else:
            for t in range(T):
                if obs[b, t, k]:
                    first = t
                    break
        g_carry = 0.0  # dL/d(level carried out of step t)
        for t in range(T - 1, -1, -1):
            season = 1.0
            for p in range(P):
                season *= H[b, offsets[p] + t, k]
            ratio0 = y[b, t, k] / season
            prev, level = befores[b, t, k], levels[b, t, k]
            ratio = ratio0 if obs[b, t, k] else prev
            u = ratio / level
            gl = g_carry + g_level[b, t, k]
            gu = 0.0
            for p in range(P):
                c = H[b, offsets[p] + t, k]
                g = gamma[b, p, k]
                gh = gH[b, offsets[p] + t + periods[p], k]
                gg[b, p, k] += gh * c * (u - 1)
                gu += gh * c * g
                gH[b, offsets[p] + t, k] += gh * (g * u + 1 - g)  # through the index it updates
            gr = gu / level
            gl -= gu * ratio / (level * level)
            gprev = g_before[b, t, k] + gl * (1 - a)
            gr += gl * a
            ga[b, k] += gl * (ratio - prev)
            gr0 = 0.0
            if obs[b, t, k]:
                gr0 = gr
            else:
                gprev += gr
            if t > first:  # started before step t: prev is the carried level
                g_carry = gprev
            else:
                gr0 += gprev
                g_carry = 0.0
            g_season = -gr0 * ratio0 / season
            for p in range(P):
                gH[b, offsets[p] + t, k] += g_season * season / H[b, offsets[p] + t, k]
        g_level0[b, k] += g_carry


def log_change(y: np.ndarray, m: int) -> np.ndarray:
    """(K,): the mean absolute change in logs over m steps of ``y`` (n, K) (0 = unobserved), within [1e-3, 1]; 0.1
    where no pair of values m steps apart is observed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(y > 0, y, np.nan).astype(np.float64))
        d = np.abs(logs[m:] - logs[:-m]) if len(y) > m else np.full((0, y.shape[1]), np.nan)
    out = np.full(y.shape[1], 0.1)
    for k in range(y.shape[1]):
        seen = d[:, k][np.isfinite(d[:, k])]
        if len(seen):
            out[k] = seen.mean()
    return out.clip(1e-3, 1.0).astype(np.float32)


def started_so_far(observed: Tensor, before: Tensor) -> Tensor:
    """(B, T, K): some value has been observed at or before step t (or before the chunk: ``before`` (B, K))."""
    return (observed.cumsum(dim=1) > 0) | before[:, None]


class Smoothing(nn.Module):
    """Per-series multiplicative exponential smoothing with a level and the seasons ``periods``.

    Parameters: ``alpha`` (S, K) and ``gamma`` (S, P, K) before their sigmoid, ``seasons0.p`` (S, m_p, K) the log
    seasonal indices of the first m_p steps of each series.
    """

    def __init__(self, n_series: int, n_targets: int, periods: list[int], impl: str = "compiled"):
        super().__init__()
        self.periods = [int(m) for m in periods]
        self.impl = impl  # "compiled" (numba, on CPU tensors) | "reference" (the loop in torch, ``recursion``)
        self.alpha = nn.Parameter(torch.full((n_series, n_targets), -2.0))  # sigmoid(-2) = 0.12
        self.gamma = nn.Parameter(torch.full((n_series, len(self.periods), n_targets), -2.0))
        self.seasons0 = nn.ParameterList(nn.Parameter(torch.zeros(n_series, m, n_targets)) for m in self.periods)
        # the typical size of a series' seasonal change in logs: the network's inputs and outputs are in its units, so
        # that a smooth series weighs in the loss as much as a noisy one (a loss like MASE, not like sMAPE)
        self.register_buffer("scale", torch.ones(n_series, n_targets))

    def start(self, rows: Tensor) -> Tensor:
        """The state before the first step of the series ``rows``: no level yet, the initial seasonal indices."""
        parts = [self.alpha.new_zeros(len(rows), 2, self.alpha.shape[1])] + [s[rows].exp() for s in self.seasons0]
        return torch.cat(parts, dim=1)

    def forward(self, y: Tensor, rows: Tensor, state: Tensor | None, lengths: Tensor | None = None):
        """Smooth the steps ``y`` (B, T, K) (0 where unobserved) of the series ``rows`` from ``state``; ``lengths``
        (B,): each row's steps in the chunk (the rest is padding), where the new state is taken (default: T).

        Returns ``inputs`` (B, T, 2K) for the network, ``levels`` (B, T, K), ``seasons``: one (B, m_p + T, K) per
        period (the indices known before the chunk, then the one computed at each step), ``started`` (B, T, K) bool,
        the level penalty's sum and count, and the new state.
        """
        if state is None:
            state = self.start(rows)
        B, T = y.shape[:2]
        alpha = torch.sigmoid(self.alpha[rows])  # (B, K)
        gamma = torch.sigmoid(self.gamma[rows])  # (B, P, K)
        level, started = state[:, 0], state[:, 1] > 0.5
        hist0, at = [], 2
        for m in self.periods:
            hist0.append(state[:, at : at + m])
            at += m
        observed = y > 0
        y_one = torch.where(observed, y, 1.0)
        run = compiled_recursion if self.impl == "compiled" and kernels.AVAILABLE and not y.is_cuda else recursion
        befores, levels_t, seasons = run(y_one, observed, alpha, gamma, level, started, hist0)
        started_t = started_so_far(observed, started)  # where levels_t is a level
        factor = math.prod(s[:, :T] for s in seasons) if seasons else torch.ones_like(y)  # S_t
        ratio = y_one / factor
        log_before = (ratio / befores).log().clamp(-LOG_CLAMP, LOG_CLAMP)
        log_after = (ratio / levels_t).log().clamp(-LOG_CLAMP, LOG_CLAMP)
        scale = self.scale[rows][:, None]  # (B, 1, K)
        inputs = torch.cat([log_before / scale, log_after / scale], dim=-1) * observed.repeat(1, 1, 2)
        penalty, count = self.wiggle(levels_t, started_t)
        if lengths is None:
            new_state = torch.cat([levels_t[:, -1:], started_t[:, -1:].to(y.dtype)]
                                  + [s[:, -m:] for s, m in zip(seasons, self.periods)], dim=1)
        else:  # at each row's last real step: padding must not shift its seasons
            last = (lengths.to(y.device) - 1).clamp(min=0)
            b = torch.arange(B, device=y.device)
            parts = [levels_t[b, last][:, None], started_t[b, last][:, None].to(y.dtype)]
            for s, m in zip(seasons, self.periods):
                parts.append(s[b[:, None], last[:, None] + 1 + torch.arange(m, device=y.device)])
            new_state = torch.cat(parts, dim=1)
        return inputs, levels_t, seasons, started_t, penalty, count, new_state

    @staticmethod
    def wiggle(levels: Tensor, started: Tensor) -> tuple[Tensor, Tensor]:
        """Sum and count of the squared second differences of the log level over steps where it exists."""
        safe = torch.where(started, levels, torch.ones_like(levels)).log()
        if levels.shape[1] < 3:
            return safe.sum() * 0, torch.zeros((), device=levels.device)
        d = safe[:, 1:] - safe[:, :-1]
        ok = started[:, 2:] & started[:, 1:-1] & started[:, :-2]
        dd = (d[:, 1:] - d[:, :-1]) * ok
        return (dd * dd).sum(), ok.sum().to(levels.dtype)

    def log_factors(self, seasons: list[Tensor], J: int) -> Tensor:
        """The log seasonal factor of each target: ``log S_{t+j|t}`` for every step t of a chunk and j = 1..J.

        seasons: one (B, m_p + T, K) per period, as ``forward`` returns them -> (B, T, J, K). Position m + t of a
        period's indices is the one computed at step t (for the phase of t + m), so the latest index of the phase of
        t + j is at t + 1 + (j - 1) mod m: a window of m positions after t, repeated along j.
        """
        out = None
        for s, m in zip(seasons, self.periods):
            T = s.shape[1] - m
            windows = s.log()[:, 1:].unfold(1, m, 1)[:, :T]  # (B, T, K, m), a view: positions t + 1 .. t + m
            f = windows[..., :J] if J <= m else windows[..., torch.from_numpy(np.arange(J) % m)]
            out = f if out is None else out + f
        if out is None:
            raise ValueError("smoothing without a season has no seasonal factors")
        return out.transpose(2, 3)  # (B, T, J, K)

    def ahead(self, state: Tensor, J: int) -> tuple[Tensor, Tensor]:
        """From the state after a series' last step: its level (S, K) and the seasonal factors of the next J
        steps (S, J, K)."""
        seasons, at = [], 2
        for m in self.periods:
            seasons.append(state[:, at : at + m])  # the last m indices: position m - 1 is the newest
            at += m
        j = np.arange(1, J + 1)
        out = torch.ones(state.shape[0], J, state.shape[2], dtype=state.dtype)
        for s, m in zip(seasons, self.periods):
            back = m * np.ceil(j / m).astype(np.int64) - j
            out = out * s[:, torch.from_numpy(m - 1 - back)]
        return state[:, 0], out

    @torch.no_grad()
    def init_from(self, y: np.ndarray, offsets: np.ndarray) -> None:
        """Set each series' initial seasonal indices from its first values (classical decomposition: per period,
        the mean by phase of the values divided by their centred moving average over a period, in logs)."""
        for s in range(len(offsets) - 1):
            self.seasons0_for(s, y[offsets[s] : offsets[s + 1]])
            self.scale[s] = torch.from_numpy(log_change(y[offsets[s] : offsets[s + 1]], self.periods[0]))

    def seasons0_for(self, s: int, y: np.ndarray) -> None:
        """Initial indices of series ``s`` from its values ``y`` (n, K) (0 = unobserved); a period without three
        cycles of values keeps indices of 1."""
        rest = np.where(y > 0, y, np.nan).astype(np.float64)[: 6 * max(self.periods)]  # the first few cycles
        for p, m in enumerate(self.periods):
            if len(rest) < 3 * m:
                continue
            idx = seasonal_indices(rest, m)
            self.seasons0[p][s] = torch.from_numpy(np.log(idx)).float()
            rest = rest / np.tile(idx, (-(-len(rest) // m), 1))[: len(rest)]

    def for_series(self, rows: np.ndarray, y: np.ndarray, offsets: np.ndarray) -> "Smoothing":
        """A smoothing for the series of other arrays (``predict(df=...)``): where ``rows`` names a row of this one
        (a series seen in fit) its learned parameters, else (-1) the median learned coefficients and initial
        indices from the series' own first values."""
        S, K = len(offsets) - 1, self.alpha.shape[1]
        other = Smoothing(S, K, self.periods)
        other.init_from(y, offsets)
        with torch.no_grad():
            other.alpha[:] = self.alpha.median(dim=0).values
            other.gamma[:] = self.gamma.median(dim=0).values
            seen = torch.from_numpy(np.flatnonzero(rows >= 0))
            src = torch.from_numpy(rows[rows >= 0])
            other.alpha[seen], other.gamma[seen] = self.alpha[src], self.gamma[src]
            other.scale[seen] = self.scale[src]
            for mine, theirs in zip(other.seasons0, self.seasons0):
                mine[seen] = theirs[src]
        return other
