"""Linear recurrences over all steps at once: ``h_t = a_t * h_{t-1} + b_t``, elementwise, forward and backward.

A recurrence whose coefficients do not depend on h (minGRU, minLSTM: their gates read only the input) needs no loop
of T dependent steps. Steps compose associatively, ``(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)``, so the sequence
can be cut into blocks that are scanned side by side:

1. within each block of C steps, scan from a zero state, keeping the running product of a (C dependent steps, each
   over all blocks at once);
2. the state at the end of each block is itself a linear recurrence over the blocks (coefficient: the block's product
   of a; input: its local end state), scanned the same way, recursively;
3. every step adds its block's incoming state times its running product of a (one product over all steps).

That is O(B T H) work and a few dozen dependent steps instead of T (the block loop, the recursion, and up to C - 1
steps after the last whole block: 51 for T = 500, 79 for T = 2000). Nothing is divided and no state is
rebuilt from a cumulative product (``h_t = A_t (h_0 + sum b_s / A_s)`` overflows as A_t underflows); a running
product that underflows to zero only multiplies, which is what the step loop does too.

Blocks rather than Hillis-Steele doubling (log2 T rounds over every step, O(T log T) work): measured on one CPU thread
for (B, T, H) = (32, 100-500, 64), the doubling scan's forward took 3-34 ms, slower than the step loop (2-17 ms), and
the blocks 1-7 ms (``bench/kernels.py --only scan`` times the blocks against the loop).

The backward pass is the same scan run backwards in time: over steps t = 0 .. T-1 from ``h_{-1} = h0``, with
``g_t = dL/dh_t`` along every path, ``g_t = dL/dh_t(direct) + a_{t+1} g_{t+1}``, then ``dL/db_t = g_t``,
``dL/da_t = g_t h_{t-1}`` and ``dL/dh0 = a_0 g_0``.
Only a, h and h_0 are kept for it, so memory stays O(B T H).

References: Hillis & Steele (1986), "Data parallel algorithms"; Blelloch (1990), "Prefix sums and their
applications"; Martin & Cundy (2018), "Parallelizing linear recurrent neural nets over sequence length";
Feng et al. (2024), "Were RNNs all we needed?".
"""
import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnr.core.checks import check_tensor

MIN_BLOCK = 8  # shortest block: below it the per-operation overhead of the block loop is not worth a level


def linear_scan_reference(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """The step loop ``h_t = a_t * h_{t-1} + b_t`` that ``linear_scan`` equals.

    a, b (B, T, H); h0 (B, H), zeros when None. Returns every h_t, (B, T, H).
    """
    _check(a, b, h0)
    h = a.new_zeros(a.shape[0], a.shape[2]) if h0 is None else h0
    hs = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]  # (B, H)
        hs.append(h)
    return torch.stack(hs, dim=1)  # (B, T, H)


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """Every h_t of ``h_t = a_t * h_{t-1} + b_t`` over all steps at once, differentiable in a, b and h0.

    Args:
        a: coefficients, (B, T, H).
        b: inputs, (B, T, H).
        h0: the state before the first step, (B, H); zeros when None.

    Returns h (B, T, H), equal to ``linear_scan_reference(a, b, h0)`` (the plain loop) to rounding.

    Example:
        >>> a, b = torch.full((1, 4, 1), 0.5), torch.ones(1, 4, 1)
        >>> linear_scan(a, b)[0, :, 0]
        tensor([1.0000, 1.5000, 1.7500, 1.8750])
    """
    _check(a, b, h0)
    return LinearScan.apply(a, b, h0)


def _check(a, b, h0) -> None:
    check_tensor(a, "a")
    check_tensor(b, "b")
    if h0 is not None:
        check_tensor(h0, "h0")
    if a.dim() != 3 or a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (B, T, H), got {tuple(a.shape)} and {tuple(b.shape)}; "
                         f"broadcast them to one shape first, e.g. a.expand_as(b)")
    if a.shape[1] == 0:
        raise ValueError(f"a and b must have at least one step, got shape {tuple(a.shape)}; drop empty sequences")
    for name, t in (("b", b), ("h0", h0)):
        if t is not None and (t.dtype != a.dtype or t.device != a.device):
            raise TypeError(f"{name} must have a's dtype and device ({a.dtype} on {a.device}), got {t.dtype} on "
                            f"{t.device}; convert it with {name}.to(a)")
    if h0 is not None and h0.shape != (a.shape[0], a.shape[2]):
        raise ValueError(f"h0 must have shape (B, H) = {(a.shape[0], a.shape[2])}, got {tuple(h0.shape)}")


def _block(T: int) -> int:
    """Block length near sqrt(T) (C + T/C dependent steps is least there), at least MIN_BLOCK."""
    return max(MIN_BLOCK, math.isqrt(T))


def _loop(a: Tensor, b: Tensor, h: Tensor | None, out: Tensor) -> None:
    """The step loop into out (B, T, H), from h (B, H) or, when None, from zero."""
    for t in range(a.shape[1]):
        if h is None:
            out[:, t] = b[:, t]
        else:
            torch.addcmul(b[:, t], a[:, t], h, out=out[:, t])
        h = out[:, t]


def _scan(a: Tensor, b: Tensor, h0: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """h_t = a_t h_{t-1} + b_t from h0 (B, H) (zeros when None), all t at once: blocks scanned side by side.

    a, b (B, T, H); the result goes into ``out`` (B, T, H) when given, a new tensor otherwise.
    """
    B, T, H = a.shape
    C = _block(T)
    out = torch.empty_like(b) if out is None else out  # (B, T, H)
    n = T // C  # whole blocks; the last T - n C steps follow them as a loop
    if n <= 1:
        _loop(a, b, h0, out)
        return out
    S = n * C
    a4, b4 = a[:, :S].reshape(B, n, C, H), b[:, :S].reshape(B, n, C, H)  # step j of block k: [:, k, j]
    h4 = out[:, :S].view(B, n, C, H)
    prod = torch.empty_like(a4)  # (B, n, C, H): a's running product within its block
    # 1. each block from a zero state: local states and running products, C steps over all blocks at once
    h4[:, :, 0], prod[:, :, 0] = b4[:, :, 0], a4[:, :, 0]
    for j in range(1, C):
        torch.addcmul(b4[:, :, j], a4[:, :, j], h4[:, :, j - 1], out=h4[:, :, j])
        torch.mul(a4[:, :, j], prod[:, :, j - 1], out=prod[:, :, j])
    # 2. the true state at the end of each block: s_k = P_k s_{k-1} + e_k over the blocks, scanned the same way
    ends = _scan(prod[:, :, -1], h4[:, :, -1], h0)  # (B, n, H)
    # 3. each step adds the state entering its block, carried through the block so far
    h4[:, 1:].addcmul_(prod[:, 1:], ends[:, :-1, None])
    if h0 is not None:  # block 0 is entered from h0
        h4[:, 0].addcmul_(prod[:, 0], h0[:, None])
    if S < T:  # the steps after the last whole block
        _loop(a[:, S:], b[:, S:], out[:, S - 1], out[:, S:])
    return out


class LinearScan(torch.autograd.Function):
    """``linear_scan`` with its backward pass as a reverse scan (module docstring)."""

    @staticmethod
    def forward(ctx, a, b, h0):
        h = _scan(a, b, h0)  # (B, T, H)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        a, h, h0 = ctx.saved_tensors
        T = a.shape[1]
        # g_t = grad_h_t + a_{t+1} g_{t+1} from g_{T-1} = grad_h_{T-1}: a scan over the reversed steps s = T-1-t,
        # whose coefficient at s >= 1 is a_{T-s}, step s-1 of a reversed
        a_rev, grad_rev = a.flip(1), grad_h.flip(1)  # (B, T, H)
        g_rev = torch.empty_like(grad_rev)
        g_rev[:, 0] = grad_rev[:, 0]
        if T > 1:
            _scan(a_rev[:, :-1], grad_rev[:, 1:], grad_rev[:, 0], out=g_rev[:, 1:])
        g = g_rev.flip(1)  # (B, T, H): dL/dh_t along every path
        grad_a = grad_h0 = None
        if ctx.needs_input_grad[0]:  # dh_t/da_t = h_{t-1}
            grad_a = torch.empty_like(g)
            if h0 is None:
                grad_a[:, 0] = 0
            else:
                torch.mul(g[:, 0], h0, out=grad_a[:, 0])
            torch.mul(g[:, 1:], h[:, :-1], out=grad_a[:, 1:])
        if h0 is not None and ctx.needs_input_grad[2]:  # dh_0/dh0 = a_0
            grad_h0 = a[:, 0] * g[:, 0]
        return grad_a, g, grad_h0  # dh_t/db_t = 1
