"""Tokenizers and text classification with RNNClassifier."""
import numpy as np
import pytest

import rnr
from rnr.data.datasets import load_sst2
from rnr.data.text import Tokenizer
from rnr.sequences.classifier import RNNClassifier


def test_word_tokenizer_builds_a_deterministic_vocabulary():
    tok = Tokenizer(min_count=2).fit(["The cat sat.", "the cat ran!", "a dog"])
    assert tok.vocab_ == ["<pad>", "<unk>", "cat", "the"]  # by count, then alphabetically
    assert tok.encode("The DOG cat") == [3, 1, 2] and tok.decode([3, 1, 2]) == "the <unk> cat"
    assert tok.split("won't stop, ok?") == ["won't", "stop", ",", "ok", "?"]
    assert tok.encode("") == [1]  # never an empty sequence


def test_char_tokenizer_max_size_and_case():
    tok = Tokenizer("char", lower=False, max_size=2).fit(["aab", "Ab"])
    assert tok.vocab_ == ["<pad>", "<unk>", "a", "b"] and tok.encode("Ab") == [1, 3]
    assert Tokenizer.from_state(tok.to_state()).encode("Ab") == [1, 3]


@pytest.mark.parametrize("kwargs, match", [
    (dict(level="bpe"), r"level must be one of \['word', 'char', 'space'\], got 'bpe'"),
    (dict(min_count=0), r"min_count must be an int >= 1, got 0"),
    (dict(max_size=0), r"max_size must be None or an int >= 1, got 0"),
])
def test_tokenizer_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Tokenizer(**kwargs)


def sentiment(n=200, seed=0):
    rng = np.random.default_rng(seed)
    good, bad, filler = ["great", "fine", "lovely"], ["awful", "dull", "poor"], ["the", "film", "was", "and", "plot"]
    X, y = [], []
    for i in range(n):
        words = list(rng.choice(filler, int(rng.integers(2, 8))))
        words.insert(int(rng.integers(0, len(words) + 1)), rng.choice(good if i % 2 else bad))
        X.append(" ".join(words))
        y.append(i % 2)
    return X, np.array(y)


@pytest.mark.parametrize("tokenizer", ["word", "char"])
def test_classifies_text_and_saves_its_vocabulary(tmp_path, tokenizer):
    X, y = sentiment()
    Xt, yt = sentiment(100, seed=1)
    clf = RNNClassifier(hidden_size=16, embedding_dim=8, epochs=12, lr=1e-2, tokenizer=tokenizer, pooling="max")
    clf.fit(X, y)
    assert clf.score(Xt, yt) >= 0.95
    again = rnr.load(rnr.save(clf, tmp_path / "t.safetensors"))
    assert np.array_equal(again.predict_proba(Xt), clf.predict_proba(Xt))
    assert again.tokenizer_.vocab_ == clf.tokenizer_.vocab_
    with pytest.raises(TypeError, match=r"X must be a list of strings: the model was fitted on text"):
        clf.predict([np.zeros((3, 1))])


def test_unknown_words_at_prediction_are_read_as_unknown():
    X, y = sentiment()
    clf = RNNClassifier(hidden_size=8, embedding_dim=4, epochs=1).fit(X, y)
    assert clf.predict(["completely unseen words"]).shape == (1,)


def test_sst2_loads_its_three_splits():
    data = load_sst2()
    if data is None:
        pytest.skip("SST-2 absent: set RNR_DATA or place it at ../shared/data/sst2")
    assert {k: len(v[0]) for k, v in data.items()} == {"train": 6920, "dev": 872, "test": 1821}
    assert set(data["train"][1]) == {0, 1}


def test_tiny_shakespeare_splits_as_nanogpt_does():
    from rnr.data.datasets import load_tinyshakespeare

    data = load_tinyshakespeare()
    if data is None:
        pytest.skip("tiny Shakespeare absent: set RNR_DATA or place it at ../shared/data/tinyshakespeare")
    train, val = data
    assert len(train) + len(val) == 1_115_394 and len(val) == 111_540
    assert len(set(train + val)) == 65 and set(val) <= set(train)  # a CharLM fitted on train reads all of val


def test_multi30k_loads_aligned_splits():
    from rnr.data.datasets import load_multi30k

    data = load_multi30k()
    if data is None:
        pytest.skip("Multi30k absent: set RNR_DATA or place it at ../shared/data/multi30k")
    assert {k: (len(v[0]), len(v[1])) for k, v in data.items()} == {
        "train": (29000, 29000), "val": (1014, 1014), "test": (1000, 1000)}
    assert data["test"][1][0] == "a man in an orange hat starring at something ."
    raw = load_multi30k(tokenised=False)
    assert raw["test"][1][0] == "A man in an orange hat starring at something."
