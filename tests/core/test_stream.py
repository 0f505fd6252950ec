"""rnr.Stream, one observation at a time, against the whole sequence through rnr.RNN."""
import numpy as np
import pytest
import torch
from torch.testing import assert_close

import rnr
from rnr.core import kernels
from rnr.core.rnn import RNN
from rnr.core.stream import Stream

CASES = [("elman", "tanh"), ("elman", "relu"), ("elman", "sigmoid"), ("elman", torch.nn.functional.softsign),
         ("lstm", "tanh"), ("gru", "tanh")]
IDS = ["elman-tanh", "elman-relu", "elman-sigmoid", "elman-softsign", "lstm", "gru"]


def _states(h):
    return list(h) if isinstance(h, tuple) else [h]


def _stream_matches_sequence(cell, phi, with_state, dtype=np.float32):
    torch.manual_seed(0)
    rnn = RNN(3, 6, cell=cell, nonlinearity=phi, num_layers=2)
    x = torch.randn(1, 9, 3)
    h0 = None
    if with_state:
        h0 = tuple(torch.randn(2, 1, 6) for _ in range(2)) if cell == "lstm" else torch.randn(2, 1, 6)
    with torch.no_grad():
        out, h_n = rnn(x, h0)
    stream = Stream(rnn, state=h0, dtype=dtype)
    got = np.stack([stream.step(x[0, t].numpy()) for t in range(9)])
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-6, atol=1e-6)
    assert_close(torch.from_numpy(got).float(), out[0], **tol)
    for s, want in zip(_states(stream.state), _states(h_n)):
        assert_close(s.float(), want, **tol)
    assert stream.steps == 9


@pytest.mark.parametrize("with_state", [False, True], ids=["zeros", "h0"])
@pytest.mark.parametrize("cell,phi", CASES, ids=IDS)
def test_stream_equals_the_whole_sequence(cell, phi, with_state):
    _stream_matches_sequence(cell, phi, with_state)


@pytest.mark.parametrize("cell,phi", CASES, ids=IDS)
def test_stream_without_numba_uses_torch_and_agrees(monkeypatch, cell, phi):
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    _stream_matches_sequence(cell, phi, with_state=True)


def test_stream_in_float64():
    _stream_matches_sequence("lstm", "tanh", with_state=True, dtype=np.float64)


def test_stream_copies_the_weights_and_reset_starts_over():
    torch.manual_seed(0)
    rnn = RNN(2, 4, cell="gru")
    stream = Stream(rnn)
    x = np.float32([0.5, -1.0])
    first = stream.step(x)
    with torch.no_grad():
        rnn.weight_hh_l0.add_(1.0)  # training on after the stream was made does not reach it
    stream.reset()
    assert stream.steps == 0
    np.testing.assert_array_equal(stream.step(x), first)
    assert not np.array_equal(stream.step(x), first)  # the state was carried


def test_stream_is_exported():
    assert rnr.Stream is Stream


@pytest.mark.parametrize("make,match", [
    (lambda: Stream(RNN(2, 3, bidirectional=True)), r"rnn is bidirectional, which cannot stream"),
    (lambda: Stream(torch.nn.RNN(2, 3)), r"rnn must be an rnr.RNN, got RNN"),
    (lambda: Stream(RNN(2, 3)).step(np.zeros(3)), r"x must be one observation of shape \(2,\), got shape \(3,\)"),
    (lambda: Stream(RNN(2, 3), state=torch.zeros(1, 2, 3)), r"state must be a tensor of shape \(1, 1, 3\)"),
    (lambda: Stream(RNN(2, 3, cell="lstm"), state=torch.zeros(1, 1, 3)), r"state must be an \(h, c\) pair"),
])
def test_stream_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
