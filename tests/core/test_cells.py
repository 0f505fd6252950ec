"""One-step cells against torch.nn.RNNCell/LSTMCell/GRUCell, and every Elman nonlinearity against its formula."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from rnr.core.cells import ElmanCell, GRUCell, LSTMCell

# (rnr cell, torch peer, constructor kwargs shared by both); one line per cell
PEERS = [
    pytest.param(ElmanCell, nn.RNNCell, {}, id="elman-tanh"),
    pytest.param(ElmanCell, nn.RNNCell, {"nonlinearity": "relu"}, id="elman-relu"),
    pytest.param(LSTMCell, nn.LSTMCell, {}, id="lstm"),
    pytest.param(GRUCell, nn.GRUCell, {}, id="gru"),
]
I, H, B, STEPS = 3, 5, 4, 3


def _unroll(cell, xs, state):
    """Feed STEPS inputs through a cell carrying its state; returns every output."""
    outs = []
    for x in xs:
        state = cell(x, state)
        outs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outs), state


def _initial_state(cell_cls):
    h = torch.randn(B, H)
    return (h, torch.randn(B, H)) if cell_cls is LSTMCell else h


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("direction", ["torch_to_rnr", "rnr_to_torch"])
@pytest.mark.parametrize("ours_cls,theirs_cls,kwargs", PEERS)
def test_cell_matches_torch_both_ways(ours_cls, theirs_cls, kwargs, direction, bias):
    torch.manual_seed(1)
    ours, theirs = ours_cls(I, H, bias=bias, **kwargs), theirs_cls(I, H, bias=bias, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if direction == "torch_to_rnr":
        ours.load_state_dict(theirs.state_dict())
    else:
        theirs.load_state_dict(ours.state_dict())
    xs = torch.randn(STEPS, B, I)
    state = _initial_state(ours_cls)
    got, got_state = _unroll(ours, xs, state)
    want, want_state = _unroll(theirs, xs, state)
    assert_close(got, want)
    assert_close(got_state, want_state)
    # the default state is zeros, as in torch
    assert_close(ours(xs[0]), theirs(xs[0]))


@pytest.mark.parametrize("ours_cls,theirs_cls,kwargs", PEERS)
def test_cell_gradients_match_torch(ours_cls, theirs_cls, kwargs):
    theirs = theirs_cls(I, H, **kwargs)
    ours = ours_cls(I, H, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    xs = torch.randn(STEPS, B, I)
    w = torch.randn(STEPS, B, H)
    grads = []
    for cell in (ours, theirs):
        (_unroll(cell, xs, None)[0] * w).sum().backward()
        grads.append({n: p.grad for n, p in cell.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert_close(grads[0][name], grads[1][name], msg=name)


@pytest.mark.parametrize("bias", [True, False])
def test_bias_false_has_no_bias_parameters(bias):
    cell = GRUCell(I, H, bias=bias)
    names = {n for n, _ in cell.named_parameters()}
    assert names == ({"weight_ih", "weight_hh", "bias_ih", "bias_hh"} if bias else {"weight_ih", "weight_hh"})
    assert ("bias=False" in repr(cell)) == (not bias)


NONLINEARITIES = {  # name -> (argument to ElmanCell, the function it must apply)
    "tanh": ("tanh", torch.tanh),
    "relu": ("relu", torch.relu),
    "sigmoid": ("sigmoid", torch.sigmoid),
    "identity": ("identity", lambda a: a),
    "softsign": (F.softsign, F.softsign),
}


def test_every_nonlinearity_is_applied_and_differs():
    base = ElmanCell(I, H)
    x, h = torch.randn(B, I), torch.randn(B, H)
    a = base.bias_ih + x @ base.weight_ih.t() + h @ base.weight_hh.t() + base.bias_hh  # (B, H) pre-activation
    outs = {}
    for name, (arg, fn) in NONLINEARITIES.items():
        cell = ElmanCell(I, H, nonlinearity=arg)
        cell.load_state_dict(base.state_dict())
        outs[name] = cell(x, h)
        assert_close(outs[name], fn(a), msg=name)
    names = list(outs)
    for i, p in enumerate(names):
        for q in names[i + 1:]:
            assert not torch.allclose(outs[p], outs[q]), f"{p} and {q} give the same output"


def test_unknown_nonlinearity_names_the_value():
    with pytest.raises(ValueError, match=r"nonlinearity must be one of .* got 'swish'"):
        ElmanCell(I, H, nonlinearity="swish")


@pytest.mark.parametrize("cell_cls", [ElmanCell, LSTMCell, GRUCell])
def test_initialisation_is_torchs_uniform(cell_cls):
    cell = cell_cls(I, 4 * H)  # more units, so the spread is visible
    bound = 1 / math.sqrt(4 * H)
    for name, p in cell.named_parameters():
        assert p.abs().max() <= bound, name
        assert p.abs().max() > 0.8 * bound, f"{name} does not fill [-1/sqrt(H), 1/sqrt(H)]"


def test_cell_rejects_wrong_input_shape():
    cell = ElmanCell(I, H)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3\) for one step, got \(4, 2\)"):
        cell(torch.randn(B, 2))
    with pytest.raises(ValueError, match=r"h must have shape \(4, 5\), got \(4, 6\)"):
        cell(torch.randn(B, I), torch.randn(B, H + 1))
