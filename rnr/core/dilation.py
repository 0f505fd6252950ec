"""Dilated recurrence: a layer whose step reads the state d steps back, ``h_t = cell(x_t, h_{t-d})``.

Reference: Chang et al. (2017), "Dilated Recurrent Neural Networks". A layer with dilation d is d interleaved ordinary
layers sharing one cell: the sub-sequences of steps t = r, r + d, r + 2d, ... (r = 0 .. d-1) never meet. ``RNN`` runs
them as one: ``fold`` moves the d sub-sequences into the batch, ``(B, T, I) -> (B*d, ceil(T/d), I)``, any ordinary
implementation runs that batch, and ``unfold`` puts the outputs back in time order. ``dilated_reference`` is the plain
loop they are held equal to (tests/core/test_dilation.py).

State: a layer with dilation d carries its d most recent states, the slots k = 0 .. d-1, each ``(B, H)``. Slot k
holds ``h_{L_b - d + k}`` for a row of length L_b, or, where ``L_b - d + k < 0``, the initial slot ``L_b + k`` it
started from. Sub-sequence r starts from initial slot r, so a sequence run in two chunks, the state carried, equals
running it whole. The backward direction of a bidirectional layer is the forward one over the sequence read backwards
(within each row's length): its slot k holds the state of its ``(L_b - d + k)``-th step read, ``h_{d - 1 - k}``, and
its first d steps read (``t = L_b - 1, ..., L_b - d``) start from slots 0 .. d-1.
"""
import torch
from torch import Tensor

from rnr.core.cells import SCANNED, elman_step, gru_step, lstm_step, scanned_step


def check_dilation(dilation, num_layers: int) -> tuple[int, ...]:
    """``dilation`` (an int >= 1 for every layer, or a tuple or list of one per layer) as a tuple of num_layers ints."""
    values = [dilation] * num_layers if isinstance(dilation, int) and not isinstance(dilation, bool) else dilation
    fix = (f"pass an int >= 1 for every layer (dilation=2) or one per layer, e.g. dilation="
           f"{tuple(2**k for k in range(num_layers))} for num_layers={num_layers}")
    if not isinstance(values, (tuple, list)):
        raise TypeError(f"dilation must be an int or a tuple of ints, got {type(dilation).__name__} {dilation!r}; "
                        f"{fix}")
    if len(values) != num_layers or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in values):
        raise ValueError(f"dilation must be an int >= 1 or a tuple of num_layers={num_layers} ints >= 1, got "
                         f"{dilation!r}; {fix}")
    return tuple(values)


# ---------------------------------------------------------------- sub-sequences in the batch and back


def sub_lengths(lengths: Tensor, d: int) -> Tensor:
    """(B*d,) the length of sub-sequence r of row b, ``ceil((L_b - r) / d)`` (0 where r >= L_b), at index b*d + r."""
    r = torch.arange(d)
    return ((lengths[:, None] - r + d - 1) // d).clamp(min=0).reshape(-1)


def fold(x: Tensor, d: int) -> Tensor:
    """(B, T, ...) -> (B*d, ceil(T/d), ...): row b*d + r holds x[b, r::d], zero-padded at the end."""
    B, T = x.shape[:2]
    n = -(-T // d)  # steps of the longest sub-sequence
    if n * d > T:
        x = torch.cat([x, x.new_zeros(B, n * d - T, *x.shape[2:])], dim=1)  # (B, n*d, ...)
    return x.view(B, n, d, *x.shape[2:]).transpose(1, 2).reshape(B * d, n, *x.shape[2:])


def unfold(y: Tensor, d: int, steps: int) -> Tensor:
    """The inverse of ``fold``: (B*d, n, ...) -> (B, steps, ...)."""
    Bd, n = y.shape[:2]
    B = Bd // d
    return y.view(B, d, n, *y.shape[2:]).transpose(1, 2).reshape(B, n * d, *y.shape[2:])[:, :steps]


def fold_slots(slots: Tensor) -> Tensor:
    """(d, B, H) slots -> (B*d, H) initial states: sub-sequence r of row b (row b*d + r) starts from slot r."""
    d, B, H = slots.shape
    return slots.transpose(0, 1).reshape(B * d, H)


def unfold_slots(ends: Tensor, lengths: Tensor) -> Tensor:
    """(B*d, H) last states of the sub-sequences -> (d, B, H) slots: slot k of row b is where sub-sequence
    ``(L_b + k) mod d`` ended, the one holding step ``L_b - d + k`` (the one that never started, where that is < 0)."""
    B = lengths.shape[0]
    H = ends.shape[-1]
    d = ends.shape[0] // B
    r = (lengths[:, None] + torch.arange(d)) % d  # (B, d): the sub-sequence behind each slot
    r = r.to(ends.device)[:, :, None].expand(B, d, H)
    return ends.view(B, d, H).gather(1, r).transpose(0, 1)  # (d, B, H)


# ---------------------------------------------------------------- the reference


def _step(cell: str, phi, x_t: Tensor, prev, w_ih, w_hh, b_ih, b_hh):
    """One step of one cell: x_t (1, I), prev h or (h, c) each (1, H)."""
    xw = x_t @ w_ih.t() if b_ih is None else x_t @ w_ih.t() + b_ih
    if cell == "lstm":
        return lstm_step(xw, prev[0], prev[1], w_hh, b_hh)
    if cell == "gru":
        return gru_step(xw, prev, w_hh, b_hh)
    if cell in SCANNED:
        return scanned_step(cell, xw, prev)
    return elman_step(xw, prev, w_hh, b_hh, phi)


def dilated_reference(rnn, x: Tensor, h0=None, lengths=None):
    """The plain loop every implementation of ``RNN(dilation=...)`` equals (without dropout), one sequence at a time.

    For each row b (its first L_b steps), layer by layer, each direction reads the layer's input step by step::

        forward:  h_t = cell(x_t, h_{t-d})  for t = 0 .. L_b - 1,  h_{t-d} = initial slot t where t < d
        backward: h_t = cell(x_t, h_{t+d})  for t = L_b - 1 .. 0,  h_{t+d} = initial slot L_b - 1 - t where t >= L_b - d

    The final slots are those the module docstring lays out. Returns ``(out (B, T, D*H), h_n)`` shaped as
    ``rnn(x, h0, lengths)`` returns them, outputs past each row's end zero.
    """
    B, T, _ = x.shape
    lengths = [T] * B if lengths is None else [int(n) for n in lengths]
    lstm, D, H = rnn.cell == "lstm", rnn.num_directions, rnn.hidden_size
    if h0 is None:
        zeros = x.new_zeros(sum(rnn.dilation) * D, B, H)
        h0 = (zeros, zeros) if lstm else zeros
    outs, finals = [], []
    for b, L in enumerate(lengths):
        inp = x[b, :L]  # (L, I): this row's real steps
        row_finals = []
        slot = 0  # index of the layer's (and direction's) first slot in h0
        for k, d in enumerate(rnn.dilation):
            directions = []
            for direction in range(D):
                init = [(h0[0][slot + j, b : b + 1], h0[1][slot + j, b : b + 1]) if lstm else h0[slot + j, b : b + 1]
                        for j in range(d)]  # slot j, (1, H)
                slot += d
                weights = rnn._weights(k, direction)
                h = [None] * L
                for s in range(L):  # s: steps read so far
                    t, back = (s, s - d) if direction == 0 else (L - 1 - s, L - 1 - s + d)
                    prev = h[back] if s >= d else init[s]  # h_{t-d} (backward: h_{t+d}), or initial slot s
                    h[t] = _step(rnn.cell, rnn.phi, inp[t : t + 1], prev, *weights)
                directions.append(torch.cat([ht[0] if lstm else ht for ht in h]) if L else inp.new_zeros(0, H))
                for j in range(d):  # slot j: the state of step L - d + j read, or initial slot L + j
                    s = L - d + j
                    row_finals.append(h[s if direction == 0 else L - 1 - s] if s >= 0 else init[L + j])
            inp = torch.cat(directions, dim=-1)  # (L, D*H): the next layer's input
        outs.append(torch.cat([inp, inp.new_zeros(T - L, D * H)]))  # (T, D*H)
        finals.append(row_finals)
    out = torch.stack(outs)  # (B, T, D*H)
    if lstm:
        return out, tuple(torch.stack([torch.cat([f[i][part] for f in finals]) for i in range(len(finals[0]))])
                          for part in range(2))
    return out, torch.stack([torch.cat([f[i] for f in finals]) for i in range(len(finals[0]))])  # (S, B, H)
