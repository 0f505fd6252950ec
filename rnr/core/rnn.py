"""A recurrent layer: Elman, LSTM, GRU, minGRU or minLSTM cells, stacked, optionally bidirectional, over ragged batches.

Parameters are named and laid out as in ``torch.nn.RNN/LSTM/GRU`` (``weight_ih_l{k}[_reverse]``, ...), so a state
dict loads both ways (minGRU and minLSTM have only ``weight_ih`` and ``bias_ih``: no recurrent weight). These
implementations compute the same thing (tests hold them together):

- ``"loop"``: the reference, each step written plainly with the step functions of ``rnr.core.cells`` under autograd;
- ``"bptt"``: Elman only, the hand-written backpropagation through time of ``rnr.core.bptt`` (any ``phi``);
- ``"fused"``: PyTorch's fused kernels (``torch._VF``, cuDNN on a GPU): LSTM, GRU, and Elman with tanh or relu;
- ``"compiled"``: the time loop compiled for the CPU (``rnr.core.kernels``, numba): every cell, Elman with a built-in
  phi;
- ``"scan"``: minGRU and minLSTM only, the only choice of ``"auto"`` for them: the gates of all steps in one product,
  then ``h_t = a_t * h_{t-1} + b_t`` over all steps at once (``rnr.core.scan.linear_scan``); ``"loop"`` is its
  reference.

``impl="auto"`` picks, on a GPU, ``"fused"`` where PyTorch has a kernel (cuDNN) and ``"bptt"`` for Elman layers with
any other phi; on a CPU, ``"compiled"`` while a step is small (``COMPILED_MAX_WORK``: where torch's per-step overhead dominates;
see ``bench/kernels.py``), above it ``"fused"``, or ``"bptt"`` for a custom phi.

Ragged batches: with ``lengths``, each sequence's state freezes after its last real step, outputs past the end are
zero, and the reverse direction reads each sequence backwards from its own last step, so every output, final
state and gradient equals running the sequences one by one.

Dilation (Chang et al. 2017): a layer with ``dilation=d`` computes ``h_t = cell(x_t, h_{t-d})``; its d interleaved
sub-sequences are folded into the batch and run by the same implementations (``rnr.core.dilation``, which also holds
the plain reference loop and the layout of the d states such a layer carries).
"""
from typing import Callable, Union

import torch
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnr.core import kernels
from rnr.core.bptt import elman_bptt
from rnr.core.cells import (
    GATES,
    PHIS,
    SCANNED,
    Phi,
    check_cell,
    elman_step,
    gru_step,
    init_uniform_,
    lstm_step,
    resolve_phi,
    scanned_gates,
    scanned_step,
)
from rnr.core.checks import (
    check_lengths,
    check_positive_int,
    check_probability,
    check_sequence,
    check_state,
    check_weights,
)
from rnr.core.dilation import check_dilation, fold, fold_slots, sub_lengths, unfold, unfold_slots
from rnr.core.fast import block_rows, run_compiled
from rnr.core.scan import linear_scan

PHI_CODES = {PHIS[name]: code for name, code in kernels.PHI_CODES.items()}  # phi -> kernel code
_COMPILED_DTYPES = (torch.float32, torch.float64)

State = Union[Tensor, tuple[Tensor, Tensor]]
IMPLS = ("auto", "loop", "bptt", "fused", "compiled", "scan")
# "auto" compiles a layer on the CPU while one step's hidden product, batch x gates*H x H multiply-adds, is at most
# this; above it a step is a large enough matrix product for PyTorch's kernels. Where scipy is present and one row's
# product is small enough (fast.block_rows), the compiled loop runs blocks of rows with each step's product by BLAS
# (kernels.*_tm): at least as fast as torch.nn up to 2**20 for all three cells (hidden 16-64, batch 1-64, training,
# 2 threads: LSTM 1.23-2.92x, GRU 3.1-70x, Elman 2.5-34x; one thread: LSTM 1.0-1.5x); else one row at a time
# (ROW_MAX_WORK: torch's CPU LSTM is fused and wins early, its GRU late). An LSTM under no_grad always runs torch's.
# Measured in bench/kernels.py (docs/performance.md).
COMPILED_MAX_WORK = {"elman": 2**20, "gru": 2**20, "lstm": 2**20}
ROW_MAX_WORK = {"elman": 2**18, "gru": 2**20, "lstm": 2**15}
_FUSED = {"lstm": _VF.lstm, "gru": _VF.gru, "tanh": _VF.rnn_tanh, "relu": _VF.rnn_relu}


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (B, T, ...) within its own length; padding stays where it is."""
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    t = torch.arange(T).expand(B, T)
    L = lengths[:, None]
    idx = torch.where(t < L, L - 1 - t, t).to(x.device)  # (B, T)
    return x.gather(1, idx.view(B, T, *([1] * (x.dim() - 2))).expand_as(x))


def step_mask(lengths: Tensor | None, steps: int, device=None) -> Tensor | None:
    """(B, T) bool: True at t < lengths[b]; None when every sequence fills the batch."""
    if lengths is None:
        return None
    return torch.arange(steps, device=device)[None, :] < lengths.to(device)[:, None]


def _run_loop(cell: str, phi, x: Tensor, state, w_ih, w_hh, b_ih, b_hh, mask):
    """The reference: one direction of one layer, step by step under autograd. x (B, T, I); state h or (h, c)."""
    T = x.shape[1]
    xw = x @ w_ih.t()  # (B, T, G*H): the input projection of every step in one product
    if b_ih is not None:
        xw = xw + b_ih
    outs = []
    for t in range(T):
        if cell == "lstm":
            new = lstm_step(xw[:, t], state[0], state[1], w_hh, b_hh)
        elif cell == "gru":
            new = gru_step(xw[:, t], state, w_hh, b_hh)
        elif cell in SCANNED:
            new = scanned_step(cell, xw[:, t], state)
        else:
            new = elman_step(xw[:, t], state, w_hh, b_hh, phi)
        if mask is not None:  # past a sequence's end the state stays as it was
            m = mask[:, t, None]
            new = tuple(torch.where(m, n, s) for n, s in zip(new, state)) if cell == "lstm" else torch.where(m, new, state)
        state = new
        h = state[0] if cell == "lstm" else state
        outs.append(h if mask is None else h * mask[:, t, None])
    return torch.stack(outs, dim=1), state  # (B, T, H)


def _run_scan(cell: str, x: Tensor, state: Tensor, w_ih, b_ih, mask):
    """minGRU or minLSTM over x (B, T, I) from state (B, H): the gates of all steps in one product, then the linear
    recurrence by ``linear_scan``. Equals ``_run_loop`` for the same cell. Returns out (B, T, H), final state."""
    B, T, _ = x.shape
    xw = x.reshape(B * T, -1) @ w_ih.t() if b_ih is None else torch.addmm(b_ih, x.reshape(B * T, -1), w_ih.t())
    a, b = scanned_gates(cell, xw.view(B, T, -1))  # (B, T, H) each
    if mask is not None:  # past a sequence's end a = 1, b = 0: the state stays at its last real step
        m = mask[:, :, None]
        a, b = torch.where(m, a, 1.0), torch.where(m, b, 0.0)
    h = linear_scan(a, b, state)  # (B, T, H)
    return (h if mask is None else h * m), h[:, -1]


def _fused(kernel, x: Tensor, hx, weights, has_bias, num_layers, dropout, train, bidirectional, lengths, lstm: bool):
    """PyTorch's fused kernel over x (B, T, I) from hx (h or (h, c), each (L*D, B, H)); ragged batches are packed."""
    args = (weights, has_bias, num_layers, dropout, train, bidirectional)
    if lengths is None:
        result = kernel(x, hx, *args, True)
        return result[0], (result[1], result[2]) if lstm else result[1]
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    order, back = packed.sorted_indices, packed.unsorted_indices
    hx = tuple(h.index_select(1, order) for h in hx) if lstm else hx.index_select(1, order)
    result = kernel(packed.data, packed.batch_sizes, hx, *args)
    out, _ = pad_packed_sequence(packed._replace(data=result[0]), batch_first=True, total_length=x.shape[1])
    if lstm:
        return out, (result[1].index_select(1, back), result[2].index_select(1, back))
    return out, result[1].index_select(1, back)


def _each(state, fn):
    """fn applied to a state: h, or each of an (h, c) pair."""
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


class RNN(nn.Module):
    """Stacked, optionally bidirectional recurrent layer with Elman, LSTM or GRU cells.

    Elman: ``h_t = phi(b_h + x_t W_x + h_{t-1} W_h)`` for every layer, the input of layer k > 0 being the
    outputs of layer k - 1 (both directions concatenated), with dropout between layers in training.

    Args:
        input_size: features of x_t (I).
        hidden_size: units of h_t per direction (H).
        cell: "elman", "lstm", "gru", "mingru" or "minlstm" (Feng et al. 2024: gates read only x_t, no recurrent
            weight, so training runs over all steps at once; see ``rnr.core.cells.scanned_gates``).
        nonlinearity: phi of Elman cells: "tanh", "relu", "sigmoid", "identity" or an elementwise callable.
        num_layers: stacked layers (L).
        bidirectional: also read each sequence backwards (D = 2) and concatenate.
        dropout: probability of zeroing outputs of every layer but the last, in training.
        bias: learn biases.
        impl: "auto", "loop" (the plain reference), "bptt" (Elman, hand-written backward), "fused"
            (PyTorch's kernels; LSTM, GRU, Elman with tanh or relu) or "compiled" (the CPU time loop compiled
            with numba; Elman with a built-in phi, LSTM, GRU) or "scan" (minGRU and minLSTM, which run "loop" or
            "scan" only). All give the same results.
        dilation: steps back each layer's recurrence reads, ``h_t = cell(x_t, h_{t-d})`` (the backward direction:
            ``h_{t+d}``); an int for every layer or a tuple of one int >= 1 per layer, e.g. ``(1, 2, 4)``.

    Shapes: ``forward(x (B, T, I), h0=None, lengths=None) -> (out (B, T, D*H), h_n (L*D, B, H))``; for LSTM
    ``h0`` and ``h_n`` are ``(h, c)`` pairs. ``lengths`` (B,) gives each sequence's real length. A layer with
    dilation d carries its d most recent states, so with dilation the states are ``(sum(dilation) * D, B, H)``:
    layer by layer, then direction, then slot k = 0 .. d-1, slot k holding ``h_{L_b - d + k}`` (the layout in
    ``rnr.core.dilation``); passing ``h_n`` on as the next chunk's ``h0`` continues the sequence.

    Example:
        >>> rnn = RNN(3, 16, cell="gru", num_layers=2, bidirectional=True)
        >>> out, h_n = rnn(torch.randn(4, 10, 3), lengths=torch.tensor([10, 7, 3, 1]))
        >>> out.shape, h_n.shape
        (torch.Size([4, 10, 32]), torch.Size([4, 4, 16]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        cell: str = "elman",
        nonlinearity: Phi = "tanh",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
        impl: str = "auto",
        dilation: int | tuple[int, ...] = 1,
    ):
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.cell = check_cell(cell)
        self.nonlinearity = nonlinearity
        self.phi: Callable[[Tensor], Tensor] = resolve_phi(nonlinearity)
        if cell != "elman" and nonlinearity != "tanh":
            raise ValueError(
                f"nonlinearity applies only to cell='elman', got nonlinearity={nonlinearity!r} with cell={cell!r}; "
                f"leave nonlinearity at its default for LSTM and GRU"
            )
        self.num_layers = check_positive_int(num_layers, "num_layers")
        self.bidirectional = bool(bidirectional)
        self.dropout = check_probability(dropout, "dropout")
        self.bias = bool(bias)
        self.num_directions = 2 if bidirectional else 1
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {list(IMPLS)}, got {impl!r}")
        if cell in SCANNED and impl not in ("auto", "loop", "scan"):
            raise ValueError(f"impl={impl!r} does not apply to cell={cell!r}, which has no recurrent weight and runs "
                             f"as a linear scan; use impl='auto' (or 'scan', or 'loop' for the plain reference)")
        if impl == "scan" and cell not in SCANNED:
            raise ValueError(f"impl='scan' is for cells whose gates read only the input ({list(SCANNED)}), got "
                             f"cell={cell!r}; use impl='auto'")
        if impl == "bptt" and cell != "elman":
            raise ValueError(f"impl='bptt' (hand-written BPTT) is for cell='elman' only, got cell={cell!r}")
        if impl == "fused" and cell == "elman" and self.phi not in (PHIS["tanh"], PHIS["relu"]):
            raise ValueError(f"impl='fused' needs nonlinearity 'tanh' or 'relu' for Elman cells, got "
                             f"{nonlinearity!r}; use impl='bptt' for any other phi")
        if impl == "compiled" and cell == "elman" and self.phi not in PHI_CODES:
            raise ValueError(f"impl='compiled' needs a built-in nonlinearity ({sorted(kernels.PHI_CODES)}) for Elman "
                             f"cells, got {nonlinearity!r}; use impl='bptt' for any other phi")
        if impl == "compiled" and not kernels.AVAILABLE:
            raise ImportError("impl='compiled' needs numba, which is not installed; pip install numba, or use "
                              "impl='auto'")
        self.impl = impl
        self.dilation = check_dilation(dilation, num_layers)  # one int per layer
        self.config = dict(input_size=input_size, hidden_size=hidden_size, cell=cell, nonlinearity=nonlinearity,
                           num_layers=num_layers, bidirectional=bidirectional, dropout=dropout, bias=bias, impl=impl,
                           dilation=dilation)
        g = GATES[cell]
        d = self.num_directions
        check_weights(num_layers * d * g * hidden_size * (input_size + hidden_size * d + 2),
                      f"hidden_size={hidden_size} (input_size={input_size}, num_layers={num_layers}, {cell})",
                      "lower hidden_size")
        recurrent = cell not in SCANNED  # minGRU and minLSTM: weight_ih and bias_ih only
        self._names = []  # per (layer, direction): (w_ih, w_hh, b_ih, b_hh) names, None for those it has not
        for k in range(num_layers):
            layer_in = input_size if k == 0 else hidden_size * self.num_directions
            for suffix in ["", "_reverse"][: self.num_directions]:
                shapes = {f"weight_ih_l{k}{suffix}": (g * hidden_size, layer_in),
                          f"weight_hh_l{k}{suffix}": (g * hidden_size, hidden_size) if recurrent else None,
                          f"bias_ih_l{k}{suffix}": (g * hidden_size,) if bias else None,
                          f"bias_hh_l{k}{suffix}": (g * hidden_size,) if bias and recurrent else None}
                for name, shape in shapes.items():
                    if shape is not None:
                        setattr(self, name, nn.Parameter(torch.empty(shape)))
                self._names.append([name if shape is not None else None for name, shape in shapes.items()])
        init_uniform_(self.parameters(), hidden_size)

    def _weights(self, layer: int, direction: int):
        """(w_ih, w_hh, b_ih, b_hh), None where the layer has none (no bias; minGRU and minLSTM: no w_hh, b_hh)."""
        names = self._names[layer * self.num_directions + direction]
        return [None if n is None else getattr(self, n) for n in names]

    def _impl(self, x: Tensor) -> str:
        if self.impl != "auto":
            if self.impl == "compiled" and (x.device.type != "cpu" or x.dtype not in _COMPILED_DTYPES):
                raise ValueError(f"impl='compiled' runs float32 or float64 tensors on the CPU, got {x.dtype} on "
                                 f"{x.device}; use impl='auto'")
            return self.impl
        if self.cell in SCANNED:
            return "scan"
        fusable = self.cell != "elman" or self.phi in (PHIS["tanh"], PHIS["relu"])
        compilable = (kernels.AVAILABLE and x.device.type == "cpu" and x.dtype in _COMPILED_DTYPES
                      and (self.cell != "elman" or self.phi in PHI_CODES))
        B, G, H = x.shape[0], GATES[self.cell], self.hidden_size
        limit = (COMPILED_MAX_WORK if compilable and block_rows(B, G, H) else ROW_MAX_WORK)[self.cell]
        if self.cell == "lstm" and not torch.is_grad_enabled():
            limit = 0  # inference: torch's fused LSTM, free of autograd, is faster (compiled 0.7-0.94x of it)
        if compilable and B * G * H**2 <= limit:
            return "compiled"
        return "fused" if fusable else "bptt"

    def _run(self, x, state, layer, direction, lengths, mask, impl):
        """One direction of one layer. x (B, T, I_k) -> out (B, T, H), final state."""
        weights = self._weights(layer, direction)
        if direction == 1:
            x = reverse_padded(x, lengths)
        out, state = self._recur(x, state, weights, lengths, mask, impl)
        if direction == 1:
            out = reverse_padded(out, lengths)
        return out, state

    def _recur(self, x, state, weights, lengths, mask, impl):
        """h_t = cell(x_t, h_{t-1}) over x (B, T, I_k) read forwards -> out (B, T, H), final state."""
        w_ih, w_hh, b_ih, b_hh = weights
        if impl == "scan":
            return _run_scan(self.cell, x, state, w_ih, b_ih, mask)
        if impl == "bptt":
            return elman_bptt(x, state, w_ih, w_hh, b_ih, b_hh, self.phi, mask)
        if impl == "compiled":
            return run_compiled(self.cell, PHI_CODES.get(self.phi, 0), x, state, w_ih, w_hh, b_ih, b_hh, lengths)
        if impl == "fused":  # one direction of one layer: only dilated layers come here, the rest go by _run_fused
            lstm = self.cell == "lstm"
            hx = _each(state, lambda s: s[None])  # (1, B, H)
            out, state = _fused(self._kernel(), x, hx, [w for w in weights if w is not None], self.bias, 1, 0.0,
                                False, False, lengths, lstm)
            return out, _each(state, lambda s: s[0])
        return _run_loop(self.cell, self.phi, x, state, w_ih, w_hh, b_ih, b_hh, mask)

    def _run_dilated(self, x, slots, layer, direction, lengths, impl):
        """One direction of one layer with dilation d: ``h_t = cell(x_t, h_{t-d})`` (backward: ``h_{t+d}``).

        x (B, T, I_k), slots (d, B, H) (each of h and c for LSTM) -> out (B, T, H), final slots (d, B, H), laid out
        as ``rnr.core.dilation`` says. The d sub-sequences of each row go into the batch (``fold``), the ordinary
        recurrence runs them with ``impl``, and ``unfold`` puts the outputs back; sub-sequences with no step (a row
        shorter than d) skip the run and end where they started. Equals ``rnr.core.dilation.dilated_reference``.
        """
        B, T = x.shape[:2]
        d = self.dilation[layer]
        full = torch.full((B,), T, dtype=torch.int64) if lengths is None else lengths
        if direction == 1:  # the backward direction is the forward one over each row read backwards
            x = reverse_padded(x, lengths)
        sub = sub_lengths(full, d)  # (B*d,): row b*d + r is sub-sequence r of row b
        live = (sub > 0).nonzero()[:, 0].to(x.device)  # the sub-sequences with at least one step
        xs = fold(x, d).index_select(0, live)  # (live, n, I_k), n = ceil(T/d)
        n = xs.shape[1]
        sub_live = sub[sub > 0]
        sub_live = None if bool((sub_live == n).all()) else sub_live
        start = _each(slots, fold_slots)  # (B*d, H): sub-sequence r starts from slot r
        out, end = self._recur(xs, _each(start, lambda s: s.index_select(0, live)), self._weights(layer, direction),
                               sub_live, step_mask(sub_live, n, x.device), impl)
        out = unfold(out.new_zeros(B * d, n, self.hidden_size).index_copy(0, live, out), d, T)  # (B, T, H)
        # (B*d, H): where each sub-sequence ended, an empty one where it started
        ends = (tuple(s.index_copy(0, live, e) for s, e in zip(start, end)) if isinstance(start, tuple)
                else start.index_copy(0, live, end))
        if direction == 1:
            out = reverse_padded(out, lengths)
        return out, _each(ends, lambda e: unfold_slots(e, full))

    def _kernel(self):
        return _FUSED[self.cell if self.cell != "elman" else ("relu" if self.phi is PHIS["relu"] else "tanh")]

    def _run_fused(self, x: Tensor, h0, lengths):
        """All layers and directions in one call to PyTorch's kernel; ragged batches go through packing."""
        weights = [getattr(self, n) for names in self._names for n in names if n is not None]
        return _fused(self._kernel(), x, h0, weights, self.bias, self.num_layers, self.dropout, self.training,
                      self.bidirectional, lengths, self.cell == "lstm")

    def forward(self, x: Tensor, h0: State | None = None, lengths=None) -> tuple[Tensor, State]:
        check_sequence(x, self.input_size, "x")
        B, T, _ = x.shape
        lengths = check_lengths(lengths, B, T)
        if lengths is not None and bool((lengths == T).all()):
            lengths = None  # a full batch needs no mask
        mask = step_mask(lengths, T, x.device)
        dilated = any(d > 1 for d in self.dilation)
        n_states = sum(self.dilation) * self.num_directions  # num_layers * num_directions without dilation
        shape = (n_states, B, self.hidden_size)
        if dilated:  # a shape error that names the rule of dilated states (check_state's names num_layers)
            named = zip(("h0[0]", "h0[1]"), h0) if isinstance(h0, (tuple, list)) else [("h0", h0)]
            for name, h in named:
                if isinstance(h, Tensor) and tuple(h.shape) != shape:
                    raise ValueError(f"{name} must have shape {shape} (sum(dilation) * num_directions, batch, hidden) "
                                     f"with dilation={self.dilation}: a layer with dilation d carries d states, got "
                                     f"{tuple(h.shape)}; pass the h_n this layer returned, or None for zeros")
        if h0 is None:
            zeros = x.new_zeros(shape)
            h0 = (zeros, zeros) if self.cell == "lstm" else zeros
        elif self.cell == "lstm":
            if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
                raise TypeError(f"h0 must be an (h, c) pair of tensors for cell='lstm', got {type(h0).__name__}; "
                                f"pass h0=(h, c), each of shape {shape}")
            check_state(h0[0], shape, "h0[0]")
            check_state(h0[1], shape, "h0[1]")
        else:
            check_state(h0, shape, "h0")
        impl = self._impl(x)
        if impl == "fused" and not dilated:
            return self._run_fused(x, h0, lengths)
        finals = []  # one state per layer, direction and slot, in h_n's order
        i = 0  # index in h0 of the next layer's (and direction's) first state
        for k in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                dk = self.dilation[k]
                if dk == 1:
                    state = (h0[0][i], h0[1][i]) if self.cell == "lstm" else h0[i]
                    out, state = self._run(x, state, k, d, lengths, mask, impl)
                    finals.append(state)
                else:
                    slots = (h0[0][i : i + dk], h0[1][i : i + dk]) if self.cell == "lstm" else h0[i : i + dk]
                    out, slots = self._run_dilated(x, slots, k, d, lengths, impl)
                    finals.extend(zip(*slots) if self.cell == "lstm" else slots.unbind(0))
                i += dk
                outs.append(out)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (B, T, D*H)
            if self.dropout and self.training and k < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        if self.cell == "lstm":
            h_n = (torch.stack([f[0] for f in finals]), torch.stack([f[1] for f in finals]))
        else:
            h_n = torch.stack(finals)  # (L*D, B, H); with dilation (sum(dilation) * D, B, H)
        return x, h_n

    def extra_repr(self) -> str:
        s = f"{self.cell}, {self.input_size} -> {self.hidden_size}"
        if self.cell == "elman" and self.nonlinearity != "tanh":
            s += f", nonlinearity={getattr(self.nonlinearity, '__name__', self.nonlinearity)!s}"
        for name, default in [("num_layers", 1), ("bidirectional", False), ("dropout", 0.0), ("bias", True),
                              ("impl", "auto")]:
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if any(d > 1 for d in self.dilation):
            given = self.config["dilation"]
            s += f", dilation={given if isinstance(given, int) else self.dilation}"
        return s


# recurrent states ((L*D, B, H) tensors, or (h, c) pairs) indexed by batch row: truncated BPTT and carried states


def take_rows(state, rows: Tensor):
    """The given batch rows of a state."""
    return tuple(s.index_select(1, rows) for s in state) if isinstance(state, tuple) else state.index_select(1, rows)


def detach_state(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def put_rows(state, rows: Tensor, new, size: int | None = None):
    """A copy of ``state`` with its ``rows`` replaced by ``new``; a zero state of ``size`` rows when state is None."""
    if isinstance(new, tuple):
        base = state if state is not None else (None,) * len(new)
        return tuple(put_rows(b, rows, n, size) for b, n in zip(base, new))
    base = new.new_zeros(new.shape[0], size, new.shape[2]) if state is None else state.clone()
    base[:, rows] = new
    return base
