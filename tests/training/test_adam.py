"""rnr.training.core.adam: the fused kernel where it is taken, the same steps as torch's default Adam and AdamW."""
import pytest
import torch

from rnr.training.core import adam


@pytest.mark.parametrize("decoupled, weight_decay", [(False, 0.0), (False, 1e-2), (True, 1e-2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_adam_takes_the_same_steps(decoupled, weight_decay, dtype):
    torch.manual_seed(0)
    shapes = [(64, 33), (64,), (7, 5, 3)]
    mine = [torch.nn.Parameter(torch.randn(*s, dtype=dtype)) for s in shapes]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in mine]
    opt = adam(mine, decoupled=decoupled, lr=1e-2, weight_decay=weight_decay)
    plain = (torch.optim.AdamW if decoupled else torch.optim.Adam)(ref, lr=1e-2, weight_decay=weight_decay,
                                                                   foreach=False)
    assert opt.defaults["fused"] and type(opt) is type(plain)
    for _ in range(5):
        for a, b in zip(mine, ref):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        opt.step()
        plain.step()
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7) if dtype == torch.float32 else \
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)  # float32: the order of a few operations differs


def test_falls_back_where_fused_is_refused():
    p = torch.nn.Parameter(torch.randn(3, dtype=torch.float16))  # not a dtype the CPU's fused Adam takes
    opt = adam([p], lr=1e-2)
    p.grad = torch.ones_like(p)
    opt.step()
    assert torch.isfinite(p).all()
