"""RNN(dilation=...): h_t = cell(x_t, h_{t-d}). Every implementation against the plain reference loop
(rnr.core.dilation.dilated_reference) and against d interleaved ordinary layers; gradcheck; chunks with the state
carried; dilation=1 is the undilated layer; errors; save and load."""
import pytest
import torch
from torch.testing import assert_close

import rnr
from rnr.core.dilation import dilated_reference
from rnr.core.rnn import RNN

from conftest import garbage_padded, lit, torch_peer

I, H = 3, 4
LENGTHS = torch.tensor([7, 1, 5, 2])  # unsorted; rows 1 and 3 are shorter than most dilations below
TIGHT = {"rtol": 1e-10, "atol": 1e-12}  # float64, up to the order of sums
CASES = [("elman", "loop"), ("elman", "bptt"), ("elman", "fused"), ("elman", "compiled"), ("lstm", "loop"),
         ("lstm", "fused"), ("lstm", "compiled"), ("gru", "loop"), ("gru", "fused"), ("gru", "compiled")]
CASE_IDS = ["-".join(c) for c in CASES]


def _states(h):
    return list(h) if isinstance(h, tuple) else [h]


def _random_state(cell, n, B, seed=1):
    g = torch.Generator().manual_seed(seed)
    parts = [torch.randn(n, B, H, generator=g, dtype=torch.float64) for _ in range(2 if cell == "lstm" else 1)]
    return tuple(parts) if cell == "lstm" else parts[0]


def _run_with_grads(fn, x, h0):
    """Outputs, final states and the gradients (x, h0, every parameter) of a loss weighing each one differently."""
    x = x.clone().requires_grad_(True)
    h0 = _each_leaf(h0)
    out, h_n = fn(x, h0)
    g = torch.Generator().manual_seed(2)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    loss = loss + sum((h * torch.randn(h.shape, generator=g, dtype=h.dtype)).sum() for h in _states(h_n))
    return [out, *_states(h_n)], [x, *_states(h0)], loss


def _each_leaf(h0):
    return tuple(h.clone().requires_grad_(True) for h in h0) if isinstance(h0, tuple) else h0.clone().requires_grad_(True)


# ---------------------------------------------------------------- against the plain reference loop


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("dilation", [(1, 4), (2, 3)], ids=["d1-4", "d2-3"])
@pytest.mark.parametrize("cell,impl", CASES, ids=CASE_IDS)
def test_equals_the_plain_reference_loop(cell, impl, dilation, bidirectional):
    """Outputs, final states and gradients (x, h0, weights) of a ragged batch with garbage padding equal
    ``h_t = cell(x_t, h_{t-d})`` run step by step, one sequence at a time; outputs and gradients past each end are
    zero."""
    torch.manual_seed(0)
    rnn = RNN(I, H, cell=cell, num_layers=2, bidirectional=bidirectional, impl=impl, dilation=dilation).double()
    B, T = len(LENGTHS), int(LENGTHS.max())
    x = garbage_padded(torch.randn(B, T, I, dtype=torch.float64), LENGTHS)
    h0 = _random_state(cell, sum(dilation) * rnn.num_directions, B)
    params = list(rnn.parameters())
    got, leaves, loss = _run_with_grads(lambda x, h: rnn(x, h, lengths=LENGTHS), x, h0)
    got_grads = torch.autograd.grad(loss, leaves + params)
    want, ref_leaves, ref_loss = _run_with_grads(lambda x, h: dilated_reference(rnn, x, h, LENGTHS), x, h0)
    want_grads = torch.autograd.grad(ref_loss, ref_leaves + params)
    assert got[0].shape == (B, T, rnn.num_directions * H)
    assert got[1].shape == (sum(dilation) * rnn.num_directions, B, H)
    names = ["out"] + [f"h_n[{i}]" for i in range(len(got) - 1)]
    names += [f"grad {n}" for n in ["x"] + [f"h0[{i}]" for i in range(len(leaves) - 1)]]
    names += [f"grad {n}" for n, _ in rnn.named_parameters()]
    for name, a, b in zip(names, got + list(got_grads), want + list(want_grads), strict=True):
        assert_close(a, b, **TIGHT, msg=lambda m, name=name: f"{name}: {m}")
    for b, n in enumerate(LENGTHS.tolist()):
        assert not got[0][b, n:].any(), f"outputs past the end of sequence {b}"
        assert not got_grads[0][b, n:].any(), f"gradient reached the padding of sequence {b}"


@pytest.mark.parametrize("cell,impl", [("elman", "bptt"), ("lstm", "fused"), ("gru", "compiled"), ("gru", "loop")])
def test_padding_values_change_nothing(cell, impl):
    torch.manual_seed(0)
    rnn = RNN(I, H, cell=cell, num_layers=2, bidirectional=True, impl=impl, dilation=(2, 3))
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), I)
    results = []
    for fill in (x, garbage_padded(x, LENGTHS), garbage_padded(x, LENGTHS, scale=1e4)):
        fill = fill.clone().requires_grad_(True)
        out, h_n = rnn(fill, lengths=LENGTHS)
        loss = out.pow(2).sum() + sum(s.sum() for s in _states(h_n))
        results.append([out, *_states(h_n), *torch.autograd.grad(loss, [fill] + list(rnn.parameters()))])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


# ---------------------------------------------------------------- d interleaved ordinary layers


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_equals_d_interleaved_ordinary_layers(cell, d, bidirectional):
    """Steps r, r + d, r + 2d, ... of each row, run through an ordinary layer (dilation=1) with the same weights from
    slot r of h0 (the backward direction: the slot its first step read takes), give outputs r::d and the final
    slots of the dilated layer (forward slot k: sub-sequence (L + k) mod d; backward slot k: h_{d-1-k})."""
    torch.manual_seed(0)
    dilated = RNN(I, H, cell=cell, bidirectional=bidirectional, dilation=d, impl="loop").double()
    plain = RNN(I, H, cell=cell, bidirectional=bidirectional).double()
    plain.load_state_dict(dilated.state_dict())
    D = dilated.num_directions
    B, T = len(LENGTHS), int(LENGTHS.max())
    x = garbage_padded(torch.randn(B, T, I, dtype=torch.float64), LENGTHS)
    h0 = _random_state(cell, d * D, B)  # (d*D, B, H): forward slots 0..d-1, then backward slots 0..d-1
    out, h_n = dilated(x, h0, lengths=LENGTHS)
    for b, L in enumerate(LENGTHS.tolist()):
        for r in range(min(d, L)):
            last = r + (L - 1 - r) // d * d  # the sub-sequence's last step: the backward direction reads it first
            slots = [r] + ([d + L - 1 - last] if bidirectional else [])
            sub_h0 = tuple(h[slots, b : b + 1] for h in _states(h0))
            sub_out, sub_h = plain(x[b : b + 1, r:L:d], sub_h0 if cell == "lstm" else sub_h0[0])
            assert_close(out[b, r:L:d], sub_out[0], **TIGHT)
            for got, want in zip(_states(h_n), _states(sub_h)):
                assert_close(got[(r - L) % d, b], want[0, 0], **TIGHT)  # forward slot k with (L + k) mod d = r
                if bidirectional:  # backward slot d-1-r holds h_r, the last state the backward direction reaches
                    assert_close(got[d + d - 1 - r, b], want[1, 0], **TIGHT)
        for k in range(d):  # slots no step reached keep the initial state
            if L - d + k < 0:
                for got, init in zip(_states(h_n), _states(h0)):
                    assert torch.equal(got[k, b], init[L + k, b])
                    if bidirectional:
                        assert torch.equal(got[d + k, b], init[d + L + k, b])
    assert not torch.allclose(out, plain(x, lengths=LENGTHS)[0])  # dilation has an effect


# ---------------------------------------------------------------- gradients, chunks


@pytest.mark.parametrize("cell,impl", [("elman", "bptt"), ("lstm", "compiled"), ("gru", "fused"), ("gru", "compiled")])
def test_gradcheck(cell, impl):
    """Gradients of x, h0 and every weight by finite differences, through a ragged bidirectional dilated stack (the
    implementations with a backward of their own: hand-written BPTT, the compiled loops, PyTorch's kernels)."""
    torch.manual_seed(0)
    rnn = RNN(1, 2, cell=cell, num_layers=2, bidirectional=True, impl=impl, dilation=(2, 3)).double()
    names = [n for n, _ in rnn.named_parameters()]
    lengths = torch.tensor([4, 1])
    x = torch.randn(2, 4, 1, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2 * 5, 2, 2, dtype=torch.float64, requires_grad=True)

    def f(x, h0, *weights):
        state = (h0, h0.flip(0)) if cell == "lstm" else h0
        out, h_n = torch.func.functional_call(rnn, dict(zip(names, weights)), (x, state), {"lengths": lengths})
        return out, *_states(h_n)

    weights = [p.detach().clone().requires_grad_(True) for p in rnn.parameters()]
    assert torch.autograd.gradcheck(f, (x, h0, *weights), fast_mode=True)


@pytest.mark.parametrize("cell,impl", [("elman", "bptt"), ("lstm", "fused"), ("gru", "compiled"), ("lstm", "loop")])
def test_chunks_with_the_state_carried_equal_the_whole_sequence(cell, impl):
    """h_n of one chunk as h0 of the next continues every layer's d interleaved recurrences, also when a chunk is
    shorter than the dilation (its slots then pass on part of the state it started from)."""
    torch.manual_seed(0)
    rnn = RNN(I, H, cell=cell, num_layers=2, impl=impl, dilation=(2, 3)).double()
    lengths = torch.tensor([11, 9, 7])
    x = garbage_padded(torch.randn(3, 11, I, dtype=torch.float64), lengths)
    h0 = _random_state(cell, 5, 3)
    whole, h_whole = rnn(x, h0, lengths=lengths)
    state, outs = h0, []
    for start, stop in [(0, 1), (1, 5), (5, 11)]:  # the first chunk is shorter than either dilation
        n = (lengths - start).clamp(max=stop - start)
        out, state = rnn(x[:, start:stop], state, lengths=n)
        outs.append(out)
    assert_close(torch.cat(outs, dim=1), whole, **TIGHT)
    for a, b in zip(_states(state), _states(h_whole)):
        assert_close(a, b, **TIGHT)


# ---------------------------------------------------------------- dilation=1 is the undilated layer


@pytest.mark.parametrize("cell,impl", CASES + [("gru", "auto")], ids=CASE_IDS + ["gru-auto"])
def test_dilation_one_is_the_undilated_layer_bitwise(cell, impl):
    """dilation=1 and (1, 1) take the undilated path: the same outputs, states and gradients bit for bit, states of
    (L*D, B, H), the same repr; with impl="fused" bit for bit torch.nn's result (one call to the same kernel); and
    the first layer of a (1, 2) stack is, bit for bit, the undilated one-layer RNN with its weights."""
    torch.manual_seed(0)
    x = garbage_padded(torch.randn(4, 7, I), LENGTHS)
    h0 = tuple(torch.randn(4, 4, H) for _ in range(2)) if cell == "lstm" else torch.randn(4, 4, H)
    models = [RNN(I, H, cell=cell, num_layers=2, bidirectional=True, impl=impl, **kw)
              for kw in ({}, {"dilation": 1}, {"dilation": (1, 1)}, {"dilation": [1, 1]})]
    for m in models[1:]:
        m.load_state_dict(models[0].state_dict())
        assert repr(m) == repr(models[0])
    results = []
    for m in models:
        got, leaves, loss = _run_with_grads(lambda x, h, m=m: m(x, h, lengths=LENGTHS), x, h0)
        results.append(got + list(torch.autograd.grad(loss, leaves + list(m.parameters()))))
    assert results[0][1].shape == (4, 4, H)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))
    if impl == "fused":  # no packing: torch.nn packs with another API
        theirs = torch_peer(cell, I, H, num_layers=2, bidirectional=True)
        theirs.load_state_dict(models[0].state_dict())
        for a, b in zip([models[1](x, h0)[0], *_states(models[1](x, h0)[1])],
                        [theirs(x, h0)[0], *_states(theirs(x, h0)[1])]):
            assert torch.equal(a, b)
    if impl != "fused":  # a one-layer fused RNN is one kernel call for both directions, the stack one per direction
        mixed = RNN(I, H, cell=cell, num_layers=2, bidirectional=True, impl=impl, dilation=(1, 2))
        one = RNN(I, H, cell=cell, bidirectional=True, impl=impl)
        mixed.load_state_dict(models[0].state_dict())
        one.load_state_dict({k: v for k, v in mixed.state_dict().items() if "_l0" in k})
        h0_one = tuple(h[:2] for h in _states(h0))  # layer 0: forward, backward
        h0_mixed = tuple(torch.cat([h, h, h]) for h in h0_one)  # (2 + 2*2, B, H): layer 1 has 2 slots a direction
        _, h_one = one(x, h0_one if cell == "lstm" else h0_one[0], lengths=LENGTHS)
        _, h_mixed = mixed(x, h0_mixed if cell == "lstm" else h0_mixed[0], lengths=LENGTHS)
        for a, b in zip(_states(h_mixed), _states(h_one)):
            assert torch.equal(a[:2], b)


# ---------------------------------------------------------------- errors, repr, files


BAD = [(0, ValueError), (-2, ValueError), ((1,), ValueError), ((1, 2, 3), ValueError), ((2, 0), ValueError),
       ((2, 1.5), ValueError), ((2, True), ValueError), (1.5, TypeError), ("2", TypeError), (None, TypeError),
       (True, TypeError)]


@pytest.mark.parametrize("dilation,error", BAD, ids=[repr(d) for d, _ in BAD])
def test_bad_dilation_is_a_clear_error(dilation, error):
    with pytest.raises(error) as e:
        RNN(I, H, num_layers=2, dilation=dilation)
    text = str(e.value)
    assert text.startswith("dilation must be an int")  # the argument and the rule
    assert repr(dilation) in text  # the value
    assert "e.g. dilation=(1, 2) for num_layers=2" in text  # the fix


def test_h0_of_the_wrong_shape_names_the_dilated_rule():
    rnn = RNN(I, H, cell="lstm", num_layers=2, dilation=(1, 3))
    x = torch.randn(2, 5, I)
    with pytest.raises(ValueError, match=lit("h0[0] must have shape (4, 2, 4) (sum(dilation) * num_directions")):
        rnn(x, (torch.zeros(2, 2, H), torch.zeros(2, 2, H)))
    assert rnn(x)[1][0].shape == (4, 2, H)


def test_repr_shows_the_dilation():
    assert repr(RNN(I, H, num_layers=2, dilation=2)) == "RNN(elman, 3 -> 4, num_layers=2, dilation=2)"
    assert repr(RNN(I, H, num_layers=2, dilation=[1, 4])) == "RNN(elman, 3 -> 4, num_layers=2, dilation=(1, 4))"
    assert repr(RNN(I, H, dilation=1)) == "RNN(elman, 3 -> 4)"


@pytest.mark.parametrize("dilation", [3, (1, 4)])
def test_save_and_load_keep_the_dilation(tmp_path, dilation):
    model = RNN(I, H, cell="gru", num_layers=2, bidirectional=True, dilation=dilation)
    rnr.save(model, tmp_path / "rnn.rnr")
    loaded = rnr.load(tmp_path / "rnn.rnr")
    assert loaded.dilation == model.dilation and repr(loaded) == repr(model)
    x = torch.randn(2, 6, I)
    model.eval()
    for a, b in zip([model(x)[0], model(x)[1]], [loaded(x)[0], loaded(x)[1]]):
        assert torch.equal(a, b)


def test_stream_and_onnx_export_refuse_a_dilated_layer():
    import rnr
    from rnr.export import export_onnx

    rnn = rnr.RNN(2, 4, num_layers=2, dilation=(1, 3))
    with pytest.raises(ValueError, match=r"rnn has dilation=\(1, 3\), which Stream does not carry"):
        rnr.Stream(rnn)
    with pytest.raises(ValueError, match=r"model must have dilation 1 to be exported one step at a time"):
        export_onnx(rnn, "/dev/null")
