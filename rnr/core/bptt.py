"""Hand-written backpropagation through time for one direction of an Elman layer.

Forward, in the seed's row-vector notation with PyTorch's layout (``W_x = weight_ih^T``, ``W_h = weight_hh^T``,
``b_h = bias_ih + bias_hh``) and a step mask ``m_t`` (1 while t is inside the sequence, 0 past its end)::

    a_t = b_h + x_t W_x + s_{t-1} W_h
    s_t = m_t * phi(a_t) + (1 - m_t) * s_{t-1}      # the state freezes past the end of a sequence
    out_t = m_t * s_t                               # padded positions output zero
    h_n = s_T                                       # = the state at each sequence's last real step

``elman_reference`` is that loop written plainly with autograd; ``ElmanBPTT`` is the same computation with
the input projection of all steps in one matrix product and a hand-written backward pass (as in Karpathy's
min-char-rnn), and tests hold the two together.

References: Werbos (1990), "Backpropagation through time: what it does and how to do it"; Elman (1990).
"""
from typing import Callable

import torch
from torch import Tensor

from rnr.core.cells import PHIS

# d phi / d a written in terms of s = phi(a); used when phi is a built-in
_DPHI_FROM_OUTPUT: dict[Callable, Callable[[Tensor], Tensor]] = {
    PHIS["tanh"]: lambda s: 1 - s * s,
    PHIS["relu"]: lambda s: (s > 0).to(s.dtype),
    PHIS["sigmoid"]: lambda s: s * (1 - s),
    PHIS["identity"]: lambda s: torch.ones_like(s),
}


def elman_reference(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, phi, mask=None):
    """The plain loop of the module docstring, differentiated by autograd.

    Shapes: x (B, T, I), h0 (B, H), mask (B, T) of 0/1 or None. Returns out (B, T, H) and h_n (B, H).
    """
    s = h0
    outs = []
    for t in range(x.shape[1]):
        a = x[:, t] @ weight_ih.t() + s @ weight_hh.t()
        if bias_ih is not None:
            a = a + bias_ih + bias_hh
        new = phi(a)
        if mask is None:
            s = new
            outs.append(s)
        else:
            m = mask[:, t, None].to(x.dtype)
            s = m * new + (1 - m) * s
            outs.append(m * s)
    return torch.stack(outs, dim=1), s


def _dphi(phi, s: Tensor, a: Tensor | None) -> Tensor:
    """phi'(a) from the saved output s (built-ins) or by autograd on the saved pre-activation a (callables)."""
    if phi in _DPHI_FROM_OUTPUT:
        return _DPHI_FROM_OUTPUT[phi](s)
    with torch.enable_grad():
        a = a.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(phi(a).sum(), a)
    return g


class ElmanBPTT(torch.autograd.Function):
    """``elman_reference`` with one input projection for all steps and a hand-written backward pass."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh, phi, mask):
        B, T, _ = x.shape
        H = weight_hh.shape[0]
        # the input projection of every step in one product: (B*T, I) @ (I, H)
        xw = x.reshape(B * T, -1) @ weight_ih.t()
        if bias_ih is not None:
            xw = xw + (bias_ih + bias_hh)
        xw = xw.view(B, T, H)  # (B, T, H)
        builtin = phi in _DPHI_FROM_OUTPUT
        states = x.new_empty(B, T, H)  # s_t after each step
        pre = None if builtin else x.new_empty(B, T, H)  # a_t, kept only to differentiate a custom phi
        w_hh_t = weight_hh.t()
        s = h0
        for t in range(T):
            a = torch.addmm(xw[:, t], s, w_hh_t)
            if pre is not None:
                pre[:, t] = a
            new = phi(a)
            if mask is not None:
                m = mask[:, t, None]
                new = torch.where(m, new, s)
            states[:, t] = new
            s = new
        out = states if mask is None else states * mask[..., None]
        ctx.phi, ctx.has_bias = phi, bias_ih is not None
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, states, pre, mask)
        return out, s.clone()

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x, h0, weight_ih, weight_hh, states, pre, mask = ctx.saved_tensors
        B, T, H = states.shape
        if grad_out is None:
            grad_out = torch.zeros_like(states)
        g = torch.zeros_like(h0) if grad_hn is None else grad_hn.clone()  # dL/ds_t, carried backwards
        if mask is not None:
            grad_out = grad_out * mask[..., None]  # out_t = m_t * s_t
        dphi = _dphi(ctx.phi, states, pre)  # (B, T, H); wrong where m_t = 0, but masked below
        da = torch.empty_like(states)  # dL/da_t for every step
        for t in reversed(range(T)):
            g = g + grad_out[:, t]  # dL/ds_t = direct output gradient + what flows back from s_{t+1}
            if mask is None:
                da_t = g * dphi[:, t]  # chain through s_t = phi(a_t)
                g = da_t @ weight_hh  # dL/ds_{t-1} through a_t = ... + s_{t-1} W_h
            else:
                m = mask[:, t, None]
                da_t = torch.where(m, g * dphi[:, t], 0.0)  # a_t only counts inside the sequence
                g = torch.where(m, da_t @ weight_hh, g)  # past the end, s_t = s_{t-1} passes g straight back
            da[:, t] = da_t
        # weight gradients summed over time, each as one large product over the B*T rows
        prev = torch.cat([h0[:, None], states[:, :-1]], dim=1)  # s_{t-1} for every t, (B, T, H)
        da2 = da.reshape(B * T, H)
        grad_w_hh = da2.t() @ prev.reshape(B * T, H)
        grad_w_ih = da2.t() @ x.reshape(B * T, -1)
        grad_x = (da2 @ weight_ih).view_as(x)
        grad_b = da2.sum(0) if ctx.has_bias else None
        return grad_x, g, grad_w_ih, grad_w_hh, grad_b, grad_b, None, None


def elman_bptt(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, phi, mask=None):
    """Run one direction of an Elman layer with hand-written BPTT. mask: (B, T) bool or None."""
    return ElmanBPTT.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, phi, mask)
