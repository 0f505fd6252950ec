"""CTC decoding against references: the sum over every path for tiny inputs, the plain prefix beam search loop,
torch's ctc_loss, per-sequence calls for padded batches, whole-sequence greedy for the stream; every error message."""
import itertools
import re
import warnings
from collections import defaultdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnr.nn.ctc import GreedyStream, ctc_beam_search, ctc_greedy


def lit(text: str) -> str:
    return re.escape(text)


def random_log_probs(rng, *shape, scale=2.0) -> np.ndarray:
    """log_softmax of normal logits, shape (..., C); a larger scale gives more peaked frames."""
    logits = scale * rng.standard_normal(shape)
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


def collapse(path, blank=0) -> tuple:
    merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
    return tuple(c for c in merged if c != blank)


def exhaustive(lp: np.ndarray, blank=0) -> dict:
    """labelling -> log of the summed probability of every path (C ** T of them) that collapses to it."""
    T, C = lp.shape
    totals = defaultdict(lambda: -np.inf)
    for path in itertools.product(range(C), repeat=T):
        labelling = collapse(path, blank)
        totals[labelling] = np.logaddexp(totals[labelling], sum(lp[t, c] for t, c in enumerate(path)))
    return dict(totals)


def beam_search_loop(lp: np.ndarray, beam_width: int, blank=0) -> tuple[list, float]:
    """The plain loop of ctc_beam_search's docstring: one prefix and one class at a time, prefixes as tuples."""
    T, C = lp.shape
    beams = {(): (0.0, -np.inf)}  # prefix -> (log p_b, log p_nb)
    for t in range(T):
        new = defaultdict(lambda: (-np.inf, -np.inf))
        for prefix, (b, nb) in beams.items():
            for c in range(C):
                p = lp[t, c]
                if c == blank:
                    new[prefix] = (np.logaddexp(new[prefix][0], np.logaddexp(b, nb) + p), new[prefix][1])
                    continue
                longer = prefix + (c,)
                if prefix and c == prefix[-1]:
                    new[prefix] = (new[prefix][0], np.logaddexp(new[prefix][1], nb + p))
                    new[longer] = (new[longer][0], np.logaddexp(new[longer][1], b + p))
                else:
                    new[longer] = (new[longer][0], np.logaddexp(new[longer][1], np.logaddexp(b, nb) + p))
        beams = dict(sorted(new.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:beam_width])
    best = max(beams, key=lambda prefix: np.logaddexp(*beams[prefix]))
    return list(best), float(np.logaddexp(*beams[best]))


def frames_of(path, C, p=0.9) -> np.ndarray:
    """Log-probabilities (T, C) whose argmax at each frame is ``path``: p there, the rest shared evenly."""
    probs = np.full((len(path), C), (1 - p) / (C - 1))
    probs[np.arange(len(path)), path] = p
    return np.log(probs)


A_OR_BLANK = np.log([[0.6, 0.4], [0.6, 0.4]])  # best path blank blank (0.36); "a" has 0.16 + 0.24 + 0.24 = 0.64


# ----- greedy

def test_greedy_merges_repeats_and_a_blank_separates_them():
    assert ctc_greedy(frames_of([1, 1, 0, 1], 3)) == [1, 1]          # a a _ a
    assert ctc_greedy(frames_of([0, 1, 1, 2, 2, 0, 0, 2], 3)) == [1, 2, 2]
    assert ctc_greedy(frames_of([0, 0, 0], 3)) == []
    assert ctc_greedy(frames_of([2, 1, 2, 1], 3)) == [2, 1, 2, 1]
    assert ctc_greedy(np.zeros((0, 3))) == []
    assert ctc_greedy(torch.tensor(frames_of([1, 1, 0, 1], 3), dtype=torch.float32)) == [1, 1]


def test_greedy_blank_is_the_class_named():
    frames = frames_of([1, 1, 0, 1], 3)
    assert ctc_greedy(frames, blank=1) == [0]
    assert ctc_greedy(frames, blank=2) == [1, 0, 1]


# ----- beam search against the exhaustive sum, the plain loop and torch's ctc_loss

def test_a_wide_beam_finds_the_labelling_of_highest_total_probability():
    rng = np.random.default_rng(0)
    for case in range(300):
        T, C = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        blank = int(rng.integers(0, C))
        lp = random_log_probs(rng, T, C, scale=float(rng.uniform(0.3, 3.0)))
        totals = exhaustive(lp, blank)
        best = max(totals, key=totals.get)
        labelling, score = ctc_beam_search(lp, beam_width=100, blank=blank, return_scores=True)
        assert labelling == list(best), case
        assert score == pytest.approx(totals[best], abs=1e-5), case
        assert ctc_beam_search(lp, beam_width=100, blank=blank) == labelling


def test_beam_search_equals_the_plain_loop_at_every_beam_width():
    rng = np.random.default_rng(1)
    for case in range(40):
        T, C = int(rng.integers(1, 25)), int(rng.integers(2, 6))
        lp = random_log_probs(rng, T, C, scale=float(rng.uniform(0.5, 3.0)))
        for beam_width in (1, 2, 3, 5):
            labelling, score = ctc_beam_search(lp, beam_width=beam_width, return_scores=True)
            expected, expected_score = beam_search_loop(lp, beam_width)
            assert labelling == expected, (case, beam_width)
            assert score == pytest.approx(expected_score, abs=1e-9), (case, beam_width)


def test_beam_search_finds_a_labelling_greedy_misses():
    assert ctc_greedy(A_OR_BLANK) == []
    assert ctc_beam_search(A_OR_BLANK) == [1]
    totals = exhaustive(A_OR_BLANK)
    assert np.exp(totals[(1,)]) == pytest.approx(0.64) and np.exp(totals[()]) == pytest.approx(0.36)
    # flat random frames: by the exact sum, the beam is never worse than the best path and often better
    rng = np.random.default_rng(2)
    found = 0
    for _ in range(200):
        lp = random_log_probs(rng, 5, 3, scale=0.8)
        totals = exhaustive(lp)
        beam, greedy = tuple(ctc_beam_search(lp, beam_width=100)), tuple(ctc_greedy(lp))
        assert totals[beam] >= totals[greedy]
        found += totals[beam] > totals[greedy] + 1e-9
    assert found > 10


def test_the_score_is_minus_torch_ctc_loss():
    rng = np.random.default_rng(3)
    B, T, C = 12, 7, 4  # 3 labels: at most 3280 prefixes of 7 frames, so a beam of 4000 drops none
    lp = random_log_probs(rng, B, T, C, scale=1.5)
    lengths = rng.integers(1, T + 1, size=B)
    decoded = ctc_beam_search(torch.tensor(lp), lengths, beam_width=4000, return_scores=True)
    for b, (labelling, score) in enumerate(decoded):
        loss = F.ctc_loss(torch.tensor(lp[b, :lengths[b], None]), torch.tensor(labelling, dtype=torch.long),
                          [int(lengths[b])], [len(labelling)], reduction="none")
        assert -score == pytest.approx(float(loss[0]), abs=1e-6)


def test_a_narrow_beam_scores_a_lower_bound_of_the_labellings_probability():
    rng = np.random.default_rng(4)
    lp = random_log_probs(rng, 6, 60, 6, scale=3.0)
    for b, (labelling, score) in enumerate(ctc_beam_search(lp, beam_width=8, return_scores=True)):
        loss = F.ctc_loss(torch.tensor(lp[b, :, None]), torch.tensor(labelling, dtype=torch.long), [60],
                          [len(labelling)], reduction="none")
        assert float(loss[0]) - 1e-9 <= -score < np.inf  # paths dropped from the beam are missing from its sum


def test_beam_width_and_blank_have_an_effect():
    assert ctc_beam_search(A_OR_BLANK, beam_width=1) == []  # one prefix: "" leads after frame 1 and stays ahead
    assert ctc_beam_search(A_OR_BLANK, beam_width=2) == [1]
    assert ctc_beam_search(A_OR_BLANK, blank=1) == [0]


def test_prune_skips_unlikely_classes():
    # a threshold above every log-probability leaves only each frame's best class: one path, the greedy one
    assert ctc_beam_search(A_OR_BLANK, prune=0.0) == ctc_greedy(A_OR_BLANK) == []
    assert ctc_beam_search(A_OR_BLANK, prune=np.log(0.3)) == [1]
    rng = np.random.default_rng(5)
    lp = random_log_probs(rng, 4, 30, 6, scale=3.0)
    assert ctc_beam_search(lp, prune=-np.inf, return_scores=True) == ctc_beam_search(lp, return_scores=True)
    assert ctc_beam_search(lp, prune=1.0) == ctc_greedy(lp)
    # a loose threshold drops only paths of tiny probability: the same labellings, nearly the same scores
    for (labelling, score), (pruned, pruned_score) in zip(ctc_beam_search(lp, return_scores=True),
                                                          ctc_beam_search(lp, prune=np.log(1e-4), return_scores=True)):
        assert pruned == labelling
        assert pruned_score <= score and pruned_score == pytest.approx(score, abs=1e-2)


def test_zero_probability_classes_and_empty_sequences():
    lp = np.where(np.eye(3, dtype=bool)[[0, 1, 1, 2]], 0.0, -np.inf)  # blank a a b, each of probability 1
    assert ctc_beam_search(lp, return_scores=True) == ([1, 2], 0.0)
    assert ctc_beam_search(np.zeros((0, 3)), return_scores=True) == ([], 0.0)
    assert ctc_beam_search(np.zeros((4, 1)), return_scores=True) == ([], 0.0)  # only the blank


# ----- batches

def test_padded_batches_equal_per_sequence_calls_and_padding_is_never_read():
    rng = np.random.default_rng(6)
    B, T, C = 6, 15, 5
    lp = random_log_probs(rng, B, T, C)
    lengths = np.array([15, 0, 7, 1, 15, 10])
    for b, length in enumerate(lengths):
        lp[b, length:] = np.nan  # garbage: any read of it raises
    batch = torch.tensor(lp, dtype=torch.float64)
    assert ctc_greedy(batch, torch.tensor(lengths)) == [ctc_greedy(lp[b, :n]) for b, n in enumerate(lengths)]
    assert ctc_beam_search(batch, lengths.tolist(), return_scores=True) == [
        ctc_beam_search(lp[b, :n], return_scores=True) for b, n in enumerate(lengths)]
    full = random_log_probs(rng, 3, 4, C)
    assert ctc_greedy(full) == [ctc_greedy(x) for x in full]  # no lengths: every frame is real
    assert ctc_beam_search(full, blank=2) == [ctc_beam_search(x, blank=2) for x in full]


# ----- streaming

def test_stream_over_any_split_equals_greedy_over_the_whole():
    rng = np.random.default_rng(7)
    stream = GreedyStream()
    for case in range(60):
        T, C = int(rng.integers(0, 40)), int(rng.integers(2, 5))
        path = rng.choice(C, size=T, p=[0.4] + [0.6 / (C - 1)] * (C - 1))
        path = np.repeat(path, rng.integers(1, 4, size=T))  # runs, so repeats straddle the cuts
        lp = frames_of(path, C) + 0.05 * rng.standard_normal((len(path), C))
        cuts = np.sort(rng.integers(0, len(path) + 1, size=int(rng.integers(0, 8))))  # repeated cuts: empty pushes
        pieces = np.split(lp, cuts)
        labels = []
        for piece in pieces:
            labels += stream.push(torch.tensor(piece) if case % 2 else piece)
        assert labels == ctc_greedy(lp), case
        stream.reset()


def test_stream_labels_come_on_their_first_frame_and_reset_forgets():
    stream = GreedyStream(blank=0)
    a = frames_of([1], 3)
    assert stream.push(a) == [1]
    assert stream.push(a) == []      # the same label continued: merged across the pushes
    assert stream.push(np.zeros((0, 3))) == []
    assert stream.push(frames_of([0, 1], 3)) == [1]
    assert stream.reset() is stream
    assert stream.push(frames_of([1, 1], 3)) == [1]
    stream.reset()
    assert stream.push(frames_of([1], 3)) == [1]  # without the reset this frame would merge with the last
    assert GreedyStream(blank=1).push(frames_of([1, 0, 1, 2], 3)) == [0, 2]
    assert repr(GreedyStream()) == "GreedyStream()" and repr(GreedyStream(blank=2)) == "GreedyStream(blank=2)"


# ----- warnings and errors

def test_scores_of_unnormalised_frames_warn():
    logits = np.array([[2.0, 1.0], [0.5, 3.0]])
    with pytest.warns(UserWarning, match=lit("got a frame at index (1,) whose logsumexp is 3.079; scores and prune "
                                             "assume log_softmax(logits, dim=-1), so apply it first")):
        ctc_beam_search(logits, return_scores=True)
    with pytest.warns(UserWarning, match=lit("got a frame at index (1, 1)")):
        ctc_beam_search(np.stack([A_OR_BLANK, logits]), prune=-5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctc_beam_search(A_OR_BLANK, return_scores=True)
        ctc_beam_search(logits)  # the labelling alone does not depend on normalisation


def test_errors_name_the_argument_the_rule_and_the_fix():
    lp = frames_of([1, 0, 2], 3)
    for decode in (ctc_greedy, ctc_beam_search):
        with pytest.raises(ValueError, match=lit("log_probs must have 2 dimensions (T, C) for one sequence or 3 "
                                                 "(B, T, C) for a batch, got 1 with shape (3,); put time before "
                                                 "classes, batch first")):
            decode(np.zeros(3))
        with pytest.raises(ValueError, match=lit("lengths is for a batch (B, T, C) only, got lengths with log_probs "
                                                 "of shape (3, 3); leave lengths=None for one sequence")):
            decode(lp, [3])
        with pytest.raises(ValueError, match=lit("lengths must lie in [0, T=3] (real frames of each padded "
                                                 "sequence), got lengths[1]=4; pad log_probs to the longest")):
            decode(lp[None].repeat(2, 0), [3, 4])
        with pytest.raises(ValueError, match=lit("got lengths[0]=-1")):
            decode(lp[None], torch.tensor([-1]))
        with pytest.raises(ValueError, match=lit("lengths must have shape (B,) = (2,), one length per sequence, got "
                                                 "shape (3,)")):
            decode(lp[None].repeat(2, 0), [3, 3, 3])
        with pytest.raises(TypeError, match=lit("lengths must hold integers (frames per sequence), got dtype "
                                                "float64; convert it with lengths.long()")):
            decode(lp[None], [3.0])
        with pytest.raises(ValueError, match=lit("blank must be a class index in [0, C=3), got 3; pass the blank "
                                                 "index the network was trained with")):
            decode(lp, blank=3)
        with pytest.raises(ValueError, match=lit("got -1; pass the blank")):
            decode(lp, blank=-1)
        with pytest.raises(TypeError, match=lit("blank must be an int (the class index of the CTC blank), got "
                                                "float 0.0")):
            decode(lp, blank=0.0)
        bad = lp.copy()
        bad[2, 1] = np.nan
        with pytest.raises(ValueError, match=lit("log_probs must hold log-probabilities (finite or -inf), got nan at "
                                                 "index (2, 1); a NaN usually comes from")):
            decode(bad)
        with pytest.raises(ValueError, match=lit("got nan at index (1, 2, 1)")):
            decode(np.stack([lp, bad]))
        with pytest.raises(ValueError, match=lit("got inf at index (0, 0)")):
            decode(np.full((2, 3), np.inf))
        with pytest.raises(TypeError, match=lit("log_probs must be a float tensor or array of log-probabilities, "
                                                "got str; pass the network's log_softmax output")):
            decode("frames")
    with pytest.raises(ValueError, match=lit("beam_width must be >= 1 (prefixes kept per frame), got 0; try 8, or "
                                             "use ctc_greedy for the best path alone")):
        ctc_beam_search(lp, beam_width=0)
    with pytest.raises(TypeError, match=lit("beam_width must be an int (prefixes kept per frame), got float 8.0")):
        ctc_beam_search(lp, beam_width=8.0)
    with pytest.raises(ValueError, match=lit("prune must be a log-probability threshold such as np.log(1e-3), got "
                                             "nan; pass None to try every class")):
        ctc_beam_search(lp, prune=float("nan"))
    with pytest.raises(TypeError, match=lit("prune must be a float (a log-probability) or None, got str '-3'")):
        ctc_beam_search(lp, prune="-3")
    with pytest.raises(TypeError, match=lit("return_scores must be a bool, got str 'yes'")):
        ctc_beam_search(lp, return_scores="yes")


def test_stream_errors():
    with pytest.raises(ValueError, match=lit("blank must be a class index >= 0, got -1")):
        GreedyStream(blank=-1)
    with pytest.raises(TypeError, match=lit("blank must be an int (the class index of the CTC blank), got str")):
        GreedyStream(blank="0")
    stream = GreedyStream(blank=0)
    with pytest.raises(ValueError, match=lit("log_probs must have 2 dimensions (t, C): the next frames of one "
                                             "sequence, got 3 with shape (1, 2, 3); push one sequence at a time")):
        stream.push(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match=lit("blank must be a class index in [0, C=2), got 4")):
        GreedyStream(blank=4).push(np.zeros((1, 2)))
    stream.push(frames_of([1], 3))
    with pytest.raises(ValueError, match=lit("log_probs must have the C=3 classes of the frames pushed before, got "
                                             "shape (1, 4); call reset() before a sequence from another network")):
        stream.push(frames_of([1], 4))
    stream.reset()
    assert stream.push(frames_of([1], 4)) == [1]
    with pytest.raises(ValueError, match=lit("got nan at index (0, 0)")):
        stream.push(np.full((1, 4), np.nan))
