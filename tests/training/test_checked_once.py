"""Values checked once per fit: ``rnr.core.checks.trusted()`` skips the value scans and nothing else, the training
core enters it only once a task's data has been checked in full, and every estimator trains to the same weights,
bitwise, as on the plain path that checks every value on every call (``checks.ALWAYS_CHECK``)."""
import numpy as np
import pandas as pd
import pytest
import torch

import rnr
from rnr.core import checks
from rnr.core.checks import check_finite, check_sequence, check_tokens, checking_values, trusted
from rnr.data import tasks
from rnr.nn.losses import masked_loss


def test_trusted_skips_the_value_scans_but_not_types_or_shapes():
    nan = torch.tensor([[[float("nan")]]])
    with pytest.raises(ValueError, match="x must be finite"):
        check_finite(nan, "x")
    with pytest.raises(ValueError, match=r"token ids in \[0, 3\)"):
        check_tokens(torch.tensor([[5]]), 3)
    with trusted():
        assert not checking_values()
        check_finite(nan, "x")
        check_tokens(torch.tensor([[5]]), 3)
        masked_loss("cross_entropy", torch.zeros(1, 9), torch.tensor([3]))
        with pytest.raises(ValueError, match="3 dimensions"):
            check_sequence(torch.zeros(2, 3), 3)
        with pytest.raises(TypeError, match="integer token ids"):
            check_tokens(torch.zeros(1, 2), 3)
    assert checking_values()  # left as it was, also after an error inside
    with pytest.raises(ValueError, match="class ids in"):
        masked_loss("cross_entropy", torch.zeros(1, 2), torch.tensor([3]))


def test_always_check_makes_trusted_check_everything(monkeypatch):
    monkeypatch.setattr(checks, "ALWAYS_CHECK", True)
    with trusted(), pytest.raises(ValueError, match="x must be finite"):
        check_finite(torch.tensor([float("nan")]), "x")


class Recording(rnr.ManyToOne):
    """A ManyToOne that notes, for each loss the core asks for, whether the value checks were on."""

    def loss(self, batch):
        self.seen.append(checking_values())
        return super().loss(batch)


def test_fit_checks_every_batch_of_the_first_epoch_then_trusts_it():
    X, Y = tasks.ragged_sums(16, max_len=6)
    model = Recording(1, 1, hidden_size=4)
    model.seen = []
    rnr.fit(model, (X, Y), epochs=3, batch_size=4, progress=False)
    assert model.seen == [True] * 4 + [False] * 8


def test_a_bad_value_in_the_last_batch_is_still_caught_in_the_first_epoch():
    X = torch.randn(16, 5, 1)
    X[15, 2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"x must be finite, got NaN or inf \(first at index \(3, 2, 0\)\)"):
        rnr.fit(rnr.ManyToOne(1, 1, hidden_size=4), (X, torch.randn(16, 1)), epochs=2, batch_size=4,
                shuffle=False, progress=False)
    y = torch.zeros(16, dtype=torch.int64)
    y[15] = 7
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\)"):
        rnr.fit(rnr.ManyToOne(1, 2, hidden_size=4, task="classification"), (torch.randn(16, 5, 1), y), epochs=2,
                batch_size=4, shuffle=False, progress=False)


def texts(n, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(12)]
    src = [" ".join(rng.choice(words, rng.integers(2, 6))) for _ in range(n)]
    return src, [" ".join(reversed(s.split())) for s in src]


def forecast_frame():
    rng = np.random.default_rng(0)
    n, T = 6, 40
    return pd.DataFrame({"unique_id": np.repeat(np.arange(n), T), "ds": np.tile(np.arange(T), n),
                         "y": np.cumsum(rng.standard_normal((n, T)), 1).ravel()})


def fit_charlm():
    lm = rnr.CharLM(hidden_size=8, embedding_dim=4, seq_len=8, batch_size=4, epochs=2, max_minutes=None,
                    progress=False).fit("the quick brown fox jumps over the lazy dog. " * 6)
    return lm.net_


def fit_seq2seq():
    X, Y = texts(24)
    return rnr.Seq2Seq(hidden_size=8, embedding_dim=8, epochs=3, batch_size=8, teacher_forcing=0.5,
                       max_minutes=None, progress=False).fit(X, Y).model_


def fit_classifier_on_text():
    X, _ = texts(24)
    y = [len(s.split()) % 2 for s in X]
    return rnr.RNNClassifier(hidden_size=8, epochs=3, batch_size=8, n_models=1, max_minutes=None,
                             progress=False).fit(X, y).model_


def fit_classifier_on_numbers():
    X, y = tasks.ragged_sums(24, max_len=6)
    return rnr.RNNClassifier(hidden_size=8, epochs=3, batch_size=8, n_models=1, max_minutes=None, progress=False,
                             augment=True).fit([x.numpy() for x in X], (y[:, 0] > 0).numpy()).model_


def fit_forecaster():
    f = rnr.RNNForecaster(horizon=2, hidden_size=8, head_size=8, chunk=16, batch_size=4, epochs=2, season=None,
                          max_minutes=None, progress=False).fit(forecast_frame())
    return f.net_


def fit_tbptt():
    X, Y = tasks.ragged_sums(16, max_len=9)
    model = rnr.ManyToManySync(1, 1, hidden_size=4)
    rnr.fit(model, ([x for x in X], [x.cumsum(0) for x in X]), epochs=3, batch_size=4, tbptt=4, progress=False)
    return model


FITS = [fit_charlm, fit_seq2seq, fit_classifier_on_text, fit_classifier_on_numbers, fit_forecaster, fit_tbptt]


@pytest.mark.parametrize("fit", FITS, ids=[f.__name__[4:] for f in FITS])
def test_training_with_values_checked_once_equals_checking_every_call(fit, monkeypatch):
    torch.manual_seed(0)
    fast = {k: v.clone() for k, v in fit().state_dict().items()}
    monkeypatch.setattr(checks, "ALWAYS_CHECK", True)
    torch.manual_seed(0)
    plain = fit().state_dict()
    assert fast.keys() == plain.keys()
    for k in fast:
        assert torch.equal(fast[k], plain[k]), k


@pytest.mark.parametrize("fit", FITS[:5], ids=[f.__name__[4:] for f in FITS[:5]])
def test_the_estimators_layers_never_scan_what_the_model_checked_or_made(fit, monkeypatch):
    seen = []

    def spy(x, input_size, name="x"):
        seen.append(checking_values())
        return check_sequence(x, input_size, name)

    monkeypatch.setattr(rnr.core.rnn, "check_sequence", spy)
    fit()
    assert seen and not any(seen)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("threads", [1, 2])
def test_all_finite_equals_isfinite_everywhere(dtype, threads):
    from rnr.core.checks import all_finite

    torch.set_num_threads(threads)  # the conftest puts one thread back
    g = torch.Generator().manual_seed(0)
    for shape in [(1,), (7,), (3, 5), (1000, 300), (2, 3, 40_001)]:
        n = int(np.prod(shape))
        for bad in (float("nan"), float("inf"), -float("inf"), None):
            t = torch.randn(shape, generator=g).to(dtype)
            if bad is not None:
                t.view(-1)[int(torch.randint(n, (), generator=g))] = bad
            others = [torch.randn(4, generator=g).to(dtype), torch.zeros(0, dtype=dtype)]
            assert all_finite([t, *others]) == bool(torch.isfinite(t).all()), (shape, bad)
            assert all_finite([t.t() if t.dim() == 2 else t]) == (bad is None)
    assert all_finite([]) and all_finite([torch.zeros(0)])
