"""Each topology learns its small task from rnr.tasks through rnr.fit, judged on fresh held-out data where the
task has any: the same tasks and settings as ``rnr tour`` (rnr/cli/tour.py), which prints the table.

Each test trains in a few seconds on 2 CPU cores; seeds are fixed, so each run gives the same numbers.
"""
import pytest
import torch

from rnr.cli import tour
from rnr.core.rnn import step_mask
from rnr.data import tasks
from rnr.data.sequences import SequenceData


def _whole(X, Y):
    """All of (X, Y) as one padded batch."""
    return SequenceData(X, Y).batch(list(range(len(X))))

def _r2(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())

def _exact(out: torch.Tensor, lengths: torch.Tensor, Y: list, eos: int) -> float:
    """Share of generated sequences equal to their target: the same tokens, then the stop token."""
    hits = 0
    for o, n, y in zip(out, lengths.tolist(), Y):
        assert y[-1] == eos
        hits += n == len(y) - 1 and torch.equal(o[:n], y[:-1])
    return hits / len(Y)

def test_one_to_one_learns_xor():
    task, model, metric, accuracy = tour.run_xor()
    X, Y = tasks.xor()
    assert torch.equal(model(X).argmax(-1), Y)
    assert accuracy == 1.0

def test_one_to_many_learns_a_fixed_pattern_per_vector():
    _, model, _, exact = tour.run_patterns()
    X, Y = tasks.patterns(n_patterns=4, length=6, vocab=5)
    out, lengths = model.generate(X)
    assert _exact(out, lengths, Y, eos=5) == 1.0
    assert lengths.tolist() == [6, 6, 6, 6]
    assert exact == 1.0

def test_many_to_one_learns_the_sum_of_a_ragged_sequence():
    _, model, _, r2 = tour.run_sums()
    Xv, Yv = tasks.ragged_sums(500, seed=1)  # fresh sequences, as the tour uses
    batch = _whole(Xv, Yv)
    with torch.no_grad():
        held_out = _r2(model(batch.x, batch.x_lengths), batch.y)
    assert held_out >= 0.95
    assert r2 == pytest.approx(held_out)

def test_many_to_many_sync_learns_a_delayed_echo():
    _, model, _, r2 = tour.run_echo()
    Xv, Yv = tasks.delayed_echo(300, delay=2, seed=1)
    batch = _whole(Xv, Yv)
    real = step_mask(batch.x_lengths, batch.x.shape[1])  # (B, T): only real steps are judged
    with torch.no_grad():
        held_out = _r2(model(batch.x, batch.x_lengths)[real], batch.y[real])
    assert held_out >= 0.95
    assert r2 == pytest.approx(held_out)

def test_encoder_decoder_learns_to_reverse_unseen_strings():
    _, model, _, exact = tour.run_reversal()
    X, _ = tasks.reversal(tour.REVERSAL_TRAIN, seed=0)
    Xv, Yv = tasks.reversal(500, seed=1, exclude={tasks.decode(x) for x in X})
    assert not {tasks.decode(x) for x in X} & {tasks.decode(x) for x in Xv}, "held-out strings must be unseen"
    batch = _whole(Xv, Yv)
    out, lengths = model.generate(batch.x, batch.x_lengths)
    held_out = _exact(out, lengths, Yv, eos=tasks.EOS)
    assert held_out >= 0.99
    assert exact == pytest.approx(held_out)
