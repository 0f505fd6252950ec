"""The block kernels of rnr.core.kernels (``*_tm``: a block of rows per task, the hidden product by BLAS) against
the reference loop (``_run_loop``) and the row kernels, forward and backward, ragged batches, float32 and float64,
blocks that divide the batch and blocks that do not."""
import pytest
import torch

import rnr.core.rnn as R
from rnr.core import fast, kernels
from rnr.core.cells import PHIS
from rnr.core.rnn import _run_loop, step_mask

pytestmark = pytest.mark.skipif(not kernels.BLAS, reason="the block kernels need numba and scipy")
GATES = {"elman": 1, "lstm": 4, "gru": 3}
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def _layer(cell, B, T, I, H, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = GATES[cell] * H

    def rand(*shape, scale=0.5):
        return (scale * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_()

    x = rand(B, T, I, scale=1.0)
    h0 = rand(B, H)
    state = (h0, rand(B, H)) if cell == "lstm" else h0
    weights = [rand(G, I), rand(G, H, scale=H**-0.5), rand(G, scale=0.1), rand(G, scale=0.1)]  # w_hh: not chaotic
    return x, state, weights


def _blocks(cell, code, x, state, weights, lengths, rows):
    w_ih, w_hh, b_ih, b_hh = weights
    if cell == "lstm":
        out, h, c = fast.LSTMBlocks.apply(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh, lengths, rows)
        return out, (h, c)
    if cell == "gru":
        return fast.GRUBlocks.apply(x, state, w_ih, w_hh, b_ih, b_hh, lengths, rows)
    return fast.ElmanBlocks.apply(x, state, w_ih, w_hh, b_ih, b_hh, lengths, code, rows)


def _outputs_and_grads(run, x, state, weights):
    """out, final state and the gradients of every input under a loss that reads all of them."""
    out, end = run()
    ends = end if isinstance(end, tuple) else (end,)
    loss = out.pow(2).sum() + sum(e.sin().sum() for e in ends)
    leaves = [x, *(state if isinstance(state, tuple) else (state,)), *weights]
    grads = torch.autograd.grad(loss, leaves)
    return [out.detach(), *(e.detach() for e in ends), *grads]


CASES = [("elman", "tanh"), ("elman", "relu"), ("elman", "sigmoid"), ("elman", "identity"), ("lstm", "tanh"),
         ("gru", "tanh")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 3, 8])
@pytest.mark.parametrize("cell,phi", CASES)
def test_block_kernels_equal_the_reference_loop(cell, phi, rows, dtype):
    B, T, I, H = 7, 9, 3, 5  # 7 rows: blocks of 3 leave one of 1
    x, state, weights = _layer(cell, B, T, I, H, dtype)
    lengths = torch.tensor([9, 4, 1, 9, 6, 2, 8])
    mask = step_mask(lengths, T)
    code = kernels.PHI_CODES[phi]
    want = _outputs_and_grads(lambda: _run_loop(cell, PHIS[phi], x, state, *weights, mask), x, state, weights)
    got = _outputs_and_grads(lambda: _blocks(cell, code, x, state, weights, lengths, rows), x, state, weights)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **TOL[dtype])
    assert (got[0][1, 4:] == 0).all() and (got[0][2, 1:] == 0).all()  # outputs past each row's end are zero


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_block_kernels_equal_the_row_kernels_at_a_training_size(cell):
    """float32, 64 rows of up to 50 steps, hidden 32: rows split over blocks as run_compiled splits them."""
    B, T, I, H = 64, 50, 8, 32
    x, state, weights = _layer(cell, B, T, I, H, torch.float32, seed=1)
    lengths = torch.randint(1, T + 1, (B,), generator=torch.Generator().manual_seed(2))
    rows = fast.block_rows(B, GATES[cell], H)
    assert rows > 0

    def run(blocks):
        return lambda: fast.run_compiled(cell, 0, x, state, *weights, lengths, blocks=blocks)

    want = _outputs_and_grads(run(False), x, state, weights)
    got = _outputs_and_grads(run(True), x, state, weights)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-3, atol=1e-4)  # float32 sums of 3,200 terms


def test_inference_runs_without_keeping_gates():
    x, state, weights = _layer("lstm", 4, 6, 3, 5, torch.float32)
    with torch.no_grad():
        out, (h, c) = fast.run_compiled("lstm", 0, x, state, *weights, None)
        want, (h_ref, c_ref) = _run_loop("lstm", None, x, state, *weights, None)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c, c_ref, rtol=1e-5, atol=1e-6)


def test_block_rows_splits_the_batch_over_threads_and_keeps_a_block_small():
    threads = kernels.numba.get_num_threads()
    assert fast.block_rows(1, 4, 16) == 1
    assert fast.block_rows(64, 1, 16) == min(fast.MAX_ROWS, -(-64 // threads))
    assert fast.block_rows(64, 4, 64) <= kernels.BLAS_MAX_WORK // (4 * 64 * 64)  # 16 rows of an LSTM of 64
    assert fast.block_rows(8, 4, 512) == 0  # one row's product is already past the limit: the row kernels run


def test_without_scipy_the_row_kernels_run_with_their_own_limits(monkeypatch):
    x = torch.randn(64, 5, 3)
    model = R.RNN(3, 32, cell="lstm")  # batch 64 x 4*32*32 = 2**18: within COMPILED_MAX_WORK, past ROW_MAX_WORK
    assert model._impl(x) == "compiled"
    monkeypatch.setattr(kernels, "BLAS", False)
    assert fast.block_rows(64, 4, 32) == 0
    assert model._impl(x) == "fused"
    out, _ = fast.run_compiled("lstm", 0, x, (torch.zeros(64, 32),) * 2, *model._weights(0, 0), None)
    want, _ = _run_loop("lstm", None, x, (torch.zeros(64, 32),) * 2, *model._weights(0, 0), None)
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)


def test_an_lstm_under_no_grad_runs_torch():
    x = torch.randn(4, 5, 3)
    model = R.RNN(3, 8, cell="lstm")
    assert model._impl(x) == "compiled"
    with torch.no_grad():
        assert model._impl(x) == "fused"
        assert R.RNN(3, 8, cell="gru")._impl(x) == "compiled"
