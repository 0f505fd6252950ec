"""Every sequence estimator accepts cell="mingru" and cell="minlstm" (Feng et al. 2024): a tiny fit, a prediction,
state carried where the estimator carries it, and a model file that loads back to the same predictions."""
import numpy as np
import pytest

import rnr
from rnr.sequences import CharLM, RNNClassifier, Seq2Seq, Transcriber

QUIET = dict(progress=False, max_minutes=None)


def rising_or_falling(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = [np.stack([s * np.arange(T) / T, rng.normal(0, 1, T)], 1).astype(np.float32)
         for s, T in zip(np.tile([1.0, -1.0], n // 2), rng.integers(3, 12, n))]
    return X, np.tile(["up", "down"], n // 2)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_classifier(cell, tmp_path):
    X, y = rising_or_falling()
    clf = RNNClassifier(hidden_size=8, cell=cell, epochs=3, batch_size=16, n_models=1, **QUIET).fit(X, y)
    assert clf.models_[0].rnn.cell == cell and not hasattr(clf.models_[0].rnn, "weight_hh_l0")
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.isfinite(proba).all()
    rnr.save(clf, tmp_path / "clf")
    np.testing.assert_allclose(rnr.load(tmp_path / "clf").predict_proba(X[:5]), proba, rtol=1e-6)


def test_charlm_samples_with_the_state_carried(tmp_path):
    text = "abcabcabd " * 30
    lm = CharLM(hidden_size=16, embedding_dim=8, cell="mingru", seq_len=8, batch_size=4, epochs=1, **QUIET).fit(text)
    assert lm.net_.rnn.cell == "mingru"
    sample = lm.sample(20, prime="ab", seed=0)  # one step at a time, the state carried
    assert len(sample) >= 20
    assert np.isfinite(lm.evaluate(text[:50], streams=3, context=8)["nats"])
    rnr.save(lm, tmp_path / "lm")
    assert rnr.load(tmp_path / "lm").sample(20, prime="ab", seed=0) == sample


def test_seq2seq():
    src = ["a b c", "b c", "c a", "a", "b a c"] * 6
    tgt = [" ".join(reversed(s.split())) for s in src]
    model = Seq2Seq(hidden_size=12, embedding_dim=8, cell="mingru", epochs=1, batch_size=8, **QUIET).fit(src, tgt)
    assert model.model_.encoder.cell == "mingru"
    out = model.predict(src[:3])
    assert len(out) == 3 and all(isinstance(s, str) for s in out)


def test_transcriber_and_its_stream():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(rng.integers(8, 16)), 6)).astype(np.float32) for _ in range(12)]
    y = [" ".join(str(t) for t in rng.integers(0, 3, 2)) for _ in range(12)]
    asr = Transcriber(hidden_size=12, num_layers=2, cell="mingru", stride=1, epochs=1, **QUIET).fit(X, y)
    whole = asr.predict(X[:2])
    assert len(whole) == 2
    stream = asr.stream()  # frames as they arrive: the recurrent state carried between blocks
    for block in np.array_split(X[0], 3):
        stream.push(block)
    assert stream.finish() == whole[0]

