"""Every implementation of rnr.RNN ("loop" reference, "bptt", "fused", "compiled") computes the same outputs and
gradients; "auto" picks the fast one for the size and device."""
import pytest
import torch

import rnr.core.rnn as R

CASES = [  # (cell, nonlinearity, implementations to hold against "loop")
    ("elman", "tanh", ["bptt", "fused", "compiled", "auto"]),
    ("elman", "relu", ["bptt", "fused", "compiled", "auto"]),
    ("elman", "sigmoid", ["bptt", "compiled", "auto"]),
    ("elman", "identity", ["bptt", "compiled", "auto"]),
    ("lstm", "tanh", ["fused", "compiled", "auto"]),
    ("gru", "tanh", ["fused", "compiled", "auto"]),
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


def test_auto_compiles_small_layers_on_cpu_and_falls_back_above_the_limit():
    for cell in ("elman", "lstm", "gru"):
        model = R.RNN(4, 16, cell=cell)
        limit = R.COMPILED_MAX_WORK[cell] // (R.GATES[cell] * 16**2)  # the largest batch that compiles
        assert model._impl(torch.randn(limit, 3, 4)) == "compiled"
        assert model._impl(torch.randn(limit + 1, 3, 4)) == "fused"  # one step is a large product: PyTorch's kernel
    x = torch.randn(1, 3, 4)
    assert R.RNN(4, 5, nonlinearity="sigmoid")._impl(x) == "compiled"
    assert R.RNN(4, 1024, nonlinearity="sigmoid")._impl(x) == "bptt"  # no fused kernel for sigmoid
    assert R.RNN(4, 5, nonlinearity=torch.nn.functional.softsign)._impl(x) == "bptt"  # any phi: the generic path
    assert R.RNN(4, 5, cell="gru")._impl(x.to(torch.bfloat16)) == "fused"  # numba has no bfloat16


def test_auto_without_numba_uses_torch(monkeypatch):
    monkeypatch.setattr(R.kernels, "AVAILABLE", False)
    x = torch.randn(2, 3, 4)
    assert R.RNN(4, 5)._impl(x) == "fused"
    assert R.RNN(4, 5, nonlinearity="sigmoid")._impl(x) == "bptt"
    assert R.RNN(4, 5, cell="lstm")._impl(x) == "fused"
    with pytest.raises(ImportError, match="impl='compiled' needs numba"):
        R.RNN(4, 5, impl="compiled")


def test_compiled_refuses_what_it_cannot_run():
    model = R.RNN(4, 5, cell="gru", impl="compiled")
    with pytest.raises(ValueError, match=r"impl='compiled' runs float32 or float64 tensors on the CPU, got "
                                         r"torch.bfloat16 on cpu; use impl='auto'"):
        model.to(torch.bfloat16)(torch.randn(2, 3, 4, dtype=torch.bfloat16))


@pytest.mark.parametrize("kwargs,match", [
    (dict(impl="cuda"), r"impl must be one of \['auto', 'loop', 'bptt', 'fused', 'compiled', 'scan'\], got 'cuda'"),
    (dict(nonlinearity=torch.sin, impl="compiled"), r"impl='compiled' needs a built-in nonlinearity .* use impl='bptt'"),
    (dict(cell="gru", impl="bptt"), r"impl='bptt' .* cell='elman' only, got cell='gru'"),
    (dict(nonlinearity="sigmoid", impl="fused"), r"impl='fused' needs nonlinearity 'tanh' or 'relu' .* 'sigmoid'"),
])
def test_bad_impl(kwargs, match):
    with pytest.raises(ValueError, match=match):
        R.RNN(2, 3, **kwargs)


def test_compiled_loops_follow_torch_thread_setting():
    numba = pytest.importorskip("numba")
    model = R.RNN(3, 4, cell="gru", impl="compiled")
    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            model(torch.randn(2, 5, 3))
            assert numba.get_num_threads() == min(n, numba.config.NUMBA_NUM_THREADS)
    finally:
        torch.set_num_threads(before)
