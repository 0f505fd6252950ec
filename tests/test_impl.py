"""Every implementation of rnr.RNN ("loop" reference, "bptt", "fused") computes the same outputs and gradients."""
import pytest
import torch

import rnr.rnn as R

CASES = [  # (cell, nonlinearity, implementations to hold against "loop")
    ("elman", "tanh", ["bptt", "fused", "auto"]),
    ("elman", "relu", ["bptt", "fused", "auto"]),
    ("elman", "sigmoid", ["bptt", "auto"]),
    ("lstm", "tanh", ["fused", "auto"]),
    ("gru", "tanh", ["fused", "auto"]),
]


def _run(model, x, lengths):
    x = x.clone().requires_grad_(True)
    out, h_n = model(x, lengths=lengths)
    h = torch.cat(h_n, dim=0) if isinstance(h_n, tuple) else h_n
    (out.pow(2).sum() + h.sin().sum()).backward()
    return [out.detach(), h.detach(), x.grad] + [p.grad for p in model.parameters()]


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("cell,phi,impls", CASES)
def test_implementations_agree(cell, phi, impls, ragged):
    torch.manual_seed(0)
    kw = dict(cell=cell, nonlinearity=phi, num_layers=2, bidirectional=True)
    ref = R.RNN(3, 5, impl="loop", **kw)
    x = torch.randn(4, 7, 3)
    lengths = torch.tensor([7, 5, 2, 1]) if ragged else None
    expected = _run(ref, x, lengths)
    for impl in impls:
        model = R.RNN(3, 5, impl=impl, **kw)
        model.load_state_dict(ref.state_dict())
        for got, want in zip(_run(model, x, lengths), expected):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_auto_picks_bptt_for_elman_and_fused_for_gated_on_cpu():
    x = torch.randn(2, 3, 4)
    assert R.RNN(4, 5, cell="elman")._impl(x) == "bptt"
    assert R.RNN(4, 5, cell="gru")._impl(x) == "fused"
    assert R.RNN(4, 5, cell="lstm")._impl(x) == "fused"


@pytest.mark.parametrize("kwargs,match", [
    (dict(impl="cuda"), r"impl must be one of \['auto', 'loop', 'bptt', 'fused'\], got 'cuda'"),
    (dict(cell="gru", impl="bptt"), r"impl='bptt' .* cell='elman' only, got cell='gru'"),
    (dict(nonlinearity="sigmoid", impl="fused"), r"impl='fused' needs nonlinearity 'tanh' or 'relu' .* 'sigmoid'"),
])
def test_bad_impl(kwargs, match):
    with pytest.raises(ValueError, match=match):
        R.RNN(2, 3, **kwargs)
