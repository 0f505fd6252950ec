"""SequenceData: tensors, ragged lists and numpy arrays in; padded batches with lengths out; reproducible order."""
import re

import numpy as np
import pytest
import torch

from rnr.data.sequences import Batch, SequenceData, as_data, pad


def _ragged(n=7, features=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 6, (n,), generator=g)
    return [torch.randn(int(t), features, generator=g) for t in lengths], lengths


def test_pad_stacks_with_value_and_lengths():
    seqs = [torch.ones(3, 2), 2 * torch.ones(1, 2), 3 * torch.ones(2, 2)]
    x, lengths = pad(seqs, value=-7.0)
    assert x.shape == (3, 3, 2)
    assert lengths.tolist() == [3, 1, 2] and lengths.dtype == torch.int64
    for i, s in enumerate(seqs):
        assert torch.equal(x[i, : len(s)], s)
        assert (x[i, len(s):] == -7.0).all()


def test_pad_gives_no_lengths_when_all_equal():
    seqs = [torch.randn(4, 2) for _ in range(3)]
    x, lengths = pad(seqs)
    assert lengths is None
    assert torch.equal(x, torch.stack(seqs))


def test_pad_keeps_integer_tokens():
    x, lengths = pad([torch.tensor([5, 6, 7]), torch.tensor([8])])
    assert x.dtype == torch.int64
    assert x.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]


def test_tensor_inputs_batch_without_lengths():
    X, Y = torch.randn(5, 4, 3), torch.randn(5, 2)
    data = SequenceData(X, Y)
    assert len(data) == 5 and data.num_batches(2) == 3
    batches = list(data.batches(2))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert torch.equal(torch.cat([b.x for b in batches]), X)
    assert torch.equal(torch.cat([b.y for b in batches]), Y)
    assert all(b.x_lengths is None and b.y_lengths is None for b in batches)


def test_ragged_list_pads_each_batch_to_its_own_longest():
    X, lengths = _ragged()
    Y = torch.arange(len(X))
    data = SequenceData(X, Y)
    for start, b in zip(range(0, len(X), 3), data.batches(3)):
        want = lengths[start : start + 3]
        assert b.x.shape == (len(want), int(want.max()), 2)
        if bool((want == want.max()).all()):
            assert b.x_lengths is None
        else:
            assert b.x_lengths.tolist() == want.tolist()
        for i, n in enumerate(want.tolist()):
            assert torch.equal(b.x[i, :n], X[start + i])
            assert (b.x[i, n:] == 0).all()
        assert b.y.tolist() == list(range(start, start + len(want)))


def test_ragged_targets_get_their_own_lengths():
    X = [torch.randn(3, 1), torch.randn(2, 1)]
    Y = [torch.randn(1, 4), torch.randn(2, 4)]
    b = SequenceData(X, Y).batch([0, 1])
    assert b.x_lengths.tolist() == [3, 2] and b.y_lengths.tolist() == [1, 2]
    assert b.y.shape == (2, 2, 4)


def test_numpy_arrays_become_float32_tensors():
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((4, 2)), rng.standard_normal((2, 2))]  # float64, numpy's default
    Y = np.array([1.5, -0.5])
    b = SequenceData(X, Y).batch([0, 1])
    assert b.x.dtype == torch.float32 and b.y.dtype == torch.float32
    assert b.x_lengths.tolist() == [4, 2]
    np.testing.assert_allclose(b.x[1, :2].numpy(), X[1], rtol=1e-6)
    whole = SequenceData(rng.standard_normal((3, 5, 2)), np.arange(3)).batch([2, 0])
    assert whole.x.shape == (2, 5, 2) and whole.y.tolist() == [2, 0] and whole.y.dtype == torch.int64


def test_scalar_targets_in_a_list_are_stacked():
    b = SequenceData([torch.randn(2, 1), torch.randn(3, 1)], [0, 1]).batch([1, 0])
    assert b.y.tolist() == [1, 0] and b.y_lengths is None


def test_shuffle_with_a_seeded_generator_is_reproducible():
    X, _ = _ragged(n=20)
    data = SequenceData(X, torch.arange(20))
    order = lambda seed: [b.y.tolist() for b in data.batches(6, shuffle=True,  # noqa: E731
                                                               generator=torch.Generator().manual_seed(seed))]
    first, again, other = order(1), order(1), order(2)
    assert first == again
    assert first != other
    flat = [i for b in first for i in b]
    assert sorted(flat) == list(range(20)) and flat != list(range(20))  # a permutation, not the identity
    assert [b.y.tolist() for b in data.batches(6)] == [list(range(s, min(s + 6, 20))) for s in range(0, 20, 6)]


def test_skip_drops_the_first_batches_of_the_same_order():
    X, _ = _ragged(n=11)
    data = SequenceData(X, torch.arange(11))
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    full = [b.y.tolist() for b in data.batches(3, shuffle=True, generator=gen())]
    for skip in range(5):
        resumed = [b.y.tolist() for b in data.batches(3, shuffle=True, generator=gen(), skip=skip)]
        assert resumed == full[skip:]
    assert [b.y.tolist() for b in data.batches(3, skip=2)] == [[6, 7, 8], [9, 10]]


def test_batch_to_and_len():
    b = SequenceData([torch.randn(2, 1), torch.randn(1, 1)], [0, 1]).batch([0, 1]).to("cpu")
    assert isinstance(b, Batch) and len(b) == 2 and b.x_lengths.tolist() == [2, 1]


def test_as_data_takes_a_pair_or_sequence_data():
    data = SequenceData(torch.randn(2, 3, 1), torch.randn(2))
    assert as_data(data) is data
    assert len(as_data((torch.randn(4, 3, 1), torch.randn(4)))) == 4
    with pytest.raises(TypeError, match=re.escape("train must be a SequenceData or an (X, Y) pair, got int")):
        as_data(5)


BAD = {  # id: (X, Y, exception, message)
    "empty_list": ([], [1], ValueError, "X must hold at least one example, got an empty list"),
    "empty_targets": ([torch.randn(2, 1)], (), ValueError, "Y must hold at least one example, got an empty tuple"),
    "empty_tensor": (torch.empty(0, 3, 2), torch.empty(0), ValueError,
                     "X must hold at least one example, got shape (0, 3, 2)"),
    "empty_sequence": ([torch.randn(3, 2), torch.randn(0, 2)], [1, 2], ValueError,
                       "X[1] is an empty sequence (length 0)"),
    "count_mismatch": ([torch.randn(3, 2)] * 3, [1, 2], ValueError,
                       "X and Y must hold the same number of examples, got 3 and 2"),
    "count_mismatch_arrays": (np.zeros((3, 4, 2)), np.zeros(2), ValueError,
                              "X and Y must hold the same number of examples, got 3 and 2"),
    "strings": (["ab", "cd"], [1, 2], TypeError, "X[0] must be an array or tensor of numbers, got str"),
}


@pytest.mark.parametrize("X,Y,exc,message", BAD.values(), ids=BAD.keys())
def test_bad_data_is_rejected_with_a_clear_message(X, Y, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        SequenceData(X, Y)


def test_bucketed_batches_cover_every_example_once_with_similar_lengths():
    def steps(b):  # lengths are None when a batch's sequences are all as long
        return b.x_lengths.tolist() if b.x_lengths is not None else [b.x.shape[1]] * len(b)

    gen_lengths = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (1000,), generator=gen_lengths).tolist()
    data = SequenceData([torch.zeros(n, 1) for n in lengths], torch.zeros(1000))
    batches = list(data.batches(8, shuffle=True, generator=torch.Generator().manual_seed(3), bucket=True))
    assert len(batches) == data.num_batches(8) == 125
    assert sum(len(b) for b in batches) == 1000
    assert sorted(n for b in batches for n in steps(b)) == sorted(lengths)
    spread = sum(max(steps(b)) - min(steps(b)) for b in batches) / len(batches)
    plain = list(data.batches(8, shuffle=True, generator=torch.Generator().manual_seed(3)))
    plain_spread = sum(max(steps(b)) - min(steps(b)) for b in plain) / len(plain)
    assert spread < 3 < 30 < plain_spread  # sorted pools of 400 examples: neighbours differ by a step or so
    again = list(data.batches(8, shuffle=True, generator=torch.Generator().manual_seed(3), bucket=True, skip=5))
    assert [steps(b) for b in again] == [steps(b) for b in batches[5:]]
