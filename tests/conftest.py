"""Shared fixtures and helpers: seeding, torch.nn peers that hold rnr's weights, ragged batches with garbage padding,
the relative error used against torch.nn, the topologies' conformance specs, and small generated forecasting panels.

Relative error, as the foundation issue states it (<= 1e-5 against torch.nn in float32), is measured per tensor in
the max norm: ``max|actual - expected| / max|expected|``. A pure elementwise ratio would divide by entries that are
zero or nearly so (padded outputs, gradients of dead relu units) and measure rounding noise (it reaches ~1e-3 on
entries near 1e-6 here); the max-norm ratio is what float32 rounding (eps ~ 1.2e-7, summed over a few steps)
bounds. Each tensor must also pass ``torch.testing.assert_close(rtol=1e-5, atol=1e-6)`` elementwise.
"""
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from rnr.core.rnn import RNN
from rnr.data.sequences import Batch
from rnr.nn.topologies import EncoderDecoder, ManyToManySync, ManyToOne, OneToMany, OneToOne

TORCH_RNN = {"elman": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

# (cell, nonlinearity, impl) that torch.nn has a peer for; a new implementation adds a line here
PEER_CASES = [
    ("elman", "tanh", "bptt"),
    ("elman", "tanh", "loop"),
    ("elman", "tanh", "fused"),
    ("elman", "relu", "bptt"),
    ("elman", "relu", "loop"),
    ("elman", "relu", "fused"),
    ("elman", "tanh", "compiled"),
    ("elman", "relu", "compiled"),
    ("lstm", "tanh", "loop"),
    ("lstm", "tanh", "fused"),
    ("gru", "tanh", "loop"),
    ("gru", "tanh", "fused"),
    ("lstm", "tanh", "compiled"),
    ("gru", "tanh", "compiled"),
]
PEER_IDS = [f"{c}-{p}-{i}" if c == "elman" else f"{c}-{i}" for c, p, i in PEER_CASES]


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: the suite's small models gain nothing from two (measured on an idle 2-core machine), and two
    slow to a crawl (OpenMP workers waiting on each other) whenever anything else keeps the cores busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def seed():
    """Every test starts from the same global RNG state; tests that need another seed set it themselves."""
    torch.manual_seed(0)


def torch_peer(cell: str, input_size: int, hidden_size: int, nonlinearity: str = "tanh", **kwargs) -> nn.Module:
    """The torch.nn.RNN/LSTM/GRU (batch_first=True) that rnr.RNN(cell=...) mirrors."""
    if cell == "elman":
        kwargs["nonlinearity"] = nonlinearity
    return TORCH_RNN[cell](input_size, hidden_size, batch_first=True, **kwargs)


@pytest.fixture
def torch_pair():
    """Factory: ``torch_pair(cell, ...) -> (ours, theirs)``, ours loaded from theirs' state dict."""

    def make(cell, nonlinearity="tanh", impl="auto", input_size=4, hidden_size=6, num_layers=1,
             bidirectional=False, bias=True, dtype=torch.float32):
        theirs = torch_peer(cell, input_size, hidden_size, nonlinearity, num_layers=num_layers,
                            bidirectional=bidirectional, bias=bias).to(dtype)
        ours = RNN(input_size, hidden_size, cell=cell, nonlinearity=nonlinearity, num_layers=num_layers,
                   bidirectional=bidirectional, bias=bias, impl=impl).to(dtype)
        ours.load_state_dict(theirs.state_dict())
        return ours, theirs

    return make


def garbage_padded(x: torch.Tensor, lengths: torch.Tensor, scale: float = 100.0) -> torch.Tensor:
    """A copy of x (B, T, ...) with every step at or past lengths[b] replaced by large random values."""
    pad = torch.arange(x.shape[1])[None, :] >= lengths[:, None]  # (B, T) True on padding
    noise = scale * torch.randn_like(x)
    return torch.where(pad.view(*pad.shape, *([1] * (x.dim() - 2))), noise, x)


@pytest.fixture
def fill_padding():
    return garbage_padded


def max_rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max|actual - expected| / max|expected| (the max-norm relative error of the module docstring)."""
    scale = expected.detach().abs().max().item()
    diff = (actual.detach() - expected.detach()).abs().max().item()
    return diff / scale if scale > 0 else diff


@pytest.fixture
def assert_rel_close():
    """Factory: ``check(actual, expected, rtol=1e-5, name='')``: max-norm relative error <= rtol and elementwise
    assert_close(rtol, atol=rtol / 10); fails with the name and the measured error, returns the error."""

    def check(actual, expected, rtol=1e-5, name=""):
        assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
        err = max_rel_err(actual, expected)
        assert err <= rtol, f"{name}: relative error {err:.3e} > {rtol:.0e}"
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol / 10, msg=lambda m: f"{name}: {m}")
        return err

    return check


# the topologies' conformance specs (tests/nn) -----------------------------------------------------------------
I, O, H = 3, 4, 8            # input features, outputs (values or classes), hidden units
LX = torch.tensor([5, 2, 4])  # ragged input lengths, unsorted on purpose
LY = torch.tensor([3, 4, 1])  # ragged target lengths of the decoders
CELLS = ["elman", "lstm", "gru", "mingru", "minlstm"]
TASKS = ["regression", "classification"]


@dataclass

class Spec:
    cls: type
    x: str  # "vector": (B, I) | "sequence": (B, T, I) with lengths LX
    y: str  # "one": (B, O) or (B,) | "sequence": (B, T_out, O) or (B, T_out) with lengths LY | "synced": like x

    def __str__(self):
        return self.cls.__name__


SPECS = [
    Spec(OneToOne, "vector", "one"),
    Spec(OneToMany, "vector", "sequence"),
    Spec(ManyToOne, "sequence", "one"),
    Spec(EncoderDecoder, "sequence", "sequence"),
    Spec(ManyToManySync, "sequence", "synced"),
]
SEQUENCE_SPECS = [s for s in SPECS if s.x == "sequence"]
VECTOR_SPECS = [s for s in SPECS if s.x == "vector"]


def lit(text: str) -> str:
    """A message fragment matched literally (pytest.raises(match=...) takes a regular expression)."""
    return re.escape(text)


# ---------------------------------------------------------------- batches, outputs and each example alone


def make_batch(spec: Spec, task: str, vocab_size: int | None = None, LX=LX, LY=LY) -> Batch:
    """A ragged batch whose padding (inputs and targets) holds large garbage, never zeros."""
    B, T, T_out = len(LX), int(LX.max()), int(LY.max())
    classify = task == "classification"
    if spec.x == "vector":
        x, x_len = torch.randn(B, I), None
    elif vocab_size:
        x, x_len = torch.randint(0, vocab_size, (B, T)), LX  # padding is random tokens
    else:
        x, x_len = garbage_padded(torch.randn(B, T, I), LX), LX

    def targets(steps, lengths):
        if classify:  # padded ids are valid ids, but random: the decoders read them past each end when forcing
            return torch.randint(0, O, (B, steps))
        return garbage_padded(torch.randn(B, steps, O), lengths)

    if spec.y == "one":
        y, y_len = (torch.randint(0, O, (B,)) if classify else torch.randn(B, O)), None
    elif spec.y == "sequence":
        y, y_len = targets(T_out, LY), LY
    else:
        y, y_len = targets(T, LX), LX
    return Batch(x, y, x_len, y_len)


def outputs(model, spec: Spec, batch: Batch):
    """The model's outputs for a batch through its public forward (decoders score the batch's targets)."""
    args = (batch.x,) if spec.x == "vector" else (batch.x, batch.x_lengths)
    return model(*args, target=batch.y) if spec.y == "sequence" else model(*args)


def real_steps(spec: Spec, batch: Batch, i: int) -> int | None:
    """How many output steps of example i are real (None: one output, no time axis)."""
    if spec.y == "one":
        return None
    lengths = batch.y_lengths if spec.y == "sequence" else batch.x_lengths
    return int(lengths[i]) if lengths is not None else batch.y.shape[1]


def alone(spec: Spec, batch: Batch, i: int) -> Batch:
    """Example i on its own, cut to its real length: no padding, no lengths."""
    x = batch.x[i : i + 1]
    if spec.x == "sequence" and batch.x_lengths is not None:
        x = x[:, : int(batch.x_lengths[i])]
    n = real_steps(spec, batch, i)
    y = batch.y[i : i + 1] if n is None else batch.y[i : i + 1, :n]
    return Batch(x, y)


def check_each_alone(model, spec: Spec, batch: Batch) -> None:
    """Padding never changes results: every example's outputs and loss equal running it alone."""
    out = outputs(model, spec, batch)
    weights, losses = [], []
    for i in range(len(batch)):
        one = alone(spec, batch, i)
        n = real_steps(spec, batch, i)
        assert_close(out[i : i + 1] if n is None else out[i : i + 1, :n], outputs(model, spec, one),
                     msg=lambda m: f"example {i}: {m}")
        if spec.y == "synced":
            assert not out[i, n:].any(), f"outputs past the end of example {i} must be zero"
        weights.append(1 if n is None else n)  # the loss is a mean over real targets
        losses.append(model.loss(one))
    w = torch.tensor(weights, dtype=torch.float32)
    assert_close(model.loss(batch), (torch.stack(losses) * w).sum() / w.sum())


# small forecasting panels (tests/forecast, tests/training) -------------------------------------------------------
FAST = dict(hidden_size=12, head_size=16, epochs=2, batch_size=8, chunk=64)


def seasonal_panel(n=6, length=120, season=7, seed=0, ragged=True, ints=False):
    """Series of different lengths (and scales) with a weekly pattern; ids 's0', 's1', ..."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        T = length - (7 * i if ragged else 0)
        t = np.arange(T)
        level = 10 * (i + 1)
        y = level + level * 0.3 * np.sin(2 * np.pi * t / season) + rng.normal(0, 0.5, T)
        ds = t + 1000 if ints else pd.date_range("2024-01-01", periods=T, freq="D")
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)
