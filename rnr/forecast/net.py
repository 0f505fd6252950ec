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

    def forecast(self, h: Tensor, known: Tensor) -> Tensor:
        """h (B, T, H), known (B, T, J * (F + n_season [+ K base values])) -> (B, T, J, K, 1 + Q)."""
        y = self.head(torch.cat([h, known], dim=-1))
        return y.view(*h.shape[:2], self.J, self.K, self.n_out)


class SeriesArrays:
    """The scaled arrays of a panel, kept as numpy, from which batches of whole series are copied.

    y (N, K), observed (N, K) bool, past (N, P), future (N, F), tindex (N,) int64 time ordinals,
    static_num (S, C), static_cat (S, C_cat) int64, offsets (S + 1,).
    """

    def __init__(self, y, observed, past, future, tindex, static_num, static_cat, offsets):
        self.y, self.observed, self.past, self.future = y, observed, past, future
        self.tindex, self.static_num, self.static_cat, self.offsets = tindex, static_num, static_cat, offsets

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def batch(self, series: np.ndarray, J: int, season: int | None, back: np.ndarray | None = None):
        """Padded tensors for the given series: inputs, known-future features, targets and their mask.

        Returns x (B, T, I_no_static), static (B, C), static codes (B, C_cat), lengths (B,), known (B, T, J*(F+s)),
        target (B, T, J, K), target_mask (B, T, J, K), base (B, T, J, K): the value each target is forecast
        relative to (zeros when ``back`` is None; see ``base_back``).
        """
        lens = self.lengths()[series]
        B, T = len(series), int(lens.max())
        K, P, F = self.y.shape[1], self.past.shape[1], self.future.shape[1]
        y = np.zeros((B, T + J, K), np.float32)
        obs = np.zeros((B, T + J, K), bool)
        past = np.zeros((B, T, P), np.float32)
        fut = np.zeros((B, T + J, F), np.float32)
        tix = np.zeros((B, T + J), np.int64)
        for b, s in enumerate(series):
            lo, hi = self.offsets[s], self.offsets[s + 1]
            n = hi - lo
            y[b, :n], obs[b, :n], past[b, :n], fut[b, :n] = self.y[lo:hi], self.observed[lo:hi], self.past[lo:hi], \
                self.future[lo:hi]
            step = self.tindex[hi - 1] - self.tindex[hi - 2] if n > 1 else 1
            tix[b, :n] = self.tindex[lo:hi]
            tix[b, n:] = self.tindex[hi - 1] + step * np.arange(1, T + J - n + 1)
        y, obs, fut, tix = map(torch.from_numpy, (y, obs, fut, tix))
        seas = season_features(tix, season)  # (B, T + J, 2 or 0)
        x = torch.cat([y[:, :T] * obs[:, :T], torch.from_numpy(past), fut[:, :T], seas[:, :T]], dim=-1)
        ahead = torch.cat([fut, seas], dim=-1)[:, 1:]  # features of step t + 1 onwards, (B, T + J - 1, F + s)
        known = ahead.unfold(1, J, 1)[:, :T]  # (B, T, F + s, J)
        known = known.transpose(2, 3).reshape(B, T, -1)  # (B, T, J * (F + s))
        target = y[:, 1:].unfold(1, J, 1)[:, :T].transpose(2, 3)  # (B, T, J, K): y_{t+1..t+J}
        mask = obs[:, 1:].unfold(1, J, 1)[:, :T].transpose(2, 3)
        lengths = torch.from_numpy(lens.astype(np.int64))
        inside = torch.arange(T)[None, :, None] + torch.arange(1, J + 1)[None, None, :] < lengths[:, None, None]
        mask = mask & inside[..., None]  # a target past the series' end is not a target
        static_num = torch.from_numpy(self.static_num[series])
        static_cat = torch.from_numpy(self.static_cat[series])
        if back is None:
            base = torch.zeros_like(target)
        else:
            idx = (np.arange(T)[:, None] + np.arange(1, J + 1)[None] - back[None]).clip(0)  # (T, J), all <= t
            base = y[:, torch.from_numpy(idx)]  # (B, T, J, K)
        return x, static_num, static_cat, lengths, known, target, mask, base


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
