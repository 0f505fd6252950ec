"""The decoders of OneToMany and EncoderDecoder: generation until the stop token, teacher forcing, scoring against
stepping by hand, attention, beam search, and token inputs. Shares its fixtures with test_topologies.py."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from rnr.core.rnn import step_mask
from rnr.data.sequences import Batch
from rnr.nn.topologies import EncoderDecoder, OneToMany
from rnr.training.train import fit

from conftest import (
    CELLS,
    LX,
    SEQUENCE_SPECS,
    SPECS,
    TASKS,
    H,
    I,
    O,
    check_each_alone,
    garbage_padded,
    lit,
    make_batch,
    outputs,
)

# ---------------------------------------------------------------- OneToMany: generation and teacher forcing

def test_one_to_many_generates_until_eos_and_reports_the_lengths():
    eos, max_steps = 2, 12
    X = torch.eye(3)  # three one-hot vectors, each trained to its own sequence of 1, 3 and 5 tokens and a stop
    Y = [torch.tensor([0, eos]), torch.tensor([1, 1, 0, eos]), torch.tensor([0, 1, 1, 0, 1, eos])]
    model = OneToMany(3, 3, hidden_size=16, cell="gru", task="classification", eos=eos, max_steps=max_steps)
    fit(model, (X, Y), epochs=100, batch_size=3, lr=0.03, progress=False)
    out, lengths = model.generate(X)
    assert lengths.tolist() == [1, 3, 5]  # each length counts the tokens before the row's stop token
    assert out.shape == (3, 6)  # generation stops right after the last row's stop token
    for b, y in enumerate(Y):
        assert torch.equal(out[b, : len(y)], y)  # what follows a row's stop token is not part of its answer
    # greedy generation equals free-running scoring: each step reads the previous argmax
    assert torch.equal(out, model(X, steps=out.shape[1]).argmax(-1))

    B = 8
    x = torch.randn(B, 3)
    with torch.no_grad():  # a model that always emits the stop token stops at once, one that never does runs on
        model.decoder.head.weight.zero_()  # outputs that no longer depend on the input or the state
        model.decoder.head.bias.copy_(torch.tensor([0.0, 0.0, 5.0]))
    out, lengths = model.generate(x)
    assert out.shape == (B, 1) and (out == eos).all() and (lengths == 0).all()
    with torch.no_grad():
        model.decoder.head.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    out, lengths = model.generate(x)
    assert out.shape == (B, max_steps) and (out == 1).all() and (lengths == max_steps).all()
    out, lengths = model.generate(x, steps=4)  # steps overrides max_steps
    assert out.shape == (B, 4) and (lengths == 4).all()

def test_one_to_many_steps():
    x = torch.randn(5, I)
    model = OneToMany(I, 2, hidden_size=H, steps=4)
    assert model(x).shape == (5, 4, 2)  # the steps given at construction
    assert model(x, steps=6).shape == (5, 6, 2)  # or per call
    values, lengths = model.generate(x)
    assert values.shape == (5, 4, 2) and (lengths == 4).all()
    values, lengths = model.generate(x, steps=7)
    assert values.shape == (5, 7, 2) and (lengths == 7).all()
    assert_close(values, model(x, steps=7))  # generation feeds back the previous values, as free running does
    with pytest.raises(ValueError, match=lit("steps must be >= 1, got 0")):
        model.generate(x, steps=0)
    with pytest.raises(ValueError, match=lit("steps must be >= 1, got -2")):
        model(x, steps=-2)

    no_steps = OneToMany(I, 2, hidden_size=H)
    with pytest.raises(ValueError, match=lit("steps must be given (or set at construction) when there is no target")):
        no_steps(x)
    with pytest.raises(ValueError, match=lit("steps must be given (or set at construction, or an eos given) to "
                                             "generate")):
        no_steps.generate(x)
    with pytest.raises(ValueError, match=lit("beam search needs task='classification'; use beam_size=1")):
        no_steps.generate(x, steps=3, beam_size=2)

@pytest.mark.parametrize("task", TASKS)
def test_teacher_forcing_reads_the_target_in_training(task):
    spec = SPECS[1]  # OneToMany
    forced = OneToMany(I, O, hidden_size=H, task=task, teacher_forcing=1.0)
    free = OneToMany(I, O, hidden_size=H, task=task, teacher_forcing=0.0)
    free.load_state_dict(forced.state_dict())
    batch = make_batch(spec, task)
    T = batch.y.shape[1]
    # teacher_forcing=0: each step reads the model's own previous output, as if there were no target
    assert_close(free(batch.x, target=batch.y), free(batch.x, steps=T))
    # teacher_forcing=1: each step reads the previous target; the first output, read from the start symbol, agrees
    assert_close(forced(batch.x, target=batch.y)[:, 0], free(batch.x, target=batch.y)[:, 0])
    assert not torch.allclose(forced(batch.x, target=batch.y), free(batch.x, target=batch.y))
    assert forced.loss(batch).item() != pytest.approx(free.loss(batch).item())
    # the per-call argument overrides the setting
    assert_close(forced(batch.x, target=batch.y, teacher_forcing=0.0), free(batch.x, target=batch.y))
    # in eval mode a target is scored fully forced by both: validation is deterministic
    forced.eval(), free.eval()
    assert_close(free.loss(batch), forced.loss(batch))

def _score_step_by_step(model, spec, batch, forced_steps):
    """The reference for scoring: decoder.step one step at a time, reading the target where forced, else the
    model's own previous output."""
    d = model.decoder
    if spec.x == "vector":
        state, memory = model._init_state(batch.x), None
    else:
        enc, state, mask = model.encode(batch.x, batch.x_lengths)
        memory = (enc, mask)
    prev, outs = d._start(len(batch), batch.x.device), []
    for t in range(batch.y.shape[1]):
        y, state = d.step(prev, state, memory)
        outs.append(y)
        target = batch.y[:, t] if d.classify else batch.y[:, t].float()
        prev = target if t in forced_steps else (y.argmax(-1) if d.classify else y.detach())
    return torch.stack(outs, dim=1)

@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("spec, attention", [(SPECS[1], None), (SPECS[3], None), (SPECS[3], "dot"),
                                             (SPECS[3], "additive")], ids=str)
def test_scoring_a_target_matches_stepping_the_decoder(spec, attention, task):
    extra = dict(attention=attention) if attention else {}  # OneToMany has no encoder to attend to
    model = spec.cls(I, O, hidden_size=H, cell="lstm", num_layers=2, task=task, **extra)
    batch = make_batch(spec, task)
    T = batch.y.shape[1]
    args = (batch.x,) if spec.x == "vector" else (batch.x, batch.x_lengths)
    # full teacher forcing (without attention, one fused call over the whole target) against the step loop
    assert_close(model(*args, target=batch.y), _score_step_by_step(model, spec, batch, range(T)))
    # partial forcing: each step reads the target with probability teacher_forcing, one draw per step
    torch.manual_seed(1)
    mixed = model(*args, target=batch.y, teacher_forcing=0.5)
    torch.manual_seed(1)
    forced_steps = [t for t in range(T) if float(torch.rand(())) < 0.5]
    assert 0 < len(forced_steps) < T
    assert_close(mixed, _score_step_by_step(model, spec, batch, forced_steps))

# ---------------------------------------------------------------- EncoderDecoder: attention, bidirectional, beam

@pytest.mark.parametrize("attention", [None, "additive"])
def test_tied_output_layer_is_the_token_embedding(attention):
    spec = SPECS[3]
    model = EncoderDecoder(I, O, hidden_size=H, cell="gru", task="classification", attention=attention,
                           tie_embeddings=True)
    batch = make_batch(spec, "classification")
    assert_close(model(batch.x, batch.x_lengths, target=batch.y),
                 _score_step_by_step(model, spec, batch, range(batch.y.shape[1])))
    check_each_alone(model, spec, batch)
    assert not [n for n, _ in model.named_parameters() if n.startswith("decoder.head.")]  # no separate output matrix
    before = model(batch.x, batch.x_lengths, target=batch.y)
    with torch.no_grad():
        model.decoder.embed.weight[1] += 1.0  # token 1's embedding is also its row of the output layer
    after = model(batch.x, batch.x_lengths, target=batch.y)
    assert not torch.allclose(before[:, 0, 1], after[:, 0, 1])  # the first step reads the start symbol only
    assert_close(before[:, 0, [0, 2]], after[:, 0, [0, 2]])
    with pytest.raises(ValueError, match="tie_embeddings .* needs task='classification'"):
        EncoderDecoder(I, O, hidden_size=H, task="regression", tie_embeddings=True)
    with pytest.raises(ValueError, match="embedding_dropout"):
        EncoderDecoder(I, O, hidden_size=H, task="classification", vocab_size=5, embedding_dropout=1.5)


@pytest.mark.parametrize("attention", [None, "dot", "additive"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_encoder_decoder_ignores_padding_with_attention_and_both_directions(cell, bidirectional, attention):
    spec = SPECS[3]
    for task in TASKS:
        model = EncoderDecoder(I, O, hidden_size=H, cell=cell, num_layers=2, bidirectional=bidirectional, task=task,
                               attention=attention)
        check_each_alone(model, spec, make_batch(spec, task))

@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_attention_first_step_matches_the_equations(attention):
    model = EncoderDecoder(I, O, hidden_size=H, bidirectional=True, task="classification", attention=attention)
    x = garbage_padded(torch.randn(len(LX), int(LX.max()), I), LX)
    y = torch.randint(0, O, (len(LX), 2))
    enc, state, mask = model.encode(x, LX)  # (B, S, 2H)
    d = model.decoder
    h = state[-1]  # (B, H): the decoder's state before its first step
    if attention == "dot":
        scores = (enc * d.att_q(h)[:, None]).sum(-1)  # (h W_q) . e_s
    else:
        scores = d.att_v(torch.tanh(d.att_k(enc) + d.att_q(h)[:, None])).squeeze(-1)  # v . tanh(h W_q + e_s W_k)
    alpha = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (B, S), zero on padding
    assert (alpha[~mask] == 0).all()
    context = (alpha[..., None] * enc).sum(1)  # (B, 2H)
    start = d.embed(torch.full((len(LX),), O))  # id O is the start symbol
    h1, _ = d.rnn(torch.cat([start, context], -1)[:, None], state)
    expected = d.head(torch.cat([h1[:, 0], context], -1))
    assert_close(model(x, LX, target=y)[:, 0], expected)

def _log_prob(model, x, lengths, tokens, n):
    """Summed log-probability of each row of tokens through its stop token (at position n; all of it if none)."""
    with torch.no_grad():
        logp = F.log_softmax(model(x, lengths, target=tokens), -1).gather(-1, tokens[..., None])[..., 0]
    return (logp * (torch.arange(tokens.shape[1])[None] <= n[:, None])).sum(1)

def _padded(tokens, steps, eos):
    return torch.cat([tokens, torch.full((tokens.shape[0], steps - tokens.shape[1]), eos)], dim=1)

@pytest.fixture
def peaky_decoder():
    """An untrained EncoderDecoder (two tokens and a stop token) whose output distributions are sharp enough that
    greedy decoding, beam search and the most likely sequence differ."""
    eos = 2
    model = EncoderDecoder(I, 3, hidden_size=H, cell="gru", task="classification", eos=eos, attention="dot",
                           vocab_size=6).eval()
    with torch.no_grad():
        model.decoder.head.weight.mul_(8.0)
    x = torch.randint(0, 6, (8, 5))
    lengths = torch.tensor([5, 3, 4, 1, 2, 5, 2, 4])
    return model, x, lengths, eos

def test_greedy_decoding_is_beam_search_with_one_beam(peaky_decoder):
    model, x, lengths, eos = peaky_decoder
    greedy, g_len = model.generate(x, lengths, steps=8)
    assert torch.equal(model.generate(x, lengths, steps=8, beam_size=1)[0], greedy)  # beam_size=1 is the greedy path
    # the beam implementation with one beam keeps the single best token each step: greedy decoding
    out, state, mask = model.encode(x, lengths)
    one, one_len = model.decoder._beam(state, (out, mask), 8, 1)
    assert torch.equal(one_len, g_len)
    for b in range(len(x)):
        assert torch.equal(one[b, : g_len[b] + 1], greedy[b, : g_len[b] + 1])  # through the stop token

def test_beam_search_finds_a_sequence_at_least_as_likely_as_greedy(peaky_decoder):
    model, x, lengths, eos = peaky_decoder
    greedy, g_len = model.generate(x, lengths, steps=8)
    beam, b_len = model.generate(x, lengths, steps=8, beam_size=3)
    for b in range(len(x)):  # a finished beam sequence: no stop token before its length, only stop tokens after
        assert (beam[b, : b_len[b]] != eos).all() and (beam[b, b_len[b]:] == eos).all()
    g_score = _log_prob(model, x, lengths, _padded(greedy, 9, eos), g_len)
    b_score = _log_prob(model, x, lengths, _padded(beam, 9, eos), b_len)
    finished = g_len < 8  # greedy sequences cut off at `steps` are no complete answer to compare with
    assert finished.sum() >= 4
    assert (b_score[finished] >= g_score[finished] - 1e-5).all(), (b_score, g_score)
    assert (b_score[finished] > g_score[finished] + 0.1).any(), "beam search should beat greedy somewhere here"

def test_a_beam_wide_enough_to_keep_every_prefix_finds_the_most_likely_sequence(peaky_decoder):
    model, x, lengths, eos = peaky_decoder
    T = 4  # sequences of up to 3 tokens then the stop token: 1 + 2 + 4 + 8 = 15, all kept by 32 beams
    candidates = [list(p) for n in range(T) for p in itertools.product([0, 1], repeat=n)]
    scores = torch.stack([_log_prob(model, x, lengths, torch.tensor(c + [eos] * (T - len(c))).expand(len(x), T),
                                    torch.full((len(x),), len(c))) for c in candidates], dim=1)  # (B, 15)
    best = [candidates[i] for i in scores.argmax(1).tolist()]
    assert any(best), "the most likely sequence should be longer than the stop token alone somewhere here"
    beam, b_len = model.generate(x, lengths, steps=T, beam_size=32)
    assert [beam[b, : n].tolist() for b, n in enumerate(b_len.tolist())] == best
    assert_close(_log_prob(model, x, lengths, _padded(beam, T, eos), b_len), scores.max(1).values)

def _beam_both_ways(model, x, lengths, steps, k):
    """(batched beam search, the loop over one example at a time) from the same encoding."""
    out, state, mask = model.encode(x, lengths)
    d = model.decoder
    return d._beam(state, (out, mask), steps, k), d._beam_reference(state, (out, mask), steps, k)

@pytest.mark.parametrize("k, vocab", [(1, 6), (2, 6), (5, 6), (5, 3)], ids=["k1", "k2", "k5", "k5-vocab3"])
@pytest.mark.parametrize("eos", [None, 0])
@pytest.mark.parametrize("attention", [None, "dot", "additive"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "mingru"])
def test_batched_beam_search_equals_the_loop_over_examples(cell, attention, eos, k, vocab):
    torch.manual_seed(10 * k + vocab)
    model = EncoderDecoder(I, vocab, hidden_size=H, cell=cell, num_layers=2, task="classification", eos=eos,
                           attention=attention, vocab_size=7).eval()
    with torch.no_grad():  # large weights: lively outputs that depend on the source, so examples stop apart
        for p in model.parameters():
            p.mul_(4.0)
    lengths = torch.tensor([5, 3, 1, 4, 2, 5, 2, 4])  # sources of different lengths, padded to 5
    x = torch.randint(0, 7, (len(lengths), 5))
    (out, n), (ref, ref_n) = _beam_both_ways(model, x, lengths, 8, k)
    assert torch.equal(out, ref) and torch.equal(n, ref_n), (out, ref)

@pytest.mark.parametrize("k", [1, 3])
def test_batched_beam_search_without_an_encoder(k):
    torch.manual_seed(k)
    model = OneToMany(I, 5, hidden_size=H, cell="gru", task="classification", eos=4).eval()
    with torch.no_grad():  # large weights: lively outputs that depend on the input
        for p in model.parameters():
            p.mul_(4.0)
    state, d = model._init_state(torch.randn(6, I)), model.decoder
    out, n = d._beam(state, None, 8, k)
    ref, ref_n = d._beam_reference(state, None, 8, k)
    assert torch.equal(out, ref) and torch.equal(n, ref_n), (out, ref)

@pytest.mark.parametrize("k", [2, 3])
def test_batched_beam_search_stops_each_example_at_its_own_step(peaky_decoder, k):
    model, x, lengths, eos = peaky_decoder
    enc, state, mask = model.encode(x, lengths)
    d, rows = model.decoder, []
    ref, ref_n = d._beam_reference(state, (enc, mask), 8, k)
    step = d.step
    d.step = lambda prev, state, memory: (rows.append(len(prev)), step(prev, state, memory))[1]  # rows per call
    out, n = d._beam(state, (enc, mask), 8, k)
    assert torch.equal(out, ref) and torch.equal(n, ref_n), (out, ref)
    assert rows[0] == len(x) * k and all(r % k == 0 for r in rows)
    assert rows == sorted(rows, reverse=True) and len(set(rows)) >= 2, rows  # examples leave as they stop

@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("eos", [None, 3])
def test_batched_beam_search_breaks_ties_as_the_loop_does(eos, k):
    model = EncoderDecoder(I, 4, hidden_size=H, cell="gru", task="classification", eos=eos, attention="dot",
                           vocab_size=7).eval()
    with torch.no_grad():  # outputs that ignore the state: prefixes of one length tie exactly
        model.decoder.head.weight.zero_()
        model.decoder.head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, -1.0]))  # and the stop token is less likely
    lengths = torch.tensor([4, 1, 3])
    x = torch.randint(0, 7, (3, 4))
    (out, n), (ref, ref_n) = _beam_both_ways(model, x, lengths, 6, k)
    assert torch.equal(out, ref) and torch.equal(n, ref_n), (out, ref)
    if eos is not None and k > 3:  # the stop token made the beam at the first step and wins at the second
        assert (n == 0).all() and out.shape == (3, 2)

# ---------------------------------------------------------------- token inputs

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("spec", SEQUENCE_SPECS, ids=str)
def test_token_inputs_read_through_an_embedding(spec, cell):
    vocab = 7
    model = spec.cls(I, O, hidden_size=H, cell=cell, vocab_size=vocab)
    assert repr(model) == f"{spec.cls.__name__}({cell}, {I} -> {H} -> {O}, vocab_size={vocab})"
    batch = make_batch(spec, "regression", vocab_size=vocab)
    check_each_alone(model, spec, batch)  # random tokens in the padding change nothing
    # the same model without an embedding, fed the embedded tokens, gives the same outputs
    twin = spec.cls(I, O, hidden_size=H, cell=cell)
    twin.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("embedding.")})
    embedded = Batch(model.embedding(batch.x), batch.y, batch.x_lengths, batch.y_lengths)
    assert_close(outputs(model, spec, batch), outputs(twin, spec, embedded))
    model.loss(batch).backward()
    used = model.embedding.weight.grad.abs().sum(1) > 0  # (vocab,): rows that got a gradient
    real = torch.zeros(vocab, dtype=torch.bool)
    real[batch.x[step_mask(LX, batch.x.shape[1])]] = True
    assert torch.equal(used, real), "only tokens at real steps may get a gradient"


def test_eval_scoring_is_fully_forced_and_per_call_ratio_is_checked():
    model = EncoderDecoder(3, 2, hidden_size=8, teacher_forcing=0.3)
    x, y = torch.randn(4, 5, 3), torch.randn(4, 6, 2)
    model.eval()
    torch.testing.assert_close(model(x, target=y), model(x, target=y, teacher_forcing=1.0))
    with pytest.raises(ValueError, match=r"teacher_forcing"):
        model(x, target=y, teacher_forcing=1.5)


def test_beam_search_without_attention():
    spec = SPECS[3]
    model = EncoderDecoder(I, O, hidden_size=H, cell="gru", task="classification", eos=0, max_steps=6).eval()
    batch = make_batch(spec, "classification")
    greedy, _ = model.generate(batch.x, batch.x_lengths)
    beam, _ = model.generate(batch.x, batch.x_lengths, beam_size=1)
    assert torch.equal(greedy[:, : beam.shape[1]], beam)
    wide, lengths = model.generate(batch.x, batch.x_lengths, beam_size=3)
    assert wide.shape[0] == len(batch) and (lengths <= 6).all()
