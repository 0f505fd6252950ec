"""Properties that hold for every generated input (hypothesis): a ragged batch equals each sequence run alone, save
then load predicts identically, scaling then unscaling is the identity, and a resumed run equals one never stopped.

Every test is derandomized and keeps no example database, so a clean clone runs the same examples each time (a
failure reproduces as is); the example counts keep the file under 20 s on 2 cores once numba's cache of the compiled
kernels is warm. Tensors come from a seed that hypothesis draws, so shrinking acts on shapes and settings, not on
single values.
"""
import math
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rnr
from rnr.core import kernels
from rnr.data import tasks
from rnr.forecast.forecaster import RNNForecaster
from rnr.forecast.panel import Panel
from rnr.forecast.scaling import KINDS, Scaler
from rnr.training.core import TrainingCore
from rnr.training.logs import graceful_stop

PROPERTY = settings(deadline=None, derandomize=True, database=None)

CELLS = ("elman", "lstm", "gru")
PHIS = ("tanh", "relu", "sigmoid", "identity")
COMPILED = ("compiled",) if kernels.AVAILABLE else ()


def valid_phis(cell: str, impl: str) -> tuple:
    """Elman nonlinearities an implementation accepts (LSTM and GRU take none)."""
    if cell != "elman":
        return ("tanh",)
    return ("tanh", "relu") if impl == "fused" else PHIS


def valid_impls(cell: str) -> tuple:
    return ("loop", "fused", *COMPILED, "auto") + (("bptt",) if cell == "elman" else ())


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ragged(lengths: list[int], size: int, seed: int, dtype=torch.float64, vocab: int | None = None):
    """A padded batch (B, T, size) (token ids (B, T) with ``vocab``) whose padding is large garbage, and its lengths."""
    g, B, T = generator(seed), len(lengths), max(lengths)
    lengths = torch.tensor(lengths)
    pad = torch.arange(T)[None, :] >= lengths[:, None]  # (B, T): True past each sequence's end
    if vocab is not None:
        return torch.randint(0, vocab, (B, T), generator=g), lengths
    x = torch.randn(B, T, size, generator=g, dtype=dtype)
    return torch.where(pad[..., None], 100 * torch.randn(B, T, size, generator=g, dtype=dtype), x), lengths


def close(actual, expected, what: str) -> None:
    """float64 agreement up to the reassociation of sums (batched products may add in another order)."""
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12, msg=lambda m: f"{what}: {m}")


def states(h) -> tuple:
    return h if isinstance(h, tuple) else (h,)


# ---------------------------------------------------------------- ragged batches equal per-sequence runs


RNN_CASES = [(cell, impl) for cell in CELLS for impl in valid_impls(cell)]
RNN_CASES += [(cell, impl) for cell in ("mingru", "minlstm") for impl in ("loop", "scan", "auto")]  # no weight_hh


@st.composite
def rnn_configs(draw, cell: str, impl: str):
    return dict(cell=cell, impl=impl, nonlinearity=draw(st.sampled_from(valid_phis(cell, impl))),
                input_size=draw(st.integers(1, 4)), hidden_size=draw(st.integers(1, 5)),
                num_layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()), bias=draw(st.booleans()))


LENGTHS = st.lists(st.integers(1, 12), min_size=1, max_size=6)


@pytest.mark.parametrize("cell, impl", RNN_CASES)
@settings(PROPERTY, max_examples=10)
@given(data=st.data(), lengths=LENGTHS, give_h0=st.booleans(), seed=st.integers(0, 2**16))
def test_a_ragged_batch_equals_each_sequence_run_alone(cell, impl, data, lengths, give_h0, seed):
    """Outputs, final states and gradients of a padded batch equal those of each sequence run by itself; outputs past
    a sequence's end are zero and its padding (garbage here) has no gradient."""
    config = data.draw(rnn_configs(cell, impl), label="config")
    torch.manual_seed(seed)
    rnn = rnr.RNN(**config).double()
    x, L = ragged(lengths, config["input_size"], seed)
    x.requires_grad_(True)
    B, D = len(lengths), rnn.num_directions
    n_states = config["num_layers"] * D
    h0 = None
    if give_h0:
        h0 = tuple(torch.randn(n_states, B, config["hidden_size"], generator=generator(seed + i), dtype=torch.float64)
                   for i in range(2 if config["cell"] == "lstm" else 1))
        h0 = h0 if config["cell"] == "lstm" else h0[0]
    # a loss that weighs every output and state differently, so each gradient is checked
    w_out = torch.randn(B, max(lengths), D * config["hidden_size"], generator=generator(seed + 7), dtype=torch.float64)
    w_h = torch.randn(n_states, B, config["hidden_size"], generator=generator(seed + 8), dtype=torch.float64)

    out, h_n = rnn(x, h0, lengths=L)  # (B, T, D*H), (L*D, B, H)
    assert out.shape == (B, max(lengths), D * config["hidden_size"])
    loss = (out * w_out).sum() + sum((h * w_h).sum() for h in states(h_n))
    grads = torch.autograd.grad(loss, [x, *rnn.parameters()])
    grad_x, grad_w = grads[0], grads[1:]

    alone_w = [torch.zeros_like(p) for p in rnn.parameters()]
    for b, n in enumerate(lengths):
        xb = x.detach()[b : b + 1, :n].clone().requires_grad_(True)
        hb = None if h0 is None else tuple(h[:, b : b + 1] for h in states(h0))
        hb = hb if hb is None or config["cell"] == "lstm" else hb[0]
        o, h = rnn(xb, hb)
        close(out[b, :n], o[0], f"outputs of sequence {b}")
        assert torch.equal(out[b, n:], torch.zeros_like(out[b, n:])), f"sequence {b}: outputs past its end"
        for got, want in zip(states(h_n), states(h)):
            close(got[:, b], want[:, 0], f"final state of sequence {b}")
        loss_b = (o * w_out[b : b + 1, :n]).sum() + sum((s * w_h[:, b : b + 1]).sum() for s in states(h))
        g = torch.autograd.grad(loss_b, [xb, *rnn.parameters()])
        close(grad_x[b, :n], g[0][0], f"input gradient of sequence {b}")
        assert torch.equal(grad_x[b, n:], torch.zeros_like(grad_x[b, n:])), f"sequence {b}: gradient on padding"
        alone_w = [a + gi for a, gi in zip(alone_w, g[1:])]
    for (name, _), got, want in zip(rnn.named_parameters(), grad_w, alone_w):
        close(got, want, f"gradient of {name}")


@pytest.mark.parametrize("cell", CELLS)
@settings(PROPERTY, max_examples=8)
@given(st.integers(1, 2), st.booleans(), st.sampled_from(["last", "mean", "max"]), st.sampled_from([None, 5]),
       LENGTHS, st.integers(0, 2**16))
def test_many_to_one_predicts_each_sequence_of_a_ragged_batch_as_alone(cell, layers, bidirectional, pooling, vocab,
                                                                     lengths, seed):
    torch.manual_seed(seed)
    model = rnr.ManyToOne(3, 2, hidden_size=4, cell=cell, num_layers=layers, bidirectional=bidirectional,
                          pooling=pooling, vocab_size=vocab).double().eval()
    x, L = ragged(lengths, 3, seed, vocab=vocab)
    with torch.no_grad():
        batch = model(x, L)  # (B, O)
        for b, n in enumerate(lengths):
            close(batch[b], model(x[b : b + 1, :n])[0], f"prediction for sequence {b} (length {n})")


# ---------------------------------------------------------------- save then load predicts identically


def round_trip(model):
    with tempfile.TemporaryDirectory() as folder:
        return rnr.load(rnr.save(model, Path(folder) / "model.safetensors"))


@st.composite
def module_configs(draw, kind: str):
    """Constructor arguments of ``kind`` (non-default ones often, so that the saved config matters), and the vocab."""
    cell = draw(st.sampled_from(CELLS))
    shared = dict(cell=cell, num_layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()),
                  hidden_size=draw(st.integers(1, 5)), dropout=draw(st.sampled_from([0.0, 0.25])))
    if kind == "RNN":
        impl = draw(st.sampled_from(valid_impls(cell)))
        return dict(input_size=3, impl=impl, nonlinearity=draw(st.sampled_from(valid_phis(cell, impl))),
                    bias=draw(st.booleans()), **shared), None
    vocab = draw(st.sampled_from([None, 6]))
    extra = dict(pooling=draw(st.sampled_from(["last", "mean", "max"]))) if kind == "ManyToOne" else {}
    if cell == "elman":
        extra["nonlinearity"] = draw(st.sampled_from(("tanh", "relu")))  # topologies pick impl="auto"
    return dict(input_size=3, output_size=draw(st.integers(1, 3)), vocab_size=vocab,
                task=draw(st.sampled_from(["regression", "classification"])), **extra, **shared), vocab


@pytest.mark.parametrize("kind", ["RNN", "ManyToOne", "ManyToManySync"])
@settings(PROPERTY, max_examples=10)
@given(data=st.data(), lengths=LENGTHS, seed=st.integers(0, 2**16))
def test_a_saved_then_loaded_module_predicts_identically(kind, data, lengths, seed):
    config, vocab = data.draw(module_configs(kind), label="config")
    torch.manual_seed(seed)
    model = getattr(rnr, kind)(**config).eval()
    loaded = round_trip(model)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    x, L = ragged(lengths, 3, seed, dtype=torch.float32, vocab=vocab)
    with torch.no_grad():
        if kind == "RNN":
            (out, h_n), (out2, h_n2) = model(x, lengths=L), loaded(x, lengths=L)
            assert torch.equal(out2, out) and all(map(torch.equal, states(h_n2), states(h_n)))
        else:
            assert torch.equal(loaded(x, L), model(x, L))


@settings(PROPERTY, max_examples=8)
@given(st.sampled_from(CELLS), st.booleans(), st.sampled_from(["last", "mean", "max"]),
       st.sampled_from(["ints", "strings"]), st.booleans(), st.integers(0, 2**16))
def test_a_saved_then_loaded_classifier_predicts_identically(cell, bidirectional, pooling, labels, text, seed):
    rng = np.random.default_rng(seed)
    n = 12
    if text:
        words = ["up", "down", "left", "right", "stop"]
        X = [" ".join(rng.choice(words, rng.integers(1, 6))) for _ in range(n)]
    else:
        X = [rng.normal(size=(int(rng.integers(1, 9)), 2)).astype(np.float32) for _ in range(n)]
    codes = np.arange(n) % 3
    y = codes if labels == "ints" else np.array(["a", "b", "c"])[codes]
    clf = rnr.RNNClassifier(hidden_size=4, embedding_dim=3, cell=cell, bidirectional=bidirectional, pooling=pooling,
                            epochs=1, batch_size=4, random_state=seed).fit(X, y)
    loaded = round_trip(clf)
    assert loaded.get_params() == clf.get_params()
    assert np.array_equal(loaded.classes_, clf.classes_) and loaded.classes_.dtype == clf.classes_.dtype
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert np.array_equal(loaded.predict(X), clf.predict(X))


def small_panel(lengths: list[int], seed: int) -> pd.DataFrame:
    """Daily series of the given lengths with a weekly pattern and levels from 1 to 1000."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate(lengths):
        level = 10.0 ** rng.uniform(0, 3)
        t = np.arange(n)
        y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 7) + 0.05 * rng.normal(size=n))
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": pd.date_range("2024-01-01", periods=n), "y": y}))
    return pd.concat(frames, ignore_index=True)


TINY = dict(hidden_size=4, head_size=4, epochs=1, chunk=16, season=7)


@settings(PROPERTY, max_examples=8)
@given(st.sampled_from(CELLS), st.sampled_from(["direct", "recursive"]), st.sampled_from(KINDS),
       st.sampled_from([(), (0.1, 0.9)]), st.sampled_from([None, "last", "seasonal_naive"]),
       st.lists(st.integers(8, 30), min_size=1, max_size=4), st.integers(0, 2**16))
def test_a_saved_then_loaded_forecaster_predicts_identically(cell, strategy, scaler, quantiles, relative_to, lengths,
                                                             seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short series may have no spread; its scale is 1
        f = RNNForecaster(horizon=3, cell=cell, strategy=strategy, scaler=scaler, quantiles=quantiles,
                          relative_to=relative_to, random_state=seed, **TINY).fit(small_panel(lengths, seed))
    loaded = round_trip(f)
    assert loaded.get_params() == f.get_params()
    h = 5 if strategy == "recursive" else 3
    pd.testing.assert_frame_equal(loaded.predict(h), f.predict(h), check_exact=True)


# ---------------------------------------------------------------- scaling then unscaling is the identity

EPS32 = float(np.finfo(np.float32).eps)


@st.composite
def scaled_panels(draw):
    """Series of 1-12 steps: constant, or a level plus noise, levels and spreads each from 1e-30 to 1e30; some NaN."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate(draw(st.lists(st.integers(1, 12), min_size=1, max_size=6))):
        shape = draw(st.sampled_from(["constant", "noise", "outlier"]))
        level = draw(st.sampled_from([0.0, 1.0, -1.0])) * 10.0 ** draw(st.integers(-30, 30))
        spread = 10.0 ** draw(st.integers(-30, 30))
        y = np.full(n, level)
        if shape != "constant":
            y = y + spread * rng.normal(size=n)
        if shape == "outlier":
            y[rng.integers(n)] = level + spread * 1e6
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": np.arange(n), "y": y.astype(np.float32)}))
    df = pd.concat(frames, ignore_index=True)
    masked = draw(st.booleans())
    if masked:
        df.loc[rng.random(len(df)) < 0.2, "y"] = np.nan
    return Panel.from_frame(df, freq=1, missing="mask" if masked else "error")


@settings(PROPERTY, max_examples=60)
@given(scaled_panels(), st.sampled_from(KINDS))
def test_scaling_then_unscaling_is_the_identity_at_any_magnitude(panel, kind):
    """inverse(transform(y)) == y for every observed value, up to float32 rounding of the scaled value (relative to
    the series' scale) and of the result (relative to y): the scaled values are float32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant series warn
        sc = Scaler(kind).fit(panel)
    assert np.isfinite(sc.loc_).all() and (sc.scale_ > 0).all() and np.isfinite(sc.scale_).all()
    sid = panel.series_index()
    observed = np.ones_like(panel.y, bool) if panel.observed is None else panel.observed
    y = panel.y.astype(np.float64)
    z = sc.transform(panel.y, sid)
    assert z.dtype == np.float32
    assert np.isfinite(z[observed]).all(), f"non-finite scaled values at rows {np.flatnonzero(~np.isfinite(z))}"
    loc, scale = sc.loc_[sid], sc.scale_[sid]  # (N, K)
    for back in (sc.inverse(z, sid), Scaler.from_state(sc.to_state()).inverse(z, sid)):
        err = np.abs(back.astype(np.float64) - y)
        tol = 2 * EPS32 * (np.abs(y) + np.abs(y - loc)) + 1e-44 * scale  # 1e-44: subnormal float32 scaled values
        bad = observed & ~(err <= tol)
        assert not bad.any(), (f"{kind}: rows {np.flatnonzero(bad.any(1))[:5]} round trip to "
                               f"{back[bad][:3]} instead of {y[bad][:3]}")


def test_robust_scaling_of_a_far_outlier_is_refused_by_name_not_turned_into_inf():
    y = np.array([1.0, 1.0, 1.0, 1.0, 1.0001, 1e36], np.float32)  # IQR ~ 7.5e-5: 1e36 is ~1.8e40 scales out
    panel = Panel.from_frame(pd.DataFrame({"unique_id": "a", "ds": np.arange(len(y)), "y": y}), freq=1)
    sc = Scaler("robust").fit(panel)
    with pytest.raises(ValueError, match=r"puts values of series \[0\] .* scales from their centre, beyond float32"):
        sc.transform(panel.y, panel.series_index())


# ---------------------------------------------------------------- resume equals no interruption


def weights(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def stop_at(where: int, total: int) -> int:
    """A batch in 1..total-1 to stop after, spread over the run (hypothesis itself mostly draws small integers)."""
    return 1 + where % (total - 1) if total > 1 else 1


@st.composite
def fit_cases(draw):
    n, batch_size, epochs = draw(st.integers(8, 20)), draw(st.integers(3, 8)), draw(st.integers(1, 3))
    total = epochs * math.ceil(n / batch_size)
    model = dict(cell=draw(st.sampled_from(CELLS)), num_layers=draw(st.integers(1, 2)),
                 bidirectional=draw(st.booleans()), dropout=draw(st.sampled_from([0.0, 0.3])))
    train = dict(epochs=epochs, batch_size=batch_size, seed=draw(st.integers(0, 100)),
                 lr_schedule=draw(st.sampled_from([None, "cosine", "plateau"])), shuffle=draw(st.booleans()),
                 bucket=draw(st.booleans()), patience=draw(st.sampled_from([None, 1])),
                 checkpoint_every=draw(st.sampled_from([None, 1, 2, 3])),
                 optimizer=draw(st.sampled_from(["adam", "sgd"])))
    return n, model, train, stop_at(draw(st.integers(0, 2**16)), total)


@settings(PROPERTY, max_examples=20)
@given(fit_cases(), st.integers(0, 2**16))
def test_fit_resumed_after_max_steps_equals_the_uninterrupted_run(case, seed):
    """Stopped by max_steps after k batches, then resumed (from a model with other initial weights whenever there is
    a checkpoint to take them from), training ends bitwise where a run never stopped ends, with the same history."""
    n, model_args, settings_, k = case
    X, Y = tasks.ragged_sums(n, seed=seed % 1000)
    val = tasks.ragged_sums(6, seed=seed % 1000 + 1)
    common = dict(progress=False, **settings_)

    def model(init: int):
        torch.manual_seed(init)
        return rnr.ManyToOne(1, 1, hidden_size=3, **model_args)

    reference = model(seed)
    want = rnr.fit(reference, (X, Y), val=val, **{**common, "checkpoint_every": None})
    with tempfile.TemporaryDirectory() as folder:
        stopped = model(seed)
        rnr.fit(stopped, (X, Y), val=val, checkpoint_dir=folder, max_steps=k, **common)
        has_checkpoint = bool(rnr.training.checkpoint.files(folder))
        resumed = model(seed + 1) if has_checkpoint else model(seed)
        got = rnr.fit(resumed, (X, Y), val=val, checkpoint_dir=folder, resume=True, **common)
    assert same(weights(resumed), weights(reference)), f"stopped after {k} steps, checkpoint: {has_checkpoint}"
    assert [{**r, "seconds": 0} for r in got.rows] == [{**r, "seconds": 0} for r in want.rows]
    assert got.stopped_early == want.stopped_early


def interrupt_after(mp: pytest.MonkeyPatch, calls: int) -> None:
    """Make ``TrainingCore._batch`` raise SIGINT during its ``calls``-th call, as a user's Ctrl-C would."""
    original, count = TrainingCore._batch, [0]

    def wrapped(self, *args, **kwargs):
        count[0] += 1
        if count[0] == calls:
            signal.raise_signal(signal.SIGINT)
        return original(self, *args, **kwargs)

    mp.setattr(TrainingCore, "_batch", wrapped)


@settings(PROPERTY, max_examples=10)
@given(st.sampled_from(CELLS), st.lists(st.integers(8, 40), min_size=3, max_size=6), st.integers(1, 3),
       st.integers(1, 2), st.sampled_from([None, 1, 2]), st.data())
def test_forecaster_resumed_after_a_ctrl_c_equals_the_uninterrupted_run(cell, lengths, batch_size, epochs,
                                                                        checkpoint_every, data):
    df = small_panel(lengths, len(lengths))
    options = dict(horizon=3, cell=cell, batch_size=batch_size, **{**TINY, "epochs": epochs})
    reference = RNNForecaster(**options).fit(df)
    total = epochs * math.ceil(len(lengths) / batch_size)
    k = stop_at(data.draw(st.integers(0, 2**16)), total)
    with tempfile.TemporaryDirectory() as folder:
        ckpt = dict(checkpoint_dir=folder, checkpoint_every=checkpoint_every)
        with pytest.MonkeyPatch.context() as mp:
            interrupt_after(mp, k)
            with graceful_stop():
                stopped = RNNForecaster(**options, **ckpt).fit(df)
        assert stopped.interrupted_  # even in the last batch: that epoch never ended
        resumed = RNNForecaster(**options, **ckpt, resume=True).fit(df)
    assert not resumed.interrupted_
    assert same(weights(resumed.net_), weights(reference.net_)), f"interrupted in batch {k} of {total}"
    assert [{**r, "seconds": 0} for r in resumed.history_] == [{**r, "seconds": 0} for r in reference.history_]
    pd.testing.assert_frame_equal(resumed.predict(), reference.predict(), check_exact=True)
