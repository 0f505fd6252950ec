"""On CUDA, built-in cells run PyTorch's fused cuDNN kernels and agree with the CPU paths; a custom phi runs the
generic path. Every test here skips where no GPU is present (run bench/gpu.sh on a GPU machine)."""
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from rnr.core.rnn import RNN
from rnr.forecast.forecaster import RNNForecaster

from conftest import FAST, seasonal_panel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

CASES = [("elman", "tanh", "fused"), ("elman", "relu", "fused"), ("lstm", "tanh", "fused"), ("gru", "tanh", "fused"),
         ("elman", torch.nn.functional.softsign, "bptt")]


def _run(model, x, lengths):
    x = x.clone().requires_grad_(True)
    out, h_n = model(x, lengths=lengths)
    h = torch.cat(h_n, dim=0) if isinstance(h_n, tuple) else h_n
    (out.pow(2).sum() + h.sin().sum()).backward()
    return [out.detach().cpu(), h.detach().cpu(), x.grad.cpu()] + [p.grad.cpu() for p in model.parameters()]


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("cell,phi,impl", CASES, ids=["elman-tanh", "elman-relu", "lstm", "gru", "elman-softsign"])
def test_cuda_uses_cudnn_for_built_ins_and_agrees_with_the_cpu(cell, phi, impl, ragged):
    torch.manual_seed(0)
    cpu = RNN(3, 16, cell=cell, nonlinearity=phi, num_layers=2, bidirectional=True)
    gpu = RNN(3, 16, cell=cell, nonlinearity=phi, num_layers=2, bidirectional=True).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(5, 11, 3)
    lengths = torch.tensor([11, 7, 3, 1, 9]) if ragged else None
    assert gpu._impl(x.cuda()) == impl
    assert cpu._impl(x) == "compiled" or phi is torch.nn.functional.softsign
    with torch.backends.cudnn.flags(enabled=True, deterministic=True):
        got = _run(gpu, x.cuda(), lengths)
    for a, b in zip(got, _run(cpu, x, lengths)):
        assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_forecaster_trains_on_cuda_and_forecasts_on_the_cpu():
    panel = seasonal_panel()
    f = RNNForecaster(horizon=7, season=7, device="cuda", **FAST).fit(panel)
    pred = f.predict()
    assert next(f.net_.parameters()).device.type == "cpu"
    assert len(pred) == 7 * panel.unique_id.nunique() and np.isfinite(pred.y_hat).all()
