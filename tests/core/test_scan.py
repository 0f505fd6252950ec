"""rnr.core.scan's linear scan against its step loop, and RNN(cell="mingru" | "minlstm") against the paper's equations
(Feng et al. 2024) written here as a plain loop over each sequence alone."""
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from rnr.core.cells import scanned_gates
from rnr.core.dilation import dilated_reference
from rnr.core.rnn import RNN
from rnr.core.scan import linear_scan, linear_scan_reference
from rnr.core.stream import Stream

CELLS = ["mingru", "minlstm"]
F64 = dict(dtype=torch.float64)


def _abh(B, T, H, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(B, T, H, generator=g, **F64)  # in (0, 1), as the gates give
    b = torch.randn(B, T, H, generator=g, **F64)
    h0 = torch.randn(B, H, generator=g, **F64)
    return a, b, h0


# ---------------------------------------------------------------- linear_scan


@pytest.mark.parametrize("T", [1, 2, 3, 7, 8, 9, 63, 64, 65, 100, 257, 500])
def test_scan_equals_the_step_loop(T):
    a, b, h0 = _abh(3, T, 5)
    assert_close(linear_scan(a, b, h0), linear_scan_reference(a, b, h0))
    assert_close(linear_scan(a, b), linear_scan_reference(a, b))


@pytest.mark.parametrize("T", [1, 5, 64, 101])
def test_scan_gradients_equal_the_step_loop(T):
    a, b, h0 = _abh(2, T, 4, seed=1)
    w = torch.randn(2, T, 4, **F64)  # a loss that weighs every output differently
    grads = []
    for f in (linear_scan, linear_scan_reference):
        inputs = [t.clone().requires_grad_() for t in (a, b, h0)]
        (f(*inputs) * w).sum().backward()
        grads.append([t.grad for t in inputs])
    for got, want in zip(*grads):
        assert_close(got, want)


@pytest.mark.parametrize("T", [1, 6, 19])
def test_scan_gradcheck(T):
    a, b, h0 = (t.requires_grad_() for t in _abh(2, T, 3, seed=2))
    assert torch.autograd.gradcheck(linear_scan, (a, b, h0))
    assert torch.autograd.gradcheck(lambda a, b: linear_scan(a, b), (a, b))


def test_scan_keeps_tiny_coefficients_exact():
    """Coefficients whose running product underflows: no division or cumulative product turns them into NaN."""
    a, b, h0 = _abh(2, 300, 4, seed=3)
    a = a * 1e-30
    a[:, 150] = 0.0
    got = linear_scan(a.float(), b.float(), h0.float())
    assert bool(torch.isfinite(got).all())
    assert_close(got, linear_scan_reference(a.float(), b.float(), h0.float()))


def test_scan_refuses_mismatched_shapes():
    a, b, h0 = _abh(2, 5, 3)
    with pytest.raises(ValueError, match=r"a and b must have the same shape \(B, T, H\), got \(2, 5, 3\) and "
                                         r"\(2, 4, 3\)"):
        linear_scan(a, b[:, :4])
    with pytest.raises(ValueError, match=r"h0 must have shape \(B, H\) = \(2, 3\), got \(3,\)"):
        linear_scan(a, b, h0[0])
    with pytest.raises(TypeError, match="a must be a torch.Tensor"):
        linear_scan(a.numpy(), b)
    with pytest.raises(ValueError, match=r"a and b must have at least one step, got shape \(2, 0, 3\)"):
        linear_scan(a[:, :0], b[:, :0])
    with pytest.raises(TypeError, match=r"b must have a's dtype and device \(torch.float64 on cpu\), got "
                                        r"torch.float32 on cpu; convert it with b.to\(a\)"):
        linear_scan(a, b.float())


# ---------------------------------------------------------------- the paper's equations, one sequence at a time


def paper_step(cell, x_t, h, w, bias):
    """One step as the paper writes it. x_t (I,), h (H,)."""
    H = h.shape[-1]
    xw = x_t @ w.t() + (0 if bias is None else bias)
    if cell == "mingru":  # z = sig(x W_z + b_z), h~ = x W_h + b_h, h_t = (1 - z) h_{t-1} + z h~
        z, h_new = torch.sigmoid(xw[:H]), xw[H:]
        return (1 - z) * h + z * h_new
    f, i, h_new = torch.sigmoid(xw[:H]), torch.sigmoid(xw[H : 2 * H]), xw[2 * H :]
    return f / (f + i) * h + i / (f + i) * h_new  # f' = f / (f + i), i' = i / (f + i)


def paper_rnn(rnn, x, lengths, h0=None):
    """Each row alone over its real steps, layer by layer, each direction read step by step."""
    B, T, _ = x.shape
    D, H = rnn.num_directions, rnn.hidden_size
    outs, finals = [], []
    for r in range(B):
        inp = x[r, : int(lengths[r])]  # (L, I)
        row = []
        for k in range(rnn.num_layers):
            directions = []
            for d in range(D):
                suffix = "_reverse" if d else ""
                w, bias = getattr(rnn, f"weight_ih_l{k}{suffix}"), getattr(rnn, f"bias_ih_l{k}{suffix}", None)
                h = x.new_zeros(H) if h0 is None else h0[k * D + d, r]
                hs = []
                for x_t in (inp if d == 0 else inp.flip(0)):
                    h = paper_step(rnn.cell, x_t, h, w, bias)
                    hs.append(h)
                hs = torch.stack(hs)  # (L, H)
                directions.append(hs if d == 0 else hs.flip(0))
                row.append(h)
            inp = torch.cat(directions, dim=-1)  # (L, D*H)
        outs.append(torch.cat([inp, inp.new_zeros(T - inp.shape[0], D * H)]))
        finals.append(torch.stack(row))
    return torch.stack(outs), torch.stack(finals, dim=1)  # (B, T, D*H), (L*D, B, H)


@pytest.mark.parametrize("impl", ["auto", "loop"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True), (2, True)],
                         ids=["one", "two-layers", "bidirectional", "two-layers-bidirectional"])
@pytest.mark.parametrize("cell", CELLS)
def test_rnn_equals_the_paper(cell, layers, bidirectional, impl):
    torch.manual_seed(0)
    rnn = RNN(3, 5, cell=cell, num_layers=layers, bidirectional=bidirectional, impl=impl).double()
    x = torch.randn(4, 37, 3, **F64)  # 37 steps: blocks of 8 and a tail of 5 in the scan
    lengths = torch.tensor([37, 6, 1, 30])
    h0 = torch.randn(layers * rnn.num_directions, 4, 5, **F64)
    x[1, 6:] = 1e3  # garbage in the padding must not leak
    w_out = torch.randn(4, 37, 5 * rnn.num_directions, **F64)
    results = []
    for run in (lambda *a: rnn(*a), lambda x, h0, lengths: paper_rnn(rnn, x, lengths, h0)):
        xs, h0s = x.clone().requires_grad_(), h0.clone().requires_grad_()
        rnn.zero_grad()
        out, h_n = run(xs, h0s, lengths)
        ((out * w_out).sum() + (h_n**2).sum()).backward()
        results.append([out, h_n, xs.grad, h0s.grad] + [p.grad.clone() for p in rnn.parameters()])
    for got, want in zip(*results):
        assert_close(got, want)
    assert_close(results[0][0][1, 6:], torch.zeros(31, 5 * rnn.num_directions, **F64))  # zero past the end
    assert bool((results[0][2][1, 6:] == 0).all())  # no gradient reaches the padding


@pytest.mark.parametrize("cell", CELLS)
def test_rnn_float32_and_no_bias(cell):
    torch.manual_seed(1)
    rnn = RNN(3, 8, cell=cell, bias=False)
    assert [n for n, _ in rnn.named_parameters()] == ["weight_ih_l0"]
    x = torch.randn(2, 40, 3)
    out, h_n = rnn(x)
    want, want_n = paper_rnn(rnn, x, [40, 40])
    assert_close(out, want, rtol=1e-5, atol=1e-5)
    assert_close(h_n, want_n, rtol=1e-5, atol=1e-5)


def test_minlstm_gates_sum_to_one_and_equal_the_paper():
    """f' + i' = 1 (the paper's normalisation), f' = f / (f + i), and no 0 / 0 where both gates saturate."""
    xw = torch.randn(6, 12, **F64) * 5
    xw[0, :8] = -800.0  # f = i = 0 in float64: the ratio's limit, 1/2, not NaN
    a, b = scanned_gates("minlstm", xw)
    f, i, h_new = torch.sigmoid(xw[:, :4]), torch.sigmoid(xw[:, 4:8]), xw[:, 8:]
    i_norm = b / h_new
    assert_close(a + i_norm, torch.ones_like(a))
    assert_close(a[1:], (f / (f + i))[1:])
    assert_close(i_norm[1:], (i / (f + i))[1:])
    assert_close(a[0], torch.full((4,), 0.5, **F64))


def test_mingru_gates():
    xw = torch.randn(3, 8, **F64)
    a, b = scanned_gates("mingru", xw)
    z = torch.sigmoid(xw[:, :4])
    assert_close(a, 1 - z)
    assert_close(b, z * xw[:, 4:])


# ---------------------------------------------------------------- the layer's options and state


@pytest.mark.parametrize("cell", CELLS)
def test_state_carries_across_chunks(cell):
    """Running a sequence in chunks, each from the last chunk's h_n, equals running it whole."""
    torch.manual_seed(2)
    rnn = RNN(3, 6, cell=cell, num_layers=2).double()
    x = torch.randn(2, 23, 3, **F64)
    want, want_n = rnn(x)
    h, outs = None, []
    for chunk in (x[:, :1], x[:, 1:10], x[:, 10:11], x[:, 11:]):
        out, h = rnn(chunk, h)
        outs.append(out)
    assert_close(torch.cat(outs, dim=1), want)
    assert_close(h, want_n)


@pytest.mark.parametrize("cell", CELLS)
def test_stream_one_step_at_a_time(cell):
    torch.manual_seed(3)
    rnn = RNN(3, 6, cell=cell, num_layers=2)
    x = torch.randn(1, 9, 3)
    h0 = torch.randn(2, 1, 6)
    with torch.no_grad():
        out, h_n = rnn(x, h0)
    stream = Stream(rnn, state=h0)
    assert not stream.compiled
    got = np.stack([stream.step(x[0, t].numpy()) for t in range(9)])
    assert_close(torch.from_numpy(got), out[0], rtol=1e-5, atol=1e-6)
    assert_close(stream.state, h_n, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_dilation_equals_its_reference(cell):
    torch.manual_seed(4)
    rnn = RNN(3, 5, cell=cell, num_layers=2, bidirectional=True, dilation=(1, 3)).double()
    x = torch.randn(3, 10, 3, **F64)
    lengths = torch.tensor([10, 4, 7])
    out, h_n = rnn(x, lengths=lengths)
    want, want_n = dilated_reference(rnn, x, lengths=lengths)
    assert_close(out, want)
    assert_close(h_n, want_n)
    plain = RNN(3, 5, cell=cell, num_layers=2, bidirectional=True).double()
    plain.load_state_dict(rnn.state_dict())
    assert not torch.allclose(plain(x, lengths=lengths)[0], out)  # dilation has an effect


@pytest.mark.parametrize("cell", CELLS)
def test_dropout_between_layers(cell):
    torch.manual_seed(5)
    rnn = RNN(3, 16, cell=cell, num_layers=2, dropout=0.5)
    x = torch.randn(2, 7, 3)
    rnn.eval()
    a, b = rnn(x)[0], rnn(x)[0]
    rnn.train()
    assert_close(a, b)
    assert not torch.allclose(rnn(x)[0], a)


def test_gate_rows_and_parameters():
    gru, lstm = RNN(3, 4, cell="mingru", bidirectional=True), RNN(3, 4, cell="minlstm")
    assert {n: tuple(p.shape) for n, p in gru.named_parameters()} == {
        "weight_ih_l0": (8, 3), "bias_ih_l0": (8,), "weight_ih_l0_reverse": (8, 3), "bias_ih_l0_reverse": (8,)}
    assert {n: tuple(p.shape) for n, p in lstm.named_parameters()} == {"weight_ih_l0": (12, 3), "bias_ih_l0": (12,)}
    assert repr(lstm) == "RNN(minlstm, 3 -> 4)"
    assert gru._impl(torch.zeros(1, 1, 3)) == "scan"


@pytest.mark.parametrize("impl", ["fused", "compiled", "bptt"])
def test_refuses_implementations_without_the_cell(impl):
    with pytest.raises(ValueError, match=rf"impl='{impl}' does not apply to cell='mingru', which has no recurrent "
                                         r"weight .*; use impl='auto'"):
        RNN(3, 4, cell="mingru", impl=impl)


def test_scan_impl_is_for_the_scanned_cells_only():
    with pytest.raises(ValueError, match=r"impl='scan' is for cells whose gates read only the input "
                                         r"\(\['mingru', 'minlstm'\]\), got cell='gru'; use impl='auto'"):
        RNN(3, 4, cell="gru", impl="scan")
    RNN(3, 4, cell="minlstm", impl="scan")


@pytest.mark.parametrize("cell", CELLS)
def test_the_scan_backward_trains_a_layer(cell):
    """Gradients through the scan drive an optimiser: a moving average (which needs memory) is learnt."""
    torch.manual_seed(0)
    rnn, head = RNN(1, 8, cell=cell), torch.nn.Linear(8, 1)
    x = torch.randn(16, 20, 1)
    y = linear_scan_reference(torch.full_like(x, 0.5), 0.5 * x)  # y_t = (y_{t-1} + x_t) / 2
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=2e-2)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(head(rnn(x)[0]), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
