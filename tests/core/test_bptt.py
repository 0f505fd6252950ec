"""The hand-written BPTT of rnr.bptt: gradcheck in float64, and equality with the plain autograd loop."""
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.testing import assert_close

from rnr.core.bptt import ElmanBPTT, elman_bptt, elman_reference
from rnr.core.cells import PHIS
from rnr.core.rnn import step_mask

B, T, I, H = 3, 4, 2, 3
LENGTHS = torch.tensor([4, 1, 3])  # unsorted, one full, one of a single step


def _silu(a):
    return a * torch.sigmoid(a)


# every built-in phi, a library callable and a lambda-style callable (both differentiated by autograd)
PHI_CASES = [pytest.param(PHIS[n], id=n) for n in PHIS] + [
    pytest.param(F.softsign, id="softsign"),
    pytest.param(_silu, id="silu"),
]


def _inputs(phi, bias=True, seed=0):
    """x, h0, weight_ih, weight_hh, bias_ih, bias_hh in float64, all requiring grad.

    For relu, gradcheck's central differences (eps = 1e-6) are wrong wherever a pre-activation lies within eps of
    the kink at 0, and every unit that is negative at every step has zero gradient, which would make the check
    vacuous. So for relu the biases are shifted up by 0.5 (most units stay active), and ``_check_away_from_kink``
    asserts that every pre-activation of the chosen seed is at least 1e-3 from 0, a thousand times eps.
    """
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    x, h0 = r(B, T, I), r(B, H)
    w_ih, w_hh = 0.6 * r(H, I), 0.6 * r(H, H)
    b_ih, b_hh = (0.3 * r(H), 0.3 * r(H)) if bias else (None, None)
    if bias and phi is PHIS["relu"]:
        b_ih = b_ih + 0.5
    tensors = [x, h0, w_ih, w_hh, b_ih, b_hh]
    return [t.requires_grad_(True) if t is not None else None for t in tensors]


def _pre_activations(x, h0, w_ih, w_hh, b_ih, b_hh, phi, mask):
    """Every a_t on a real step, from the plain loop."""
    s, pre = h0, []
    for t in range(T):
        a = x[:, t] @ w_ih.t() + s @ w_hh.t() + (b_ih + b_hh if b_ih is not None else 0)
        m = torch.ones(B, dtype=torch.bool) if mask is None else mask[:, t]
        pre.append(a[m])
        s = torch.where(m[:, None], phi(a), s)
    return torch.cat(pre)


def _check_away_from_kink(inputs, phi, mask):
    if phi is PHIS["relu"]:
        with torch.no_grad():
            a = _pre_activations(*inputs, phi, mask)
        assert a.abs().min() > 1e-3, "this seed puts a relu pre-activation at the kink; pick another"
        assert (a > 0).float().mean() > 0.5, "most relu units are dead; the gradcheck would check little"


def _mask(ragged):
    return step_mask(LENGTHS, T) if ragged else None


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("phi", PHI_CASES)
def test_gradcheck(phi, ragged):
    torch.manual_seed(0)
    mask = _mask(ragged)
    inputs = _inputs(phi)
    _check_away_from_kink(inputs, phi, mask)
    assert gradcheck(lambda *a: elman_bptt(*a, phi, mask), inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
def test_gradcheck_without_bias(ragged):
    torch.manual_seed(0)
    mask = _mask(ragged)
    x, h0, w_ih, w_hh, _, _ = _inputs(PHIS["tanh"], bias=False)
    fn = lambda x, h0, w_ih, w_hh: elman_bptt(x, h0, w_ih, w_hh, None, None, PHIS["tanh"], mask)  # noqa: E731
    assert gradcheck(fn, [x, h0, w_ih, w_hh], eps=1e-6, atol=1e-7, rtol=1e-5)


def _run_both(phi, mask, bias=True):
    """Outputs and gradients of elman_bptt and elman_reference for the same inputs and a random loss."""
    results = []
    w_out, w_h = torch.randn(B, T, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    for fn in (elman_bptt, elman_reference):
        inputs = [t.detach().clone().requires_grad_(True) if t is not None else None for t in _inputs(phi, bias)]
        out, h_n = fn(*inputs, phi, mask)
        loss = (out * w_out).sum() + (h_n * w_h).sum()
        leaves = [t for t in inputs if t is not None]
        grads = torch.autograd.grad(loss, leaves)
        results.append((out, h_n, grads))
    return results


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("phi", PHI_CASES)
def test_matches_reference_loop(phi, ragged, bias):
    torch.manual_seed(0)
    mask = _mask(ragged)
    (out, h_n, grads), (ref_out, ref_h_n, ref_grads) = _run_both(phi, mask, bias)
    assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    assert_close(h_n, ref_h_n, rtol=1e-12, atol=1e-12)
    assert len(grads) == len(ref_grads) == (6 if bias else 4)
    for name, g, ref in zip(["x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"], grads, ref_grads):
        assert_close(g, ref, rtol=1e-12, atol=1e-12, msg=name)


def test_ragged_semantics():
    """Outputs are zero past each end and h_n is the state at each sequence's last real step."""
    torch.manual_seed(0)
    inputs = _inputs(PHIS["tanh"])
    out, h_n = elman_bptt(*inputs, PHIS["tanh"], _mask(True))
    for b, n in enumerate(LENGTHS.tolist()):
        assert torch.equal(out[b, n:], torch.zeros_like(out[b, n:]))
        assert_close(h_n[b], out[b, n - 1], rtol=0, atol=0)
        alone_out, alone_h = elman_bptt(inputs[0][b : b + 1, :n], inputs[1][b : b + 1], *inputs[2:], PHIS["tanh"])
        assert_close(out[b : b + 1, :n], alone_out, rtol=1e-12, atol=1e-12)
        assert_close(h_n[b : b + 1], alone_h, rtol=1e-12, atol=1e-12)


def test_custom_phi_equal_to_builtin_gives_the_same_gradients():
    """The autograd path for a callable phi and the closed-form derivative of the built-in agree."""
    torch.manual_seed(0)
    w = torch.randn(B, T, H, dtype=torch.float64)
    grads = []
    for phi in (PHIS["tanh"], lambda a: torch.tanh(a)):
        inputs = _inputs(PHIS["tanh"])
        (elman_bptt(*inputs, phi, _mask(True))[0] * w).sum().backward()
        grads.append([t.grad for t in inputs])
    for g, ref in zip(*grads):
        assert_close(g, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("through", ["h_n", "out"])
def test_gradient_through_one_output_only(through, ragged):
    """A loss on h_n alone (or out alone) gives the reference's gradients: the unused output's grad is zeros."""
    torch.manual_seed(0)
    mask = _mask(ragged)
    grads = []
    for fn in (elman_bptt, elman_reference):
        inputs = _inputs(PHIS["tanh"])
        out, h_n = fn(*inputs, PHIS["tanh"], mask)
        (h_n if through == "h_n" else out).pow(2).sum().backward()
        grads.append([t.grad for t in inputs])
    for g, ref in zip(*grads):
        assert g is not None and g.abs().sum() > 0
        assert_close(g, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("missing", ["out", "h_n"])
def test_backward_accepts_none_for_an_unused_output(missing, ragged):
    """backward(ctx, None, g) and backward(ctx, g, None) equal passing zeros for the missing gradient."""
    torch.manual_seed(0)
    inputs = _inputs(PHIS["tanh"])
    out, h_n = elman_bptt(*inputs, PHIS["tanh"], _mask(ragged))
    ctx = out.grad_fn  # the ElmanBPTT node is the ctx its backward receives
    g_out, g_h = torch.randn_like(out), torch.randn_like(h_n)
    if missing == "out":
        got = ElmanBPTT.backward(ctx, None, g_h)
        want = ElmanBPTT.backward(ctx, torch.zeros_like(out), g_h)
    else:
        got = ElmanBPTT.backward(ctx, g_out, None)
        want = ElmanBPTT.backward(ctx, g_out, torch.zeros_like(h_n))
    assert len(got) == len(want) == 8
    for g, w in zip(got[:6], want[:6]):
        assert_close(g, w, rtol=0, atol=0)
    assert got[6] is None and got[7] is None  # phi and mask have no gradient
