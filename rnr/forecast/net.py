"""The network behind ``RNNForecaster`` and the assembly of its batches from a panel's arrays.

An encoder RNN reads each series step by step, ``x_t = [y_t, past_t, future_t, season(t), static]``, and a head
reads its state ``h_t`` together with what is known of the next ``J`` steps (future covariates and seasonal
position) to forecast ``y_{t+1}, ..., y_{t+J}``:

- ``strategy="recursive"``: J = 1, a synchronous many-to-many model rolled out one step at a time, each forecast
  fed back as the next input;
- ``strategy="direct"``: J = horizon, the encoder-decoder of MQ-RNN (Wen et al. 2017): a decoder MLP emits the
  whole horizon at once from every step of the series ("forking sequences"), so each series gives a training
  signal at every step, not once per window.

Batches are lists of series indices: the arrays of those series are copied into one padded tensor per batch and
nothing else is materialised (no windows, no lag matrices), so memory grows with the data. Long series are read
in chunks of ``chunk`` steps with the state carried between chunks (truncated BPTT).
"""
import math

import numpy as np
import torch
from torch import Tensor, nn

from rnr.core.checks import trusted
from rnr.core.rnn import RNN
from rnr.forecast.panel import time_ordinals
from rnr.forecast.smoothing import Smoothing


def base_back(J: int, season: int | None, relative_to: str | None) -> np.ndarray | None:
    """How far back from each target ``t + j`` (j = 1..J) its base value lies, or None without a base.

    "last": the base of every step is ``y_t`` (the naive forecast); "seasonal_naive": ``y_{t+j-m*ceil(j/m)}``,
    the latest value in the same phase of the season (the seasonal naive forecast). The network then learns
    ``y_{t+j}`` minus its base (a seasonal difference), as ES-RNN deseasonalises before its RNN (Smyl 2020).
    """
    j = np.arange(1, J + 1)
    if relative_to in (None, "smoothing"):  # smoothing: the base is the smoothing's forecast (rnr.forecast.smoothing)
        return None
    if relative_to == "last":
        return j
    return season * np.ceil(j / season).astype(np.int64)


def as_periods(season) -> tuple:
    """None -> (), m -> (m,), (m1, m2, ...) -> itself."""
    if not season:
        return ()
    return (int(season),) if isinstance(season, (int, np.integer)) else tuple(int(m) for m in season)


def season_features(index: Tensor, season) -> Tensor:
    """sin and cos of the phase of integer time indices in each period: (...,) -> (..., 2 * periods)."""
    periods = as_periods(season)
    if not periods:
        return index.new_zeros(*index.shape, 0, dtype=torch.float32)
    feats = []
    for m in periods:
        angle = (index % m).float() * (2 * math.pi / m)
        feats += [angle.sin(), angle.cos()]
    return torch.stack(feats, dim=-1)


class ForecastNet(nn.Module):
    """Encoder RNN plus a head over (h_t, known future features). Output (B, T, J, K, 1 + Q)."""

    def __init__(self, n_targets: int, n_past: int, n_future: int, n_static: int, cardinalities: list[int],
                 season: int | None, horizon: int, strategy: str, quantiles: tuple, cell: str, hidden_size: int,
                 num_layers: int, dropout: float, head_size: int, base_input: bool = False,
                 dilation: int | tuple = 1, smoothing: dict | None = None):
        super().__init__()
        self.K, self.F, self.season = n_targets, n_future, season
        self.J = horizon if strategy == "direct" else 1
        self.n_out = 1 + len(quantiles)  # the point forecast, then each quantile
        self.embeddings = nn.ModuleList(nn.Embedding(c, min(8, (c + 1) // 2)) for c in cardinalities)
        emb = sum(e.embedding_dim for e in self.embeddings)
        self.n_season = n_season = 2 * len(as_periods(season))
        # relative_to="smoothing": per-series exponential smoothing (rnr.forecast.smoothing), whose two log ratios
        # per target replace the target as the network's input
        self.smoothing = None if not smoothing else Smoothing(smoothing["n_series"], n_targets, smoothing["periods"])
        n_y = 2 * n_targets if smoothing else n_targets
        self.input_size = n_y + n_past + n_future + n_season + n_static + emb
        self.rnn = RNN(self.input_size, hidden_size, cell=cell, num_layers=num_layers, dropout=dropout,
                       dilation=tuple(dilation) if isinstance(dilation, list) else dilation)
        self.base_input = base_input
        known = self.J * (n_future + n_season + (n_targets if base_input else 0))  # what the head knows ahead
        out = self.J * n_targets * self.n_out
        if strategy == "direct":
            self.head = nn.Sequential(nn.Linear(hidden_size + known, head_size), nn.ReLU(), nn.Linear(head_size, out))
        else:
            self.head = nn.Linear(hidden_size + known, out)

    def static_features(self, static_num: Tensor, static_cat: Tensor) -> Tensor:
        """(B, C) numeric and (B, C_cat) codes -> (B, C + embedding widths)."""
        parts = [static_num] + [e(static_cat[:, i]) for i, e in enumerate(self.embeddings)]
        return torch.cat(parts, dim=-1)

    def encode(self, x: Tensor, state=None, lengths=None):
        with trusted():  # the forecaster's own arrays (the panel checked when it was read) and carried states
            out, state = self.rnn(x, state, lengths=lengths)  # (B, T, H)
        return out, state

    def forecast(self, h: Tensor, known: Tensor, tix: Tensor | None = None) -> Tensor:
        """h (B, T, H), known (B, T, J * (F + n_season)) [+ J * K base values] -> (B, T, J, K, 1 + Q).

        With ``tix`` (B, T), the time index of each step, ``known`` leaves the seasonal features out: (B, T, J * F)
        [+ J * K]. Their share of the head's first layer then comes from a table with a row per phase of each period
        (``_first_layer``): the same numbers from m rows instead of B x T products over J * n_season inputs, which
        were most of the direct head's inputs and 60% of its first layer's work on hourly data.
        """
        if tix is None or not self.n_season or not isinstance(self.head, nn.Sequential):
            y = self.head(torch.cat([h, known], dim=-1) if known.shape[-1] else h)  # nothing known ahead: no copy
        else:
            y = self.head[2](self.head[1](self._first_layer(h, known, tix)))
        return y.view(*h.shape[:2], self.J, self.K, self.n_out)

    def _first_layer(self, h: Tensor, known: Tensor, tix: Tensor) -> Tensor:
        """The head's first linear layer on [h, known with the seasonal features], without building them."""
        layer, H, J, F = self.head[0], h.shape[-1], self.J, self.F
        w = layer.weight  # (D, H + J * (F + s) [+ J * K]): columns h, then (F future, s seasonal) per step ahead
        w_ahead = w[:, H : H + J * (F + self.n_season)].unflatten(1, (J, F + self.n_season))  # (D, J, F + s)
        z = nn.functional.linear(h, w[:, :H], layer.bias)  # (B, T, D); the sums below add into it in place
        if F:
            z += nn.functional.linear(known[..., : J * F], w_ahead[:, :, :F].flatten(1))
        if known.shape[-1] > J * F:  # the base values (base_input)
            z += nn.functional.linear(known[..., J * F:], w[:, H + J * (F + self.n_season):])
        # sum over j = 1..J of season(t + j) w_ahead[:, j, F:]: it depends on t only through its phase in each
        # period m, so it is a table of m rows per period, looked up
        steps = torch.arange(1, J + 1, device=tix.device)
        for i, m in enumerate(as_periods(self.season)):
            feats = season_features(torch.arange(m, device=tix.device)[:, None] + steps, m).to(w.dtype)  # (m, J, 2)
            table = torch.einsum("pjc,djc->pd", feats, w_ahead[:, :, F + 2 * i : F + 2 * i + 2])  # (m, D)
            z += nn.functional.embedding(tix % m, table)
        return z


class SeriesArrays:
    """A panel's own arrays and the scaling of each, from which batches of whole series are copied and scaled.

    Nothing of the panel's size is copied: ``batch`` scales the rows it copies, ``z = (v - loc) / scale`` in float64
    rounded to float32, the numbers ``Scaler.transform`` and ``CovariateScaler.transform`` give, so memory grows with
    the batch, not with the panel. The slow reference (the scaled copies these arrays replace) is
    ``ScaledCopy`` in ``tests/forecast/test_series_arrays.py``.

    Parameters
    ----------
    y (N, K), past (N, P), future (N, F) : float32, unscaled (a panel's own arrays; never written to)
    observed : (N, K) bool, or None where every target value was observed
    time : (N,) the panel's times, and freq its frequency: ``time_ordinals`` gives their integer time index
    static_num (S, C) float32, static_cat (S, C_cat) int64, offsets (S + 1,)
    y_scaling : (loc, scale), each (S, K) float64, per series; past_scaling, future_scaling: (loc, scale), each (P,)
        or (F,) float64, per column. None: the identity.
    """

    def __init__(self, y, observed, past, future, time, freq, static_num, static_cat, offsets, y_scaling=None,
                 past_scaling=None, future_scaling=None):
        self.y, self.observed, self.past, self.future = y, observed, past, future
        self.time, self.freq, self.offsets = time, freq, offsets
        self.static_num, self.static_cat = static_num, static_cat
        S, K = len(offsets) - 1, y.shape[1]
        self.y_loc, self.y_scale = y_scaling or (np.zeros((S, K)), np.ones((S, K)))
        self.past_loc, self.past_scale = past_scaling or (np.zeros(past.shape[1]), np.ones(past.shape[1]))
        self.future_loc, self.future_scale = future_scaling or (np.zeros(future.shape[1]), np.ones(future.shape[1]))

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def tindex(self, rows) -> np.ndarray:
        """Integer time ordinals (int64, the shape of ``rows``) of these rows (``rnr.forecast.panel.time_index``)."""
        return time_ordinals(self.time[rows], self.freq)

    def scaled_y(self, rows) -> np.ndarray:
        """Scaled targets float32 (n, K) of rows (an index array or a slice), unobserved ones as stored (0) scaled."""
        rows = _as_rows(rows, len(self.y))
        s = np.searchsorted(self.offsets, rows, side="right") - 1  # each row's series
        return _affine(self.y[rows], self.y_loc[s], self.y_scale[s])

    def scaled_past(self, rows) -> np.ndarray:
        """Scaled past covariates float32 (n, P) of rows (an index array or a slice)."""
        return _affine(self.past[rows], self.past_loc, self.past_scale)

    @property
    def y_rows(self) -> "_Rows":
        """The scaled targets as something sliced like an (N, K) array (``y_rows[lo:hi]``), computed per slice."""
        return _Rows(self.scaled_y, self.y.shape)

    def batch(self, series: np.ndarray, J: int, season: int | None, back: np.ndarray | None = None,
              phases: bool = False):
        """Padded tensors for the given series: inputs, known-future features, targets and their mask.

        Returns x (B, T, I_no_static), static (B, C), static codes (B, C_cat), lengths (B,), known (B, T, J*(F+s)),
        target (B, T, J, K), target_mask (B, T, J, K), base (B, T, J, K): the value each target is forecast
        relative to (zeros when ``back`` is None; see ``base_back``). T is the longest series' length. With ``phases``,
        known leaves the seasonal features out, (B, T, J*F), and the time index of each step (B, T) int64 comes last,
        for ``ForecastNet.forecast``'s seasonal table.

        The rows are gathered for all series at once: row ``lo[b] + min(p, n[b] - 1)`` at position p of series b,
        values past the series' end then set to 0 (False), times past its end continued by its last step.
        """
        series = np.asarray(series)
        lens = self.lengths()[series]
        B, T = len(series), int(lens.max())
        lo = self.offsets[series]  # (B,)
        pos = np.arange(T + J)
        inside = pos[None] < lens[:, None]  # (B, T + J)
        rows = lo[:, None] + np.minimum(pos[None], lens[:, None] - 1)  # (B, T + J), past the end: the last row
        y = _gather(self.y, rows, inside, self.y_loc[series][:, None], self.y_scale[series][:, None])  # (B, T+J, K)
        obs = inside[..., None] if self.observed is None else self.observed[rows] & inside[..., None]
        past = _gather(self.past, rows[:, :T], inside[:, :T], self.past_loc, self.past_scale)  # (B, T, P)
        fut = _gather(self.future, rows, inside, self.future_loc, self.future_scale)  # (B, T + J, F)
        tix = self.tindex(rows)  # (B, T + J)
        last = tix[np.arange(B), lens - 1]  # (B,)
        before = self.tindex(lo + np.maximum(lens - 2, 0))
        step = np.where(lens > 1, last - before, 1)
        tix = np.where(inside, tix, last[:, None] + step[:, None] * (pos[None] - lens[:, None] + 1))
        y, obs, fut, tix = map(torch.from_numpy, (y, np.ascontiguousarray(obs), fut, tix))
        seas = season_features(tix, season)  # (B, T + J, 2 or 0)
        x = torch.cat([y[:, :T] * obs[:, :T], torch.from_numpy(past), fut[:, :T], seas[:, :T]], dim=-1)
        ahead = fut[:, 1:] if phases else torch.cat([fut, seas], dim=-1)[:, 1:]  # step t + 1 on, (B, T+J-1, F [+ s])
        known = ahead.unfold(1, J, 1)[:, :T]  # (B, T, F [+ s], J)
        known = known.transpose(2, 3).reshape(B, T, -1)  # (B, T, J * (F [+ s]))
        target = y[:, 1:].unfold(1, J, 1)[:, :T].transpose(2, 3)  # (B, T, J, K): y_{t+1..t+J}
        # obs is False past each series' end, so a target past it is not a target
        mask = obs[:, 1:].unfold(1, J, 1)[:, :T].transpose(2, 3).contiguous()
        lengths = torch.from_numpy(lens.astype(np.int64))
        static_num = torch.from_numpy(self.static_num[series])
        static_cat = torch.from_numpy(self.static_cat[series])
        base = target.new_zeros(()).expand(target.shape) if back is None else _base(y, T, back)  # a view of 0
        if phases:
            return x, static_num, static_cat, lengths, known, target, mask, base, tix[:, :T]
        return x, static_num, static_cat, lengths, known, target, mask, base


def _base(y: Tensor, T: int, back: np.ndarray) -> Tensor:
    """(B, T, J, K): ``y[:, max(t + j - back[j - 1], 0)]`` for t < T, j = 1..J, from y (B, T + J, K).

    The reference is that gather (``idx`` below). Where the offsets ``j - back[j - 1]`` step by 1 (the seasonal naive
    within one season) or stay put ("last") it is a view of y with its first value repeated in front, not a copy.
    """
    J = len(back)
    d = np.arange(1, J + 1) - back  # (J,) each target's base lies d[j - 1] <= 0 steps from t
    lead = int(-d.min())  # rows of y[:, 0] put in front: padded[p] = y[:, max(p - lead, 0)]
    if np.all(np.diff(d) == 1) or np.all(d == d[0]):
        padded = torch.cat([y[:, :1].expand(-1, lead, -1), y], dim=1)  # (B, lead + T + J, K)
        start = lead + int(d[0])
        if d[-1] == d[0]:  # "last": one base for every j
            return padded[:, start : start + T, None].expand(-1, -1, J, -1)
        return padded.unfold(1, J, 1)[:, start : start + T].transpose(2, 3)  # window t holds t + d[0], ...
    idx = (np.arange(T)[:, None] + d[None]).clip(0)  # (T, J), all <= t
    return y[:, torch.from_numpy(idx)]


def _affine(v: np.ndarray, loc, scale) -> np.ndarray:
    """float32((v - loc) / scale), computed in float64 as the scalers' ``transform``."""
    return ((v - loc) / scale).astype(np.float32)


def _gather(a: np.ndarray, rows: np.ndarray, inside: np.ndarray, loc, scale) -> np.ndarray:
    """float32 (B, L, C): ``_affine(a[rows], loc, scale)`` where ``inside`` (B, L), else 0; loc and scale (C,) or
    (B, 1, C). A column at a time: numpy broadcasts a few columns against (C,) slowly."""
    out = np.empty(rows.shape + a.shape[1:], np.float32)
    for j in range(a.shape[1]):
        out[..., j] = np.where(inside, (a[:, j][rows] - loc[..., j]) / scale[..., j], 0.0)
    return out


def _as_rows(rows, n: int) -> np.ndarray:
    return np.arange(*rows.indices(n)) if isinstance(rows, slice) else np.asarray(rows)


class _Rows:
    """Rows of an (N, K) array computed on demand by ``get(rows)``: ``rows[lo:hi]``, ``rows[index_array]``."""

    def __init__(self, get, shape):
        self.get, self.shape = get, shape

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        return self.get(rows)


def quantile_loss(pred: Tensor, target: Tensor, mask: Tensor, quantiles: tuple, point_loss: str) -> Tensor:
    """Point loss on pred[..., 0] plus the pinball loss of each quantile, averaged over the real targets.

    pred (..., 1 + Q), target (...), mask (...) bool.
    """
    m = mask.float()
    n = m.sum().clamp(min=1)
    err = target - pred[..., 0]
    total = ((err.abs() if point_loss == "mae" else err * err) * m).sum() / n
    for i, q in enumerate(quantiles):
        e = target - pred[..., 1 + i]
        total = total + (torch.maximum(q * e, (q - 1) * e) * m).sum() / n
    return total
