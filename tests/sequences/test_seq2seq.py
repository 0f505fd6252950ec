"""rnr.Seq2Seq: learns to restore the order of shuffled words; BLEU; estimator conventions; files; errors."""
import math

import pytest
import torch

import rnr
from rnr.data.tasks import shuffle_words, toy_sentences
from rnr.metrics import bleu
from rnr.nn.decoder import Decoder
from rnr.sequences.seq2seq import Seq2Seq

TRAIN = toy_sentences(600, seed=0)
TEST = [s for s in toy_sentences(200, seed=1) if s not in set(TRAIN)][:60]


@pytest.fixture(scope="module")
def s2s():
    torch.set_num_threads(1)
    return Seq2Seq(hidden_size=48, embedding_dim=24, epochs=5, batch_size=32, lr=1e-2, embedding_dropout=0.0,
                   attention="dot", progress=False).fit(shuffle_words(TRAIN, seed=0), TRAIN,
                                                       shuffle_words(TEST, seed=5), TEST)


def test_restores_the_order_of_unseen_sentences(s2s):
    assert len(TEST) >= 40
    shuffled = shuffle_words(TEST, seed=9)
    greedy = s2s.predict(shuffled)
    exact = sum(p == t for p, t in zip(greedy, TEST)) / len(TEST)
    assert exact >= 0.9, list(zip(greedy, TEST))[:5]
    beam = s2s.predict(shuffled, beam_width=4)
    assert sum(p == t for p, t in zip(beam, TEST)) / len(TEST) >= 0.9
    assert s2s.score(shuffled, TEST) >= 90
    rows = s2s.history_.rows
    assert len(rows) == 5 and rows[-1]["val_accuracy"] > 0.98 and rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_batched_beam_search_predicts_as_the_loop_over_sentences(monkeypatch):
    torch.set_num_threads(1)
    tiny = Seq2Seq(hidden_size=16, embedding_dim=8, epochs=1, batch_size=32, lr=1e-2, max_len=12,
                   progress=False).fit(shuffle_words(TRAIN, seed=0), TRAIN)  # half-learnt: answers of many lengths
    X = shuffle_words(TEST[:30], seed=9)
    batched = tiny.predict(X, beam_width=5, batch_size=8)
    assert len({len(p.split()) for p in batched}) > 1
    monkeypatch.setattr(Decoder, "_beam", Decoder._beam_reference)
    assert tiny.predict(X, beam_width=5, batch_size=8) == batched


def test_bleu_by_hand():
    # every n-gram of the hypothesis is in the reference; only the brevity penalty exp(1 - 5/4) applies
    assert bleu(["a b c d"], ["a b c d e"], tokenize="none") == pytest.approx(100 * math.exp(-0.25), abs=1e-6)
    assert bleu(["the cat sat ."], ["the cat sat ."], tokenize="none") == pytest.approx(100)
    assert bleu(["The cat sat."], ["the cat sat ."], tokenize="13a", lowercase=True) == pytest.approx(100)
    with pytest.raises(ValueError, match="same length"):
        bleu(["a"], ["a", "b"])
    with pytest.raises(TypeError, match="hypotheses must be a list of str"):
        bleu("a b", ["a b"])


def test_conventions_and_files(s2s, tmp_path):
    from sklearn.base import clone

    copy = clone(s2s)
    assert copy.get_params() == s2s.get_params() and not hasattr(copy, "model_")
    assert s2s.set_params(lr=1e-3) is s2s and s2s.lr == 1e-3
    with pytest.raises(ValueError, match="Seq2Seq has no parameter 'hidden'"):
        s2s.set_params(hidden=3)
    assert "hidden_size=48" in repr(s2s)
    back = rnr.load(rnr.save(s2s, tmp_path / "s2s.safetensors"))
    shuffled = shuffle_words(TEST, seed=9)
    assert back.predict(shuffled, beam_width=3) == s2s.predict(shuffled, beam_width=3)
    assert back.target_tokenizer_.vocab_ == s2s.target_tokenizer_.vocab_


def test_unknown_words_and_empty_targets(s2s):
    out = s2s.predict(["zebra the ball a sees big cat"])
    assert isinstance(out[0], str)
    small = Seq2Seq(hidden_size=8, embedding_dim=8, epochs=1, progress=False).fit(["a b", "c"], ["x y", ""])
    assert small.eos_ == len(small.target_tokenizer_)
    assert all(isinstance(p, str) for p in small.predict(["a b", "q"]))


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m.fit("a b", ["a b"]), TypeError, "X must be a non-empty list of sentences"),
    (lambda m: m.fit(["a b"], ["a b", "c"]), ValueError, "same number of sentences.*got 1 and 2"),
    (lambda m: m.fit(["a b"], [3]), TypeError, r"Y\[0\] must be a str, got int"),
    (lambda m: m.fit(["a b"], ["a b"], X_val=["a"]), ValueError, "give both X_val and Y_val"),
    (lambda m: m.predict(["a b"]), ValueError, "not fitted yet"),
])
def test_bad_calls(call, error, match):
    with pytest.raises(error, match=match):
        call(Seq2Seq(epochs=1, progress=False))
