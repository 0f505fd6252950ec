"""The compiled recurrence of ``rnr.core.kernels`` as autograd functions on CPU tensors (``RNN(impl="compiled")``).

One call runs one direction of one layer. Large products stay in torch: the input projection of all steps before
the loop (``x W_x`` as one (B*T, I) x (I, G*H) product) and, in the backward pass, the weight gradients summed
over time and the input gradient, each one product over the B*T rows. Only the loop over time, where torch would
pay its per-operation overhead at every step, runs in compiled code.
"""
import torch
from torch import Tensor

from rnr.core import kernels


def _np(t: Tensor):
    return t.detach().contiguous().numpy()


def use_torch_threads() -> None:
    """Follow torch's thread setting (``torch.set_num_threads``) in the compiled loops."""
    numba = kernels.numba
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def _project(x: Tensor, w_ih: Tensor, bias: Tensor | None) -> Tensor:
    B, T, _ = x.shape
    x2 = x.reshape(B * T, -1)
    xw = x2 @ w_ih.t() if bias is None else torch.addmm(bias, x2, w_ih.t())
    return xw.view(B, T, -1)


def _weight_grads(ctx_x, d_in: Tensor, w_ih: Tensor, d_hid: Tensor, prev: Tensor):
    """grad x, grad weight_ih, grad weight_hh from dL/d(input projection) and dL/d(hidden projection)."""
    B, T, G = d_in.shape
    d_in2 = d_in.reshape(B * T, G)
    d_hid2 = d_hid.reshape(B * T, G)
    grad_x = (d_in2 @ w_ih).view_as(ctx_x)
    grad_w_ih = d_in2.t() @ ctx_x.reshape(B * T, -1)
    grad_w_hh = d_hid2.t() @ prev.reshape(B * T, -1)
    return grad_x, grad_w_ih, grad_w_hh, d_in2.sum(0), d_hid2.sum(0)


def _dense(grad: Tensor | None, like: Tensor) -> Tensor:
    """An incoming gradient as a contiguous tensor; zeros where autograd passed None (an output not used)."""
    return torch.zeros_like(like) if grad is None else grad.contiguous()


def _prev_states(h0: Tensor, states: Tensor) -> Tensor:
    """s_{t-1} for every t, (B, T, H); past a row's end its value is unused (the gradients there are zero)."""
    return torch.cat([h0[:, None], states[:, :-1]], dim=1)


class ElmanCompiled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, code):
        bias = None if b_ih is None else b_ih + b_hh
        xw = _project(x, w_ih, bias)
        B, T, H = xw.shape
        out = x.new_empty(B, T, H)
        h_n = x.new_empty(B, H)
        use_torch_threads()
        kernels.elman_forward(_np(xw), _np(h0), _np(w_hh.t()), lengths.numpy(), code, out.numpy(), h_n.numpy())
        ctx.code, ctx.has_bias = code, b_ih is not None
        ctx.save_for_backward(x, h0, w_ih, w_hh, out, lengths)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x, h0, w_ih, w_hh, out, lengths = ctx.saved_tensors
        grad_out, grad_hn = _dense(grad_out, out), _dense(grad_hn, h0)
        da = torch.empty_like(out)
        grad_h0 = torch.empty_like(h0)
        use_torch_threads()
        kernels.elman_backward(_np(out), grad_out.numpy(), grad_hn.numpy(), _np(w_hh.t()), lengths.numpy(), ctx.code,
                               da.numpy(), grad_h0.numpy())
        grad_x, grad_w_ih, grad_w_hh, grad_b, _ = _weight_grads(x, da, w_ih, da, _prev_states(h0, out))
        grad_b = grad_b if ctx.has_bias else None
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b, grad_b, None, None


class LSTMCompiled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths):
        bias = None if b_ih is None else b_ih + b_hh
        xw = _project(x, w_ih, bias)
        B, T, G = xw.shape
        H = G // 4
        out, h_n, c_n = x.new_empty(B, T, H), x.new_empty(B, H), x.new_empty(B, H)
        train = any(ctx.needs_input_grad)
        gates = xw if train else x.new_empty(0, 0, 0)  # each step's gates overwrite its projection in place
        cells = x.new_empty((B, T, H) if train else (0, 0, 0))
        use_torch_threads()
        kernels.lstm_forward(_np(xw), _np(h0), _np(c0), _np(w_hh.t()), lengths.numpy(), out.numpy(), h_n.numpy(),
                             c_n.numpy(), gates.numpy(), cells.numpy())
        ctx.has_bias = b_ih is not None
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, out, gates, cells, lengths)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn, grad_cn):
        x, h0, c0, w_ih, w_hh, out, gates, cells, lengths = ctx.saved_tensors
        grad_out, grad_hn, grad_cn = _dense(grad_out, out), _dense(grad_hn, h0), _dense(grad_cn, c0)
        da = torch.empty_like(gates)
        grad_h0, grad_c0 = torch.empty_like(h0), torch.empty_like(c0)
        use_torch_threads()
        kernels.lstm_backward(gates.numpy(), cells.numpy(), _np(c0), grad_out.numpy(), grad_hn.numpy(),
                              grad_cn.numpy(), _np(w_hh.t()), lengths.numpy(), da.numpy(), grad_h0.numpy(),
                              grad_c0.numpy())
        grad_x, grad_w_ih, grad_w_hh, grad_b, _ = _weight_grads(x, da, w_ih, da, _prev_states(h0, out))
        grad_b = grad_b if ctx.has_bias else None
        return grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b, grad_b, None


class GRUCompiled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths):
        xw = _project(x, w_ih, b_ih)
        B, T, G = xw.shape
        H = G // 3
        b_hh_ = x.new_zeros(G) if b_hh is None else b_hh
        out, h_n = x.new_empty(B, T, H), x.new_empty(B, H)
        train = any(ctx.needs_input_grad)
        gates = xw if train else x.new_empty(0, 0, 0)  # each step's gates overwrite its projection in place
        hn = x.new_empty((B, T, H) if train else (0, 0, 0))
        use_torch_threads()
        kernels.gru_forward(_np(xw), _np(h0), _np(w_hh.t()), _np(b_hh_), lengths.numpy(), out.numpy(), h_n.numpy(),
                            gates.numpy(), hn.numpy())
        ctx.has_bias = b_ih is not None
        ctx.save_for_backward(x, h0, w_ih, w_hh, out, gates, hn, lengths)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x, h0, w_ih, w_hh, out, gates, hn, lengths = ctx.saved_tensors
        grad_out, grad_hn = _dense(grad_out, out), _dense(grad_hn, h0)
        dx, dh = torch.empty_like(gates), torch.empty_like(gates)
        grad_h0 = torch.empty_like(h0)
        use_torch_threads()
        kernels.gru_backward(gates.numpy(), hn.numpy(), out.numpy(), _np(h0), grad_out.numpy(), grad_hn.numpy(),
                             _np(w_hh.t()), lengths.numpy(), dx.numpy(), dh.numpy(), grad_h0.numpy())
        grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh = _weight_grads(x, dx, w_ih, dh, _prev_states(h0, out))
        if not ctx.has_bias:
            grad_b_ih = grad_b_hh = None
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None


def run_compiled(cell: str, code: int, x: Tensor, state, w_ih, w_hh, b_ih, b_hh, lengths: Tensor | None):
    """One direction of one layer: x (B, T, I), state h or (h, c) each (B, H). Returns out (B, T, H), final state."""
    B, T, _ = x.shape
    lengths = torch.full((B,), T, dtype=torch.int64) if lengths is None else lengths.to(torch.int64).contiguous()
    if cell == "lstm":
        out, h, c = LSTMCompiled.apply(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh, lengths)
        return out, (h, c)
    if cell == "gru":
        return GRUCompiled.apply(x, state, w_ih, w_hh, b_ih, b_hh, lengths)
    return ElmanCompiled.apply(x, state, w_ih, w_hh, b_ih, b_hh, lengths, code)
