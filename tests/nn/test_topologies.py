"""The five topologies: one conformance check shared by all of them, then what each adds (pooling, state carry,
generation, teacher forcing, attention, beam search, token inputs) and the errors bad input gets.

A new topology adds one line to SPECS; the conformance check, the input errors and the constructor errors then
run on it for every cell and task.
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from rnr.core.rnn import step_mask
from rnr.data.sequences import Batch
from rnr.nn.topologies import EncoderDecoder, ManyToManySync, ManyToOne, OneToMany, OneToOne

from conftest import (
    CELLS,
    LX,
    LY,
    SEQUENCE_SPECS,
    SPECS,
    TASKS,
    VECTOR_SPECS,
    H,
    I,
    O,
    check_each_alone,
    garbage_padded,
    lit,
    make_batch,
    outputs,
)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), spec=st.sampled_from(SPECS[1:]), cell=st.sampled_from(CELLS), task=st.sampled_from(TASKS),
       bidirectional=st.booleans())
def test_any_ragged_batch_gives_what_each_example_gives_alone(data, spec, cell, task, bidirectional):
    B = data.draw(st.integers(1, 4), label="B")
    LX = torch.tensor(data.draw(st.lists(st.integers(1, 6), min_size=B, max_size=B), label="LX"))
    LY = torch.tensor(data.draw(st.lists(st.integers(1, 5), min_size=B, max_size=B), label="LY"))
    extra = dict(bidirectional=bidirectional) if spec.x == "sequence" else {}  # vector inputs: one direction
    model = spec.cls(I, O, hidden_size=H, cell=cell, task=task, num_layers=2, **extra)
    check_each_alone(model, spec, make_batch(spec, task, LX=LX, LY=LY))

# ---------------------------------------------------------------- the conformance check

@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_conformance(spec, cell, task):
    model = spec.cls(I, O, hidden_size=H, cell=cell, task=task)
    batch = make_batch(spec, task)
    B, classify = len(batch), task == "classification"

    # shapes
    out = outputs(model, spec, batch)
    steps = {"one": (), "sequence": (int(LY.max()),), "synced": (int(LX.max()),)}[spec.y]
    assert out.shape == (B, *steps, O)

    # loss: a finite scalar, and backward reaches every parameter
    loss = model.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        # OneToOne takes one step from a zero state, so h_0 W_h is zero and W_h can learn nothing
        if not (spec.cls is OneToOne and name.startswith("rnn.weight_hh")):
            assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"

    # metrics: the loss, and for classification the accuracy over the real targets
    metrics = model.metrics(batch)
    assert set(metrics) == ({"loss", "accuracy"} if classify else {"loss"})
    assert metrics["loss"] == pytest.approx(model.loss(batch).item(), rel=1e-6)
    if classify:
        hit = outputs(model, spec, batch).argmax(-1) == batch.y
        if spec.y != "one":
            lengths = batch.y_lengths if spec.y == "sequence" else batch.x_lengths
            hit = hit[step_mask(lengths, hit.shape[1])]
        assert metrics["accuracy"] == pytest.approx(hit.float().mean().item())

    # padding never changes results
    check_each_alone(model, spec, batch)

    # repr shows only the settings that differ from the defaults
    name = spec.cls.__name__
    shown = ", task='classification'" if classify else ""
    assert repr(model) == f"{name}({cell}, {I} -> {H} -> {O}{shown})"
    assert repr(spec.cls(3, 1, cell=cell, num_layers=2)) == f"{name}({cell}, 3 -> 64 -> 1, num_layers=2)"

@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_the_shared_settings_have_an_effect(spec):
    """loss, nonlinearity and dropout, each against the same weights with the default."""
    batch = make_batch(spec, "regression")
    base = spec.cls(I, O, hidden_size=H, num_layers=2)

    def twin(**kwargs):
        model = spec.cls(I, O, hidden_size=H, num_layers=2, **kwargs)
        model.load_state_dict(base.state_dict())
        return model

    mae = twin(loss="mae")
    pred = outputs(base, spec, batch)
    assert_close(outputs(mae, spec, batch), pred)  # the same model, judged differently
    real = torch.ones(pred.shape[:-1], dtype=torch.bool)
    if spec.y != "one":
        real = step_mask(batch.y_lengths if spec.y == "sequence" else batch.x_lengths, pred.shape[1])
    assert_close(mae.loss(batch), (pred - batch.y).abs()[real].mean())
    assert_close(base.loss(batch), ((pred - batch.y) ** 2)[real].mean())

    assert not torch.allclose(outputs(twin(nonlinearity="relu"), spec, batch), pred)

    dropped = twin(dropout=0.5)  # between the two layers, in training only
    assert not torch.allclose(outputs(dropped, spec, batch), pred)
    dropped.eval(), base.eval()
    assert_close(outputs(dropped, spec, batch), outputs(base, spec, batch))

# ---------------------------------------------------------------- input errors, shared by every topology

VECTOR_INPUT_ERRORS = {  # id: (x, exception, message)
    "3d": (torch.randn(2, 4, I), ValueError, lit(f"x must have shape (batch, {I}): one vector per example, got "
                                                 f"(2, 4, {I}); for sequences use ManyToOne or ManyToManySync")),
    "features": (torch.randn(2, I + 2), ValueError, lit(f"x must have shape (batch, {I}): one vector per example, "
                                                        f"got (2, {I + 2})")),
    "nan": (torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, float("nan")]]), ValueError,
            lit("x must be finite, got NaN or inf (first at index (1, 2)); fill or drop missing values")),
    "inf": (torch.tensor([[0.0, float("inf"), 2.0], [0.0, 0.0, 0.0]]), ValueError,
            lit("x must be finite, got NaN or inf (first at index (0, 1))")),
    # vector inputs take no vocab_size, so the message must not suggest one
    "int": (torch.ones(2, I, dtype=torch.long), TypeError,
            lit("x must hold floating-point values, got dtype torch.int64; convert it with x.float()") + "$"),
    "list": ([[0.0] * I], TypeError, lit("x must be a torch.Tensor, got list; convert it with torch.as_tensor(x")),
}

@pytest.mark.parametrize("case", VECTOR_INPUT_ERRORS)
@pytest.mark.parametrize("spec", VECTOR_SPECS, ids=str)
def test_vector_input_errors(spec, case):
    x, exc, message = VECTOR_INPUT_ERRORS[case]
    model = spec.cls(I, O, hidden_size=H, steps=3) if spec.cls is OneToMany else spec.cls(I, O, hidden_size=H)
    with pytest.raises(exc, match=message):
        model(x)

def _with(value, index, shape=(2, 5, I)):
    x = torch.zeros(shape)
    x[index] = value
    return x

SEQUENCE_INPUT_ERRORS = {  # id: (x, lengths, exception, message)
    "2d": (torch.randn(5, I), None, ValueError,
           lit(f"x must have 3 dimensions (batch, time, features), got 2 with shape (5, {I}); add a batch "
               f"dimension with x.unsqueeze(0)")),
    "4d": (torch.randn(2, 5, I, 1), None, ValueError,
           lit(f"x must have 3 dimensions (batch, time, features), got 4 with shape (2, 5, {I}, 1); reshape it")),
    "features": (torch.randn(2, 5, I + 1), None, ValueError,
                 lit(f"x must have input_size={I} features in its last dimension, got shape (2, 5, {I + 1}); "
                     f"build the model with input_size={I + 1} or fix the data")),
    "empty": (torch.randn(2, 0, I), None, ValueError,
              lit(f"x must have at least one time step, got shape (2, 0, {I}); drop empty sequences")),
    "length_0": (torch.randn(2, 5, I), [5, 0], ValueError,
                 lit("lengths must be >= 1 (every sequence needs at least one step), got lengths[1]=0; drop empty")),
    "length_past_T": (torch.randn(2, 5, I), [6, 2], ValueError,
                      lit("lengths must be <= the padded length T=5 of the batch, got lengths[0]=6; pad the batch")),
    "lengths_count": (torch.randn(2, 5, I), [5], ValueError,
                      lit("lengths must have one entry per sequence (batch size 2), got 1 entries")),
    "nan": (_with(float("nan"), (1, 3, 2)), None, ValueError,
            lit("x must be finite, got NaN or inf (first at index (1, 3, 2)); fill or drop missing values")),
    "inf": (_with(-float("inf"), (0, 4, 0)), None, ValueError,
            lit("x must be finite, got NaN or inf (first at index (0, 4, 0))")),
    "int_without_vocab": (torch.ones(2, 5, I, dtype=torch.long), None, TypeError,
                          lit("x must hold floating-point values, got dtype torch.int64; convert it with x.float(), "
                              "or give the model an embedding (vocab_size=...) to read integer tokens")),
}

@pytest.mark.parametrize("case", SEQUENCE_INPUT_ERRORS)
@pytest.mark.parametrize("spec", SEQUENCE_SPECS, ids=str)
def test_sequence_input_errors(spec, case):
    x, lengths, exc, message = SEQUENCE_INPUT_ERRORS[case]
    with pytest.raises(exc, match=message):
        spec.cls(I, O, hidden_size=H)(x, lengths)

TOKEN_INPUT_ERRORS = {  # id: (x, exception, message), for a model with vocab_size=7
    "float": (torch.zeros(2, 5), TypeError,
              lit("x must hold integer token ids, got dtype torch.float32; convert it with x.long()")),
    "3d": (torch.zeros(2, 5, 1, dtype=torch.long), ValueError,
           lit("x must have 2 dimensions (batch, time) of token ids, got 3 with shape (2, 5, 1)")),
    "out_of_vocab": (torch.tensor([[0, 7, 1]]), ValueError,
                     lit("x must hold token ids in [0, 7), got values in [0, 7]; build the model with a larger "
                         "vocab_size or map unknown tokens to an id below 7")),
    "negative": (torch.tensor([[0, -1, 1]]), ValueError, lit("x must hold token ids in [0, 7), got values in [-1, 1]")),
    "empty": (torch.zeros(2, 0, dtype=torch.long), ValueError,
              lit("x must have at least one time step, got shape (2, 0); drop empty sequences")),
}

@pytest.mark.parametrize("case", TOKEN_INPUT_ERRORS)
@pytest.mark.parametrize("spec", SEQUENCE_SPECS, ids=str)
def test_token_input_errors(spec, case):
    x, exc, message = TOKEN_INPUT_ERRORS[case]
    with pytest.raises(exc, match=message):
        spec.cls(I, O, hidden_size=H, vocab_size=7)(x)

CONSTRUCTOR_ERRORS = {  # id: (keyword arguments, exception, message)
    "cell": (dict(cell="rnn"), ValueError, lit("cell must be one of ['elman', 'lstm', 'gru', 'mingru', 'minlstm'], "
                                               "got 'rnn'; pass e.g. cell='gru'")),
    "nonlinearity": (dict(nonlinearity="softsign"), ValueError,
                     lit("nonlinearity must be one of ['identity', 'relu', 'sigmoid', 'tanh'] or an elementwise "
                         "callable, got 'softsign'; pass e.g. nonlinearity='tanh'")),
    "nonlinearity_for_lstm": (dict(cell="lstm", nonlinearity="relu"), ValueError,
                              lit("nonlinearity applies only to cell='elman', got nonlinearity='relu' with "
                                  "cell='lstm'; leave nonlinearity at its default")),
    "task": (dict(task="ranking"), ValueError,
             lit("task must be 'regression' or 'classification', got 'ranking'")),
    "loss": (dict(loss="huber"), ValueError,
             lit("loss must be one of ['mse', 'mae'] for task='regression', got 'huber'; leave loss=None for 'mse'")),
    "loss_of_the_other_task": (dict(loss="cross_entropy"), ValueError,
                               lit("loss must be one of ['mse', 'mae'] for task='regression', got 'cross_entropy'; "
                                   "loss='cross_entropy' needs task='classification'")),
    "hidden_size": (dict(hidden_size=0), ValueError, lit("hidden_size must be >= 1, got 0")),
    "hidden_size_float": (dict(hidden_size=8.0), TypeError, lit("hidden_size must be an int, got float 8.0")),
    "num_layers": (dict(num_layers=0), ValueError, lit("num_layers must be >= 1, got 0")),
    "dropout": (dict(dropout=1.0), ValueError, lit("dropout must be in [0, 1), got 1.0")),
}

@pytest.mark.parametrize("case", CONSTRUCTOR_ERRORS)
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_constructor_errors(spec, case):
    kwargs, exc, message = CONSTRUCTOR_ERRORS[case]
    with pytest.raises(exc, match=message):
        spec.cls(I, O, **kwargs)

@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_sizes_must_be_positive(spec):
    with pytest.raises(ValueError, match=lit("input_size must be >= 1, got 0")):
        spec.cls(0, O)
    with pytest.raises(ValueError, match=lit("output_size must be >= 1, got -1")):
        spec.cls(I, -1)

@pytest.mark.parametrize("cls, kwargs, message", [
    (ManyToOne, dict(pooling="sum"), "pooling must be 'last', 'mean' or 'max', got 'sum'"),
    (EncoderDecoder, dict(attention="luong"), "attention must be None, 'dot' or 'additive', got 'luong'"),
    (EncoderDecoder, dict(teacher_forcing=1.5), "teacher_forcing must be a probability in [0, 1], got 1.5"),
    (OneToMany, dict(teacher_forcing=-0.1), "teacher_forcing must be a probability in [0, 1], got -0.1"),
    (OneToMany, dict(eos=2), "eos (a stop token) needs task='classification'; regression outputs run for `steps`"),
    (EncoderDecoder, dict(task="classification", eos=O), f"eos must be a class id in [0, output_size={O}), got {O}"),
    (OneToMany, dict(steps=0), "steps must be >= 1, got 0"),
    (OneToMany, dict(max_steps=0), "max_steps must be >= 1, got 0"),
    (ManyToOne, dict(vocab_size=0), "vocab_size must be >= 1, got 0"),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_topology_specific_constructor_errors(cls, kwargs, message):
    with pytest.raises(ValueError, match=lit(message)):
        cls(I, O, **kwargs)

# ---------------------------------------------------------------- ManyToOne: pooling

def _pool_manually(out: torch.Tensor, lengths: torch.Tensor, pooling: str) -> torch.Tensor:
    rows = []
    for b, n in enumerate(lengths.tolist()):
        real = out[b, :n]  # (n, D*H): the real steps only
        rows.append({"last": real[-1], "mean": real.mean(0), "max": real.max(0).values}[pooling])
    return torch.stack(rows)

@pytest.mark.parametrize("cell", CELLS)
def test_many_to_one_pooling_reads_the_real_steps(cell):
    models = {p: ManyToOne(I, O, hidden_size=H, cell=cell, num_layers=2, pooling=p) for p in ("last", "mean", "max")}
    weights = models["last"].state_dict()
    for m in models.values():
        m.load_state_dict(weights)  # pooling has no parameters: the three differ only in how they pool
    x = garbage_padded(torch.randn(len(LX), int(LX.max()), I), LX)
    top, _ = models["last"].rnn(x, lengths=LX)  # (B, T, H): the top layer's outputs
    results = {}
    for pooling, model in models.items():
        results[pooling] = model(x, LX)
        assert_close(results[pooling], model.head(_pool_manually(top, LX, pooling)))
    for a, b in [("last", "mean"), ("last", "max"), ("mean", "max")]:
        assert not torch.allclose(results[a], results[b]), f"pooling={a!r} and {b!r} give the same outputs"

@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_last_pooling_reads_the_backward_state_at_step_0(cell):
    model = ManyToOne(I, O, hidden_size=H, cell=cell, bidirectional=True)
    x = garbage_padded(torch.randn(len(LX), int(LX.max()), I), LX)
    out, _ = model.rnn(x, lengths=LX)  # (B, T, 2H): forward outputs, then backward ones
    forward_last = torch.stack([out[b, n - 1, :H] for b, n in enumerate(LX.tolist())])
    backward_first = out[:, 0, H:]  # the backward direction ends at step 0, having read the whole sequence
    assert_close(model(x, LX), model.head(torch.cat([forward_last, backward_first], dim=-1)))
    # reading the backward direction at the last step instead would see one step only: a different answer
    backward_last = torch.stack([out[b, n - 1, H:] for b, n in enumerate(LX.tolist())])
    assert not torch.allclose(model(x, LX), model.head(torch.cat([forward_last, backward_last], dim=-1)))
    for pooling in ("mean", "max"):  # the other poolings read both directions at every real step
        m = ManyToOne(I, O, hidden_size=H, cell=cell, bidirectional=True, pooling=pooling)
        m.load_state_dict(model.state_dict())
        assert_close(m(x, LX), m.head(_pool_manually(out, LX, pooling)))

# ---------------------------------------------------------------- ManyToManySync: state carry

@pytest.mark.parametrize("cell", CELLS)
def test_many_to_many_sync_carries_state_across_chunks(cell):
    model = ManyToManySync(I, O, hidden_size=H, cell=cell, num_layers=2)
    x = torch.randn(3, 9, I)
    whole, state = model(x, return_state=True)
    first, mid = model(x[:, :4], return_state=True)
    second, end = model(x[:, 4:], state=mid, return_state=True)
    assert_close(torch.cat([first, second], dim=1), whole)
    for a, b in zip(end if cell == "lstm" else [end], state if cell == "lstm" else [state]):
        assert_close(a, b)
    # without the state the second chunk starts from zeros and differs
    assert not torch.allclose(model(x[:, 4:]), second)
    # loss_and_state (what fit's truncated BPTT calls) carries the same state
    batch = Batch(x[:, 4:], torch.randn(3, 5, O))
    loss, carried = model.loss_and_state(batch, mid)
    assert_close(loss, F.mse_loss(second, batch.y))
    assert_close(carried[0] if cell == "lstm" else carried, end[0] if cell == "lstm" else end)

def test_a_bidirectional_model_cannot_carry_state():
    model = ManyToManySync(I, O, hidden_size=H, bidirectional=True)
    _, state = model(torch.randn(2, 4, I), return_state=True)
    with pytest.raises(ValueError, match=lit("state cannot be carried by a bidirectional model: its backward "
                                             "direction reads the future; use bidirectional=False")):
        model(torch.randn(2, 4, I), state=state)


# ---------------------------------------------------------------- ManyToOne: the convolutional front end

@pytest.mark.parametrize("stride", [1, 2, 3])
def test_the_conv_front_end_gives_each_sequence_of_a_ragged_batch_what_it_gives_alone(stride):
    torch.manual_seed(0)
    model = ManyToOne(I, O, hidden_size=H, cell="gru", bidirectional=True, pooling="max", conv=True, stride=stride)
    model.eval()  # the normalisation reads its running statistics
    lengths = torch.tensor([7, 3, 5, 1])
    x = torch.randn(4, 7, I)
    batch_out = model(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        assert_close(batch_out[b], model(x[b : b + 1, :n])[0], atol=1e-5, rtol=1e-5)
    feats, new_lengths = model.front(x, lengths)
    assert feats.shape[1] == -(-7 // stride) and new_lengths.tolist() == [-(-n // stride) for n in lengths.tolist()]


def test_the_conv_front_end_normalises_over_the_real_steps_only_in_training():
    from rnr.nn.conv import ConvFront

    torch.manual_seed(0)
    front = ConvFront(2, layers=((3, 3),))
    x, lengths = torch.randn(2, 6, 2), torch.tensor([6, 2])
    x[1, 2:] = 100.0  # padding that would move the statistics if it were counted
    front.train()
    out, _ = front(x, lengths)
    alone = x.clone()
    alone[1, 2:] = 0.0  # what the second sequence reads alone, with zero padding
    conv = front.convs[0](torch.nn.functional.pad(alone.transpose(1, 2), (1, 1)))  # (2, 3, 6)
    real = torch.cat([conv[0], conv[1, :, :2]], dim=1)  # (3, 8): the real steps of both
    mean, var = real.mean(1), real.var(1, unbiased=False)
    expected = torch.relu((conv - mean[:, None]) / torch.sqrt(var[:, None] + 1e-5))
    assert_close(out[0], expected[0].T)
    assert_close(out[1, :2], expected[1, :, :2].T)
    assert (out[1, 2:] == 0).all()  # past the end: zero, as padding alone would read
    assert_close(front.norms[0].running_mean, 0.1 * mean)


def test_stride_needs_the_conv_front_end():
    with pytest.raises(ValueError, match="stride applies to the convolutional front end: pass conv=True"):
        ManyToOne(I, O, stride=2)
    with pytest.raises(TypeError, match="conv must be True or False, got 'yes'"):
        ManyToOne(I, O, conv="yes")
