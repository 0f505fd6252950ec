"""The compiled recurrence of ``rnr.core.kernels`` as autograd functions on CPU tensors (``RNN(impl="compiled")``).

One call runs one direction of one layer. Large products stay in torch: the input projection of all steps before
the loop (``x W_x`` as one (B*T, I) x (I, G*H) product) and, in the backward pass, the weight gradients summed
over time and the input gradient, each one product over the B*T rows. Only the loop over time, where torch would
pay its per-operation overhead at every step, runs in compiled code: by blocks of rows, each step's hidden product
one BLAS product, in time-major arrays (``*Blocks``, ``kernels.*_tm``) where ``block_rows`` allows, else one row at
a time (``*Compiled``, the row kernels).
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


def _mm_t(a: Tensor, b: Tensor) -> Tensor:
    """a @ b computed as (b.t() @ a.t()).t(): where one side is thin (the I input features), torch's CPU product is
    4 to 5 times faster this way round (measured, one thread: (6400, 256) x (256, 8) 1.8 ms against 0.48 ms;
    (256, 6400) x (6400, 8) 2.6 ms against 0.39 ms)."""
    return (b.t() @ a.t()).t().contiguous()


def _weight_grads(ctx_x, d_in: Tensor, w_ih: Tensor, d_hid: Tensor, prev: Tensor):
    """grad x, grad weight_ih, grad weight_hh from dL/d(input projection) and dL/d(hidden projection)."""
    B, T, G = d_in.shape
    d_in2 = d_in.reshape(B * T, G)
    d_hid2 = d_hid.reshape(B * T, G)
    grad_x = _mm_t(d_in2, w_ih).view_as(ctx_x)
    grad_w_ih = _mm_t(d_in2.t(), ctx_x.reshape(B * T, -1))
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


# --- blocks of rows, time-major (kernels.*_tm): the hidden product of each step by BLAS ------------------------------


MAX_ROWS = 32  # rows per block: past this the product gains nothing and a block's scratch leaves L1


def block_rows(B: int, gates: int, H: int) -> int:
    """Rows per block for the ``*_tm`` kernels: the batch split evenly over the threads, at most MAX_ROWS and at
    most what keeps one block's product under kernels.BLAS_MAX_WORK; 0 where the row kernels should run (no scipy,
    or a product too large for one block even of one row)."""
    cap = min(MAX_ROWS, kernels.BLAS_MAX_WORK // (gates * H * H)) if kernels.BLAS else 0
    if cap < 1:
        return 0
    threads = kernels.numba.get_num_threads()
    return max(1, min(cap, -(-B // threads)))


def _project_tm(x: Tensor, w_ih: Tensor, bias: Tensor | None):
    """(x as (T*B, I) rows, time-major; x W_ih + bias as a (T, B, G*H) array)."""
    B, T, _ = x.shape
    x2 = x.transpose(0, 1).reshape(T * B, -1)  # (T*B, I)
    xw = x2 @ w_ih.t() if bias is None else torch.addmm(bias, x2, w_ih.t())
    return x2, xw.view(T, B, -1)


def _grads_tm(need, x2: Tensor, d_in: Tensor, w_ih: Tensor, d_hid: Tensor, h0: Tensor, out: Tensor):
    """grad x, grad weight_ih, grad weight_hh, grad of the input bias and of the hidden one from time-major (T, B,
    G*H) gradients of the input and hidden projections (the same tensor for Elman and LSTM); x2 is x as (T*B, I),
    out is (B, T, H). ``need`` (x, weight_ih, weight_hh, biases): a product nobody asked for is skipped (None)."""
    T, B, G = d_in.shape
    d_in2 = d_in.view(T * B, G)
    d_hid2 = d_hid.view(T * B, G)
    grad_x = grad_w_ih = grad_w_hh = grad_b_ih = grad_b_hh = None
    if need[0]:
        grad_x = _mm_t(d_in2, w_ih).view(T, B, -1).transpose(0, 1)  # (B, T, I)
    if need[1]:
        grad_w_ih = _mm_t(d_in2.t(), x2)
    if need[2]:
        prev = torch.cat([h0[None], out.transpose(0, 1)[:-1]])  # (T, B, H): s_{t-1}
        grad_w_hh = d_hid2.t() @ prev.view(T * B, -1)
    if need[3]:
        grad_b_ih = d_in2.sum(0)
        grad_b_hh = grad_b_ih if d_hid is d_in else d_hid2.sum(0)
    return grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


class ElmanBlocks(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, code, rows):
        bias = None if b_ih is None else b_ih + b_hh
        x2, xw = _project_tm(x, w_ih, bias)
        T, B, H = xw.shape
        out = x.new_empty(B, T, H)
        h_n = x.new_empty(B, H)
        kernels.elman_forward_tm(xw.numpy(), _np(h0), _np(w_hh.t()), lengths.numpy(), code, rows, out.numpy(),
                                 h_n.numpy())
        ctx.code, ctx.rows = code, rows
        ctx.save_for_backward(x2, h0, w_ih, w_hh, out, lengths)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x2, h0, w_ih, w_hh, out, lengths = ctx.saved_tensors
        grad_out, grad_hn = _dense(grad_out, out), _dense(grad_hn, h0)
        B, T, H = out.shape
        da = out.new_empty(T, B, H)
        grad_h0 = torch.empty_like(h0)
        use_torch_threads()
        kernels.elman_backward_tm(out.numpy(), grad_out.numpy(), grad_hn.numpy(), _np(w_hh), lengths.numpy(), ctx.code,
                                  ctx.rows, da.numpy(), grad_h0.numpy())
        need = ctx.needs_input_grad
        grad_x, grad_w_ih, grad_w_hh, grad_b, _ = _grads_tm(need[:1] + need[2:4] + (any(need[4:6]),), x2, da, w_ih,
                                                             da, h0, out)
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b, grad_b, None, None, None


class LSTMBlocks(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, rows):
        bias = None if b_ih is None else b_ih + b_hh
        x2, xw = _project_tm(x, w_ih, bias)  # (T, B, 4H), overwritten by the gates
        T, B, G = xw.shape
        H = G // 4
        out, h_n, c_n = x.new_empty(B, T, H), x.new_empty(B, H), x.new_empty(B, H)
        cells = x.new_empty((T, B, H) if any(ctx.needs_input_grad) else (0, 0, 0))
        kernels.lstm_forward_tm(xw.numpy(), _np(h0), _np(c0), _np(w_hh.t()), lengths.numpy(), rows, out.numpy(),
                                h_n.numpy(), c_n.numpy(), cells.numpy())
        ctx.rows = rows
        ctx.save_for_backward(x2, h0, c0, w_ih, w_hh, out, xw, cells, lengths)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn, grad_cn):
        x2, h0, c0, w_ih, w_hh, out, gates, cells, lengths = ctx.saved_tensors
        grad_out, grad_hn, grad_cn = _dense(grad_out, out), _dense(grad_hn, h0), _dense(grad_cn, c0)
        da = torch.empty_like(gates)  # (T, B, 4H)
        grad_h0, grad_c0 = torch.empty_like(h0), torch.empty_like(c0)
        use_torch_threads()
        kernels.lstm_backward_tm(gates.numpy(), cells.numpy(), _np(c0), grad_out.numpy(), grad_hn.numpy(),
                                 grad_cn.numpy(), _np(w_hh), lengths.numpy(), ctx.rows, da.numpy(), grad_h0.numpy(),
                                 grad_c0.numpy())
        need = ctx.needs_input_grad
        grad_x, grad_w_ih, grad_w_hh, grad_b, _ = _grads_tm(need[:1] + need[3:5] + (any(need[5:7]),), x2, da, w_ih,
                                                             da, h0, out)
        return grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b, grad_b, None, None


class GRUBlocks(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, rows):
        x2, xw = _project_tm(x, w_ih, b_ih)  # (T, B, 3H), overwritten by r, z, n
        T, B, G = xw.shape
        H = G // 3
        b_hh_ = x.new_zeros(G) if b_hh is None else b_hh
        out, h_n = x.new_empty(B, T, H), x.new_empty(B, H)
        hn = x.new_empty((T, B, H) if any(ctx.needs_input_grad) else (0, 0, 0))
        kernels.gru_forward_tm(xw.numpy(), _np(h0), _np(w_hh.t()), _np(b_hh_), lengths.numpy(), rows, out.numpy(),
                               h_n.numpy(), hn.numpy())
        ctx.rows = rows
        ctx.save_for_backward(x2, h0, w_ih, w_hh, out, xw, hn, lengths)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x2, h0, w_ih, w_hh, out, gates, hn, lengths = ctx.saved_tensors
        grad_out, grad_hn = _dense(grad_out, out), _dense(grad_hn, h0)
        dx, dh = torch.empty_like(gates), torch.empty_like(gates)  # (T, B, 3H)
        grad_h0 = torch.empty_like(h0)
        use_torch_threads()
        kernels.gru_backward_tm(gates.numpy(), hn.numpy(), out.numpy(), _np(h0), grad_out.numpy(), grad_hn.numpy(),
                                _np(w_hh), lengths.numpy(), ctx.rows, dx.numpy(), dh.numpy(), grad_h0.numpy())
        need = ctx.needs_input_grad
        grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh = _grads_tm(need[:1] + need[2:4] + (any(need[4:6]),), x2,
                                                                       dx, w_ih, dh, h0, out)
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None, None


def run_compiled(cell: str, code: int, x: Tensor, state, w_ih, w_hh, b_ih, b_hh, lengths: Tensor | None,
                 blocks: bool = True):
    """One direction of one layer: x (B, T, I), state h or (h, c) each (B, H). Returns out (B, T, H), final state.

    Runs the block kernels (``kernels.*_tm``) where ``block_rows`` allows and ``blocks`` is true, else the row
    kernels; the two give the same numbers up to rounding (tests/core/test_batched_kernels.py)."""
    B, T, _ = x.shape
    lengths = torch.full((B,), T, dtype=torch.int64) if lengths is None else lengths.to(torch.int64).contiguous()
    use_torch_threads()
    H = w_hh.shape[1]
    rows = block_rows(B, w_hh.shape[0] // H, H) if blocks else 0
    if cell == "lstm":
        if rows:
            out, h, c = LSTMBlocks.apply(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh, lengths, rows)
        else:
            out, h, c = LSTMCompiled.apply(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh, lengths)
        return out, (h, c)
    if cell == "gru":
        if rows:
            return GRUBlocks.apply(x, state, w_ih, w_hh, b_ih, b_hh, lengths, rows)
        return GRUCompiled.apply(x, state, w_ih, w_hh, b_ih, b_hh, lengths)
    if rows:
        return ElmanBlocks.apply(x, state, w_ih, w_hh, b_ih, b_hh, lengths, code, rows)
    return ElmanCompiled.apply(x, state, w_ih, w_hh, b_ih, b_hh, lengths, code)
