"""rnr.RNN against torch.nn.RNN/LSTM/GRU, ragged batches against sequences run alone, the worked example, dropout."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.testing import assert_close

import rnr
from rnr.core.bptt import elman_reference
from rnr.core.cells import PHIS
from rnr.core.rnn import RNN

from conftest import PEER_CASES, PEER_IDS, garbage_padded, torch_peer

B, T, I, H = 3, 5, 4, 6
LENGTHS = torch.tensor([3, 5, 1])  # unsorted on purpose: torch needs enforce_sorted=False


def test_package_exports_the_public_names():
    """The README's ``rnr.RNN(...)``, ``rnr.ManyToOne(...)`` work only if the package re-exports them."""
    from rnr.core.cells import ElmanCell, GRUCell, LSTMCell
    from rnr.data.sequences import SequenceData

    for name, obj in [("RNN", RNN), ("ElmanCell", ElmanCell), ("LSTMCell", LSTMCell), ("GRUCell", GRUCell),
                      ("SequenceData", SequenceData)]:
        assert getattr(rnr, name, None) is obj, f"rnr.{name} is missing from rnr/__init__.py"


# ---------------------------------------------------------------- against torch.nn


def _states(h):
    return list(h) if isinstance(h, tuple) else [h]


def _forward(model, x, h0, lengths, packed):
    """Run rnr (lengths=) or torch (pack_padded_sequence) on the same padded batch."""
    if not packed:
        return model(x, h0, lengths=lengths)
    if lengths is None:
        return model(x, h0)
    seq = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_n = model(seq, h0)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, h_n


def _outputs_and_grads(model, x, h0, lengths, packed, w_out, w_h):
    """out, each final state, then the gradients of a random linear loss for x, each h0 and every parameter."""
    x = x.clone().requires_grad_(True)
    h0 = None if h0 is None else tuple(h.clone().requires_grad_(True) for h in h0)  # (h,) or (h, c)
    state = None if h0 is None else (h0 if len(h0) == 2 else h0[0])  # LSTM takes the pair, the others h
    out, h_n = _forward(model, x, state, lengths, packed)
    states = _states(h_n)
    loss = (out * w_out).sum() + sum((h * w).sum() for h, w in zip(states, w_h))
    leaves = [x] + ([] if h0 is None else list(h0))
    names = ["x"] + [f"h0[{i}]" for i in range(0 if h0 is None else len(h0))]
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, leaves + list(params.values()))
    values = {"out": out, **{f"h_n[{i}]": h for i, h in enumerate(states)}}
    values.update(zip(names + [f"grad {n}" for n in params], grads))
    return values


def _compare(ours, theirs, with_h0, ragged, bidirectional, num_layers, assert_rel_close):
    """Every output and gradient of ours and theirs on one random batch; returns the relative errors."""
    D = 2 if bidirectional else 1
    lengths = LENGTHS if ragged else None
    x = torch.randn(B, T, I)
    if ragged:
        x = garbage_padded(x, LENGTHS)  # torch never reads padding; rnr must not either
    n_states = 2 if ours.cell == "lstm" else 1
    h0 = tuple(torch.randn(num_layers * D, B, H) for _ in range(n_states)) if with_h0 else None
    w_out = torch.randn(B, T, D * H)
    w_h = [torch.randn(num_layers * D, B, H) for _ in range(n_states)]
    got = _outputs_and_grads(ours, x, h0, lengths, False, w_out, w_h)
    want = _outputs_and_grads(theirs, x, h0, lengths, True, w_out, w_h)
    assert got.keys() == want.keys()
    n_grads = sum(k.startswith("grad ") for k in got)
    assert n_grads == 4 * num_layers * D  # every parameter was compared
    return {k: assert_rel_close(got[k], want[k], name=k) for k in got}


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell,phi,impl", PEER_CASES, ids=PEER_IDS)
def test_loads_torch_state_dict_and_matches(torch_pair, assert_rel_close, cell, phi, impl, num_layers,
                                            bidirectional, ragged):
    torch.manual_seed(0)
    ours, theirs = torch_pair(cell, phi, impl, I, H, num_layers, bidirectional)
    assert list(ours.state_dict().keys()) == list(theirs.state_dict().keys())
    _compare(ours, theirs, True, ragged, bidirectional, num_layers, assert_rel_close)


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell,phi,impl", PEER_CASES, ids=PEER_IDS)
def test_torch_loads_our_state_dict_and_matches(assert_rel_close, cell, phi, impl, num_layers, bidirectional,
                                                ragged):
    torch.manual_seed(1)
    ours = RNN(I, H, cell=cell, nonlinearity=phi, num_layers=num_layers, bidirectional=bidirectional, impl=impl)
    theirs = torch_peer(cell, I, H, phi, num_layers=num_layers, bidirectional=bidirectional)
    before = {k: v.clone() for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict())
    assert list(ours.state_dict().keys()) == list(theirs.state_dict().keys())
    assert all(not torch.equal(before[k], v) for k, v in theirs.state_dict().items())  # the load changed them
    _compare(ours, theirs, False, ragged, bidirectional, num_layers, assert_rel_close)


@pytest.mark.parametrize("cell,phi,impl", PEER_CASES, ids=PEER_IDS)
def test_bias_false_matches_torch(torch_pair, assert_rel_close, cell, phi, impl):
    ours, theirs = torch_pair(cell, phi, impl, I, H, num_layers=2, bidirectional=True, bias=False)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert not any("bias" in n for n, _ in ours.named_parameters())
    x = torch.randn(B, T, I)
    assert_rel_close(ours(x, lengths=LENGTHS)[0], _forward(theirs, x, None, LENGTHS, True)[0])


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "sigmoid", "identity", F.softsign])
@pytest.mark.parametrize("impl", ["bptt", "loop"])
def test_every_nonlinearity_reaches_the_layer(nonlinearity, impl):
    """RNN(nonlinearity=phi) equals the plain reference loop with that phi, and phis differ from each other."""
    torch.manual_seed(0)
    model = RNN(I, H, nonlinearity=nonlinearity, impl=impl)
    x, h0 = torch.randn(B, T, I), torch.randn(1, B, H)
    out, h_n = model(x, h0)
    phi = PHIS[nonlinearity] if isinstance(nonlinearity, str) else nonlinearity
    ref_out, ref_h = elman_reference(x, h0[0], model.weight_ih_l0, model.weight_hh_l0, model.bias_ih_l0,
                                     model.bias_hh_l0, phi)
    assert_close(out, ref_out)
    assert_close(h_n[0], ref_h)
    tanh = RNN(I, H, impl=impl)
    tanh.load_state_dict(model.state_dict())
    if nonlinearity != "tanh":
        assert not torch.allclose(tanh(x, h0)[0], out)


def test_default_h0_is_zeros():
    model = RNN(I, H, cell="lstm", num_layers=2, bidirectional=True)
    x = torch.randn(B, T, I)
    zeros = torch.zeros(4, B, H)
    out, (h, c) = model(x)
    out2, (h2, c2) = model(x, (zeros, zeros))
    assert torch.equal(out, out2) and torch.equal(h, h2) and torch.equal(c, c2)
    assert not torch.allclose(model(x, (zeros + 1, zeros))[0], out)  # h0 has an effect


def test_repr_shows_only_non_default_settings():
    assert "RNN(elman, 3 -> 8)" == repr(RNN(3, 8))
    text = repr(RNN(3, 8, cell="gru", num_layers=2, bidirectional=True, dropout=0.25, bias=False, impl="loop"))
    assert text == "RNN(gru, 3 -> 8, num_layers=2, bidirectional=True, dropout=0.25, bias=False, impl=loop)"
    assert "nonlinearity=softsign" in repr(RNN(3, 8, nonlinearity=F.softsign))


# ---------------------------------------------------------------- ragged = alone

RAGGED_CASES = [("elman", "tanh", "bptt"), ("elman", "relu", "bptt"), ("elman", "tanh", "loop"),
                ("elman", "relu", "fused"), ("lstm", "tanh", "loop"), ("lstm", "tanh", "fused"),
                ("gru", "tanh", "loop"), ("gru", "tanh", "fused"), ("elman", "sigmoid", "compiled"),
                ("elman", "tanh", "compiled"), ("lstm", "tanh", "compiled"), ("gru", "tanh", "compiled")]
RAGGED_IDS = ["-".join(c) for c in RAGGED_CASES]


def _ragged_equals_alone(model, x, lengths, h0=None):
    """For each sequence b: outputs on real steps, h_n, and the gradients of every parameter and of x, from the
    padded batch, equal those of the sequence run alone; outputs past its end are exactly zero."""
    Bn, Tn = x.shape[:2]
    x = x.clone().requires_grad_(True)
    out, h_n = model(x, lengths=lengths)
    states = _states(h_n)
    params = list(model.parameters())
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(out[b, n:], torch.zeros_like(out[b, n:])), f"output past the end of sequence {b}"
        xb = x[b : b + 1, :n].detach().clone().requires_grad_(True)
        alone_out, alone_h = model(xb)
        alone_states = _states(alone_h)
        assert_close(out[b : b + 1, :n], alone_out, rtol=1e-10, atol=1e-12)
        for s, a in zip(states, alone_states):
            assert_close(s[:, b : b + 1], a, rtol=1e-10, atol=1e-12)
        # the same loss on sequence b, once through the batch and once alone
        w = torch.randn_like(alone_out)
        loss_batch = (out[b : b + 1, :n] * w).sum() + sum(s[:, b].sum() for s in states)
        loss_alone = (alone_out * w).sum() + sum(a[:, 0].sum() for a in alone_states)
        g_batch = torch.autograd.grad(loss_batch, params + [x], retain_graph=True)
        g_alone = torch.autograd.grad(loss_alone, params + [xb])
        for (name, _), gb, ga in zip(model.named_parameters(), g_batch, g_alone):
            assert_close(gb, ga, rtol=1e-10, atol=1e-12, msg=f"grad {name}, sequence {b}")
        assert_close(g_batch[-1][b : b + 1, :n], g_alone[-1], rtol=1e-10, atol=1e-12)
        assert torch.equal(g_batch[-1][:, n:], torch.zeros_like(g_batch[-1][:, n:])), "gradient reached padding"
    return out, h_n


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell,phi,impl", RAGGED_CASES, ids=RAGGED_IDS)
def test_ragged_batch_equals_each_sequence_alone(cell, phi, impl, bidirectional):
    torch.manual_seed(0)
    model = RNN(I, H, cell=cell, nonlinearity=phi, num_layers=2, bidirectional=bidirectional, impl=impl).double()
    lengths = torch.tensor([5, 2, 4, 1])
    x = torch.randn(4, T, I, dtype=torch.float64)
    _ragged_equals_alone(model, garbage_padded(x, lengths), lengths)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell,phi,impl", RAGGED_CASES, ids=RAGGED_IDS)
def test_padding_values_change_nothing(cell, phi, impl, bidirectional):
    torch.manual_seed(0)
    model = RNN(I, H, cell=cell, nonlinearity=phi, num_layers=2, bidirectional=bidirectional, impl=impl)
    lengths = torch.tensor([5, 2, 4, 1])
    x = torch.randn(4, T, I)
    results = []
    for fill in (x, garbage_padded(x, lengths), garbage_padded(x, lengths, scale=1e4)):
        fill = fill.clone().requires_grad_(True)
        out, h_n = model(fill, lengths=lengths)
        loss = out.pow(2).sum() + sum(s.sum() for s in _states(h_n))
        grads = torch.autograd.grad(loss, [fill] + list(model.parameters()))
        results.append([out, *_states(h_n), *grads])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    case=st.sampled_from(RAGGED_CASES),
    bidirectional=st.booleans(),
    num_layers=st.integers(1, 2),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_property_ragged_equals_alone(case, bidirectional, num_layers, lengths, seed):
    # the autouse seed fixture runs once per test, not per example; each example seeds itself
    torch.manual_seed(seed)
    cell, phi, impl = case
    model = RNN(2, 3, cell=cell, nonlinearity=phi, num_layers=num_layers, bidirectional=bidirectional,
                impl=impl).double()
    lengths = torch.tensor(lengths)
    x = torch.randn(len(lengths), int(lengths.max()), 2, dtype=torch.float64)
    _ragged_equals_alone(model, garbage_padded(x, lengths), lengths)


# ---------------------------------------------------------------- the worked example


@pytest.mark.parametrize("batch", [1, 2])
def test_worked_example_many_to_one_by_hand(batch):
    """H_0 = tanh(b_h + x_0 W_x), H_t = tanh(b_h + x_t W_x + H_{t-1} W_h), y = b_o + H_3 W_o, loss = MSE."""
    torch.manual_seed(0)
    rnn = RNN(2, 3, cell="elman").double()
    head = nn.Linear(3, 1).double()
    x = torch.randn(batch, 4, 2, dtype=torch.float64)
    target = torch.randn(batch, 1, dtype=torch.float64)

    out, h_n = rnn(x)
    loss = F.mse_loss(head(out[:, -1]), target)
    loss.backward()

    # the same model in row-vector form, as leaves of their own
    W_x = rnn.weight_ih_l0.detach().t().clone().requires_grad_(True)  # (I, H)
    W_h = rnn.weight_hh_l0.detach().t().clone().requires_grad_(True)  # (H, H)
    b_h = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().clone().requires_grad_(True)  # (H,)
    W_o = head.weight.detach().t().clone().requires_grad_(True)  # (H, O)
    b_o = head.bias.detach().clone().requires_grad_(True)  # (O,)
    H_0 = torch.tanh(b_h + x[:, 0] @ W_x)  # h_{-1} = 0
    H_1 = torch.tanh(b_h + x[:, 1] @ W_x + H_0 @ W_h)
    H_2 = torch.tanh(b_h + x[:, 2] @ W_x + H_1 @ W_h)
    H_3 = torch.tanh(b_h + x[:, 3] @ W_x + H_2 @ W_h)
    y = b_o + H_3 @ W_o  # (batch, 1)
    hand_loss = ((y - target) ** 2).mean()
    hand_loss.backward()

    tight = dict(rtol=1e-12, atol=1e-12)
    for t, H_t in enumerate([H_0, H_1, H_2, H_3]):
        assert_close(out[:, t], H_t, **tight)
    assert_close(h_n[0], H_3, **tight)
    assert_close(loss, hand_loss, **tight)
    assert_close(rnn.weight_ih_l0.grad.t(), W_x.grad, **tight)
    assert_close(rnn.weight_hh_l0.grad.t(), W_h.grad, **tight)
    assert_close(rnn.bias_ih_l0.grad, b_h.grad, **tight)  # b_h = bias_ih + bias_hh: both get dL/db_h
    assert_close(rnn.bias_hh_l0.grad, b_h.grad, **tight)
    assert_close(head.weight.grad.t(), W_o.grad, **tight)
    assert_close(head.bias.grad, b_o.grad, **tight)
    assert W_h.grad.abs().sum() > 0  # H_3 depends on H_2, ..., H_0 through W_h


# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize("cell,impl", [("elman", "bptt"), ("elman", "loop"), ("elman", "fused"), ("lstm", "loop"),
                                       ("lstm", "fused"), ("gru", "loop"), ("gru", "fused")])
def test_dropout_between_layers(cell, impl):
    torch.manual_seed(0)
    model = RNN(I, H, cell=cell, num_layers=2, dropout=0.5, impl=impl)
    x = torch.randn(B, T, I)
    model.train()
    train_a, train_b = model(x)[0], model(x)[0]
    assert not torch.allclose(train_a, train_b)  # a fresh mask each call
    model.eval()
    eval_a, eval_b = model(x)[0], model(x)[0]
    assert torch.equal(eval_a, eval_b)
    assert not torch.allclose(train_a, eval_a)
    plain = RNN(I, H, cell=cell, num_layers=2, impl=impl).eval()
    plain.load_state_dict(model.state_dict())
    assert torch.equal(plain(x)[0], eval_a)  # eval mode is exactly the model without dropout


@pytest.mark.parametrize("impl", ["bptt", "loop", "fused"])
def test_dropout_has_no_effect_on_one_layer(impl):
    torch.manual_seed(0)
    model = RNN(I, H, num_layers=1, dropout=0.5, impl=impl).train()
    plain = RNN(I, H, num_layers=1, impl=impl)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(B, T, I)
    assert_close(model(x)[0], plain(x)[0], rtol=0, atol=0)
