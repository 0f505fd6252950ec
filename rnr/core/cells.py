"""Recurrent cells: one time step of Elman, LSTM and GRU, and the input-only gates of minGRU and minLSTM.

Each cell has PyTorch's parameter names, layout and initialisation (``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``; uniform in ``[-1/sqrt(H), 1/sqrt(H)]``), so a state dict moves both ways between
``rnr.ElmanCell`` and ``torch.nn.RNNCell``, ``rnr.LSTMCell`` and ``torch.nn.LSTMCell``, ``rnr.GRUCell`` and
``torch.nn.GRUCell``.

The step functions (``elman_step``, ``lstm_step``, ``gru_step``) take the input already projected,
``xw = x_t W_x + b_ih``, because the layers in ``rnr.core.rnn`` project every time step in one matrix product.

minGRU and minLSTM (Feng et al. 2024) have no recurrent weight: their gates read only x_t, so a layer computes the
gates of every step in one product and what remains is ``h_t = a_t * h_{t-1} + b_t`` (``rnr.core.scan``).
``scanned_gates`` gives (a, b) from the projected input; they carry only ``weight_ih`` and ``bias_ih``.

References: Elman (1990), "Finding structure in time"; Hochreiter & Schmidhuber (1997), "Long short-term
memory"; Cho et al. (2014), "Learning phrase representations using RNN encoder-decoder"; Feng et al. (2024),
"Were RNNs all we needed?".
"""
import math
from typing import Callable, Union

import torch
from torch import Tensor, nn

from rnr.core.checks import check_cell_input

Phi = Union[str, Callable[[Tensor], Tensor]]

# Built-in activations with their derivative written in terms of the output s = phi(a), which is what the
# hand-written BPTT keeps; ``None`` means "differentiate the callable with autograd".
PHIS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda a: a,
}
CELLS = ("elman", "lstm", "gru", "mingru", "minlstm")
GATES = {"elman": 1, "lstm": 4, "gru": 3, "mingru": 2, "minlstm": 3}  # rows of weight_ih per hidden unit
SCANNED = ("mingru", "minlstm")  # gates read only the input: no weight_hh, the time loop is a linear scan


def resolve_phi(nonlinearity: Phi) -> Callable[[Tensor], Tensor]:
    """The activation function for a name in ``PHIS`` or an elementwise callable."""
    if callable(nonlinearity):
        return nonlinearity
    if isinstance(nonlinearity, str) and nonlinearity in PHIS:
        return PHIS[nonlinearity]
    raise ValueError(
        f"nonlinearity must be one of {sorted(PHIS)} or an elementwise callable, got {nonlinearity!r}; "
        f"pass e.g. nonlinearity='tanh' or nonlinearity=torch.nn.functional.softsign"
    )


def check_cell(cell: str) -> str:
    if not isinstance(cell, str) or cell not in CELLS:
        raise ValueError(f"cell must be one of {list(CELLS)}, got {cell!r}; pass e.g. cell='gru'")
    return cell


def init_uniform_(params, hidden_size: int) -> None:
    """PyTorch's RNN initialisation: every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)]."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in params:
        nn.init.uniform_(p, -bound, bound)


def elman_step(xw: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None, phi) -> Tensor:
    """h_t = phi(xw_t + h_{t-1} W_h + b_hh), with xw_t = x_t W_x + b_ih.  Shapes (B, H)."""
    a = xw + h @ weight_hh.t()
    if bias_hh is not None:
        a = a + bias_hh
    return phi(a)


def lstm_step(xw: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor, bias_hh: Tensor | None):
    """One LSTM step, gates in PyTorch's order (input i, forget f, cell g, output o).

    i, f, o = sigmoid(.), g = tanh(.), c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t).  xw: (B, 4H).
    """
    gates = xw + h @ weight_hh.t()
    if bias_hh is not None:
        gates = gates + bias_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def gru_step(xw: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """One GRU step, gates in PyTorch's order (reset r, update z, new n).

    r, z = sigmoid(.), n = tanh(xw_n + r * (h W_hn + b_hn)), h_t = (1 - z) * n + z * h_{t-1}.  xw: (B, 3H).
    """
    hw = h @ weight_hh.t()
    if bias_hh is not None:
        hw = hw + bias_hh
    x_r, x_z, x_n = xw.chunk(3, dim=-1)
    h_r, h_z, h_n = hw.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def scanned_gates(cell: str, xw: Tensor) -> tuple[Tensor, Tensor]:
    """(a, b) of ``h_t = a * h_{t-1} + b`` for minGRU or minLSTM from xw = x W_x + b_ih, (..., G*H) -> (..., H) each.

    minGRU, rows (z, h~) of weight_ih::

        z = sigmoid(xw_z),  h~ = xw_h,  h_t = (1 - z) * h_{t-1} + z * h~

    minLSTM, rows (f, i, h~)::

        f = sigmoid(xw_f),  i = sigmoid(xw_i),  h~ = xw_h,  f' = f / (f + i),  i' = i / (f + i)
        h_t = f' * h_{t-1} + i' * h~

    f' is computed as ``sigmoid(log f - log i)`` and i' as ``sigmoid(log i - log f)``: the same values, with
    f' + i' = 1, and no 0 / 0 where both gates saturate to zero.
    """
    if cell == "mingru":
        z, h_new = xw.chunk(2, dim=-1)
        z = torch.sigmoid(z)
        return 1 - z, z * h_new
    f, i, h_new = xw.chunk(3, dim=-1)
    d = nn.functional.logsigmoid(f) - nn.functional.logsigmoid(i)  # log f - log i
    return torch.sigmoid(d), torch.sigmoid(-d) * h_new


def scanned_step(cell: str, xw: Tensor, h: Tensor) -> Tensor:
    """One step of minGRU or minLSTM: h_t = a * h_{t-1} + b with (a, b) = ``scanned_gates(cell, xw)``. (B, H)."""
    a, b = scanned_gates(cell, xw)
    return a * h + b


class _Cell(nn.Module):
    """Shared parameters of the three cells: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh (G*H)."""

    kind = "elman"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        g = GATES[self.kind]
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = nn.Parameter(torch.empty(g * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(g * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(g * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        init_uniform_(self.parameters(), hidden_size)

    def _project(self, x: Tensor) -> Tensor:
        xw = x @ self.weight_ih.t()
        return xw + self.bias_ih if self.bias_ih is not None else xw

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class ElmanCell(_Cell):
    """One Elman step, ``h_t = phi(b_h + x_t W_x + h_{t-1} W_h)``, for any elementwise ``phi``.

    Args:
        input_size: features of x_t (I).
        hidden_size: units of h_t (H).
        nonlinearity: "tanh", "relu", "sigmoid", "identity" or an elementwise callable.
        bias: learn b_h (as ``bias_ih + bias_hh``, PyTorch's split).

    Shapes: x (B, I), h (B, H) -> (B, H).

    Example:
        >>> cell = ElmanCell(3, 8)
        >>> cell(torch.randn(2, 3)).shape
        torch.Size([2, 8])
    """

    kind = "elman"

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: Phi = "tanh", bias: bool = True):
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity
        self.phi = resolve_phi(nonlinearity)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        check_cell_input(x, h, self.input_size, self.hidden_size)
        h = self._zeros(x) if h is None else h
        return elman_step(self._project(x), h, self.weight_hh, self.bias_hh, self.phi)


class LSTMCell(_Cell):
    """One LSTM step; ``forward(x, (h, c)) -> (h, c)``, shapes (B, I) and (B, H)."""

    kind = "lstm"

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        h, c = (self._zeros(x), self._zeros(x)) if state is None else state
        check_cell_input(x, h, self.input_size, self.hidden_size)
        return lstm_step(self._project(x), h, c, self.weight_hh, self.bias_hh)


class GRUCell(_Cell):
    """One GRU step; ``forward(x, h) -> h``, shapes (B, I) and (B, H)."""

    kind = "gru"

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        check_cell_input(x, h, self.input_size, self.hidden_size)
        h = self._zeros(x) if h is None else h
        return gru_step(self._project(x), h, self.weight_hh, self.bias_hh)
