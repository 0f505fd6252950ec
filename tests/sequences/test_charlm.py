"""rnr.CharLM: streams with the state carried, exact scoring, sampling filters, beam search, files, errors."""
import itertools
import math

import pytest
import torch

import rnr
from rnr.sequences.charlm import CharLM, _draw

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 40


@pytest.fixture(scope="module")
def lm():
    return CharLM(hidden_size=48, embedding_dim=16, seq_len=32, batch_size=8, epochs=6, lr=1e-2, dropout=0.0,
                  progress=False).fit(TEXT, TEXT[:400])


def nats_by_hand(lm, text):
    """One forward pass over the whole text: the mean loss of each character given all before it."""
    ids = torch.tensor([lm.index_[c] for c in text])
    with torch.no_grad():
        logits, _ = lm.net_(ids[None])
    return float(torch.nn.functional.cross_entropy(logits[0, :-1], ids[1:]))


def test_learns_the_text(lm):
    uniform = math.log(len(lm.vocab_))
    scores = lm.evaluate(TEXT[:500])
    assert scores["nats"] < 0.35 * uniform  # far below guessing among the 17 characters
    assert scores["bits"] == pytest.approx(scores["nats"] / math.log(2))
    assert scores["chars"] == 499
    rows = lm.history_.rows
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert {"val_nats", "val_bits", "lr", "seconds"} <= set(rows[0])


def test_evaluate_is_exact(lm):
    text = TEXT[:700]
    by_hand = nats_by_hand(lm, text)
    assert lm.evaluate(text, streams=1)["nats"] == pytest.approx(by_hand, rel=1e-5)
    # pieces read in parallel, each warmed up on all the text before it: the same number
    assert lm.evaluate(text, streams=5, context=700)["nats"] == pytest.approx(by_hand, rel=1e-5)
    # with a short warm-up each piece starts with less history, which can only change the number a little
    assert lm.evaluate(text, streams=5, context=64)["nats"] == pytest.approx(by_hand, rel=0.1)


def test_streams_carry_the_state():
    """Each stream is one contiguous piece of the text, and each chunk continues where the last one ended."""
    lm = CharLM(hidden_size=8, embedding_dim=4, seq_len=5, batch_size=3, epochs=1, progress=False)
    text = "abcdefghijklmnopqrstuvwxyz" * 2
    seen = []
    from rnr.sequences import charlm

    original = charlm.CharNet.forward

    def spy(self, ids, state=None):
        seen.append((ids.clone(), state is None))
        return original(self, ids, state)

    charlm.CharNet.forward = spy
    try:
        lm.fit(text)
    finally:
        charlm.CharNet.forward = original
    chunks = [ids for ids, _ in seen[: math.ceil(17 / 5)]]
    rows = torch.cat(chunks, 1)
    decoded = ["".join(lm.vocab_[i] for i in row) for row in rows.tolist()]
    assert decoded == [text[0:17], text[17:34], text[34:51]]
    assert [fresh for _, fresh in seen[:4]] == [True, False, False, False]


def test_greedy_sampling_and_filters_agree(lm):
    greedy = lm.sample(40, prime="the ", temperature=0)
    assert greedy == lm.beam_search(40, prime="the ", beam_width=1)
    assert greedy == lm.sample(40, prime="the ", top_k=1, seed=3)
    assert greedy == lm.sample(40, prime="the ", top_p=1e-6, seed=3)
    assert lm.sample(60, prime="the ", seed=7) == lm.sample(60, prime="the ", seed=7)
    assert len(lm.sample(25)) == 25


def test_draw_keeps_only_the_allowed_tokens():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    gen = torch.Generator().manual_seed(0)
    draws = lambda **kw: {_draw(logits.clone(), 1.0, kw.get("k"), kw.get("p"), gen) for _ in range(300)}
    assert draws(k=2) == {0, 1}
    assert draws(p=0.6) == {0, 1}  # 0.5 < 0.6, so the second token is needed too
    assert draws(p=0.5) == {0}
    assert draws(p=0.81) == {0, 1, 2}
    assert draws() == {0, 1, 2, 3}
    hot = [_draw(logits.clone(), 50.0, None, None, gen) for _ in range(400)]
    assert min(hot.count(i) for i in range(4)) > 50  # a high temperature flattens the distribution


def test_beam_search_is_exhaustive_when_wide_enough(lm):
    """With as many beams as continuations, beam search finds the most likely one: compare with brute force."""
    V, n, prime = len(lm.vocab_), 3, "the c"
    found = lm.beam_search(n, prime=prime, beam_width=V**n)

    def logprob(cont):
        ids = torch.tensor([lm.index_[c] for c in prime + cont])
        with torch.no_grad():
            logits, _ = lm.net_(ids[None])
        logp = torch.log_softmax(logits[0, :-1], -1)
        return float(logp[torch.arange(len(prime) - 1, len(ids) - 1), ids[len(prime):]].sum())

    best = max(("".join(c) for c in itertools.product(lm.vocab_, repeat=n)), key=logprob)
    assert found == best
    assert logprob(lm.beam_search(n, prime=prime, beam_width=3)) <= logprob(best) + 1e-6


def test_save_and_load(lm, tmp_path):
    path = rnr.save(lm, tmp_path / "lm.safetensors")
    back = rnr.load(path)
    assert isinstance(back, CharLM) and back.vocab_ == lm.vocab_
    assert back.evaluate(TEXT[:300]) == lm.evaluate(TEXT[:300])
    assert back.sample(50, seed=2) == lm.sample(50, seed=2)
    assert back.history_.rows == lm.history_.rows


def test_text_from_a_file(tmp_path):
    (tmp_path / "t.txt").write_text("héllo wörld\n" * 30, encoding="utf-8")
    lm = CharLM(hidden_size=8, embedding_dim=4, seq_len=8, batch_size=2, epochs=1, progress=False)
    lm.fit(tmp_path / "t.txt")
    assert "é" in lm.vocab_ and "ö" in lm.vocab_
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 " * 50)
    with pytest.raises(ValueError, match=r"bad.txt' is not UTF-8 text \(byte 3"):
        lm.fit(tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="no file at"):
        lm.fit(tmp_path / "missing.txt")


def test_unknown_characters(lm):
    with pytest.raises(ValueError, match=r"prime holds 'Z' \(U\+005A\) at position 2.*unknown='map'"):
        lm.sample(5, prime="thZ")
    with pytest.raises(ValueError, match=r"text holds '!'"):
        lm.evaluate("the cat!")
    mapped = CharLM(hidden_size=16, embedding_dim=8, seq_len=16, batch_size=4, epochs=1, unknown="map",
                    progress=False).fit(TEXT[:400])
    assert mapped.vocab_[0] == "\ufffd"
    assert mapped.evaluate("the cat!")["chars"] == 7
    assert len(mapped.sample(5, prime="thZ")) == 5


def test_a_time_budget_stops_the_run():
    lm = CharLM(hidden_size=8, embedding_dim=4, seq_len=4, batch_size=2, epochs=50, max_minutes=1e-6,
                progress=False).fit(TEXT)
    assert len(lm.history_.rows) == 1 and lm.history_.rows[0]["steps"] == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden_size=0), "hidden_size must be"),
    (dict(unknown="skip"), "unknown must be one of 'error', 'map', got str 'skip'"),
    (dict(max_minutes=-1), "max_minutes must be a finite number > 0 or None, got int -1"),
    (dict(dropout=1.5), "dropout"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CharLM(progress=False, **kwargs).fit(TEXT)


def test_bad_calls(lm):
    with pytest.raises(ValueError, match="not fitted yet"):
        CharLM().sample(3)
    with pytest.raises(ValueError, match=r"at least batch_size \* 2 \+ 1 = 129 characters.*got 10"):
        CharLM(progress=False).fit("too short!")
    with pytest.raises(TypeError, match="text must be a str or a pathlib.Path"):
        CharLM(progress=False).fit(["a", "list"])
    with pytest.raises(ValueError, match=r"temperature must be a number >= 0"):
        lm.sample(3, temperature=-1)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 0"):
        lm.sample(3, top_p=0)
    with pytest.raises(ValueError, match="top_k must be"):
        lm.sample(3, top_k=0)
    with pytest.raises(ValueError, match="beam_width must be"):
        lm.beam_search(3, beam_width=0)


def test_a_time_budget_is_spent_rather_than_left_idle_after_a_fixed_number_of_epochs(tmp_path):
    text = "abcab cabca bcabc " * 20
    small = dict(hidden_size=8, embedding_dim=4, seq_len=8, batch_size=4, progress=False)
    lm = CharLM(max_minutes=0.02, **small).fit(text)  # 1.2 s: far more than 10 passes over this text
    assert lm.chosen_ == {"epochs": "<= 100 in max_minutes"} and "chose epochs='<= 100 in max_minutes'" in repr(lm)
    assert len(lm.history_.rows) > 10
    assert lm.history_.rows[-1]["lr"] < 0.2 * lm.lr  # the cosine followed the budget (or the 100 passes) to its end
    assert CharLM(max_minutes=None, **small).fit(text).chosen_ == {"epochs": 10}  # no budget: 10 passes
    # a run that fits in its budget (the default's 10 minutes) follows its updates alone: the same seed, the same model
    a, b = CharLM(epochs=3, **small).fit(text), CharLM(epochs=3, **small).fit(text)
    assert a.history_["train_loss"] == b.history_["train_loss"]
    assert len(CharLM(epochs=2, max_minutes=1, **small).fit(text).history_.rows) == 2  # explicit epochs win
    back = rnr.load(rnr.save(lm, tmp_path / "lm.safetensors"))
    assert back.chosen_ == lm.chosen_
