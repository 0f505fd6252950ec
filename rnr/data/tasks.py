"""Small generated tasks, one per topology, that show a model learns: used by the tour and the tests.

Each function returns ``(X, Y)`` ready for ``rnr.SequenceData`` (lists when lengths vary), drawn from a
``torch.Generator`` seeded by ``seed`` so that two calls with the same seed give the same data.
"""
import string

import numpy as np
import pandas as pd
import torch

LETTERS = string.ascii_lowercase  # token i is LETTERS[i]; token 26 is the stop symbol
EOS = len(LETTERS)


def xor():
    """One-to-one: the four points of XOR and their classes."""
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return X, torch.tensor([0, 1, 1, 0])


def patterns(n_patterns: int = 4, length: int = 6, vocab: int = 5, seed: int = 0):
    """One-to-many: one-hot vector k -> its own fixed token sequence, closed by the stop token ``vocab``."""
    g = torch.Generator().manual_seed(seed)
    X = torch.eye(n_patterns)
    Y = [torch.cat([torch.randint(0, vocab, (length,), generator=g), torch.tensor([vocab])]) for _ in X]
    return X, Y


def ragged_sums(n: int, max_len: int = 10, seed: int = 0):
    """Many-to-one: sequences of 1..max_len values in [-1, 1] -> their sum."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (n,), generator=g)
    X = [torch.rand(int(t), 1, generator=g) * 2 - 1 for t in lengths]
    return X, torch.stack([x.sum(0) for x in X])  # (N, 1)


def delayed_echo(n: int, delay: int = 2, min_len: int = 5, max_len: int = 20, seed: int = 0):
    """Synchronous many-to-many: y_t = x_{t-delay} (0 before the start), on ragged random sequences."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    X = [torch.randn(int(t), 1, generator=g) for t in lengths]
    Y = [torch.cat([torch.zeros(delay, 1), x[:-delay]])[: len(x)] for x in X]
    return X, Y


def reversal(n: int, min_len: int = 3, max_len: int = 8, seed: int = 0, exclude: set | None = None):
    """Many-to-many delayed: a string of letters -> the same letters backwards, then the stop token.

    ``exclude`` holds strings never to draw (to keep held-out sequences unseen in training).
    """
    g = torch.Generator().manual_seed(seed)
    X, Y, seen = [], [], set(exclude or ())
    while len(X) < n:
        t = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        x = torch.randint(0, len(LETTERS), (t,), generator=g)
        key = decode(x)
        if key in seen:
            continue
        seen.add(key)
        X.append(x)
        Y.append(torch.cat([x.flip(0), torch.tensor([EOS])]))
    return X, Y


def decode(tokens) -> str:
    """Token ids (stopping at the stop token) -> letters."""
    out = []
    for t in (tokens.tolist() if hasattr(tokens, "tolist") else tokens):
        if t == EOS:
            break
        out.append(LETTERS[t])
    return "".join(out)


def ice_cream(n_shops: int = 30, days: int = 730, seed: int = 0):
    """A generated panel: daily ice-cream sales of shops that opened on different days, driven by temperature.

    Sales follow each shop's level, a weekly pattern (busier at weekends) and the day's temperature, which is
    known ahead (a weather forecast) and so is a future covariate. Columns: unique_id, ds, y, temperature, and
    the static column size ("small" | "large"). Shops open on different days, so series lengths differ.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-01", periods=days, freq="D")
    t = np.arange(days)
    temp = 14 + 9 * np.sin(2 * np.pi * (t - 110) / 365.25)
    noise = np.zeros(days)
    for i in range(1, days):  # weather wanders for days at a time
        noise[i] = 0.8 * noise[i - 1] + rng.normal(0, 1.8)
    temp = temp + noise
    weekly = np.array([0.85, 0.8, 0.85, 0.9, 1.05, 1.3, 1.25])[dates.day_of_week]
    frames = []
    for s in range(n_shops):
        large = rng.random() < 0.4
        level = rng.uniform(40, 90) * (2.0 if large else 1.0)
        opened = int(rng.integers(0, days // 3))
        heat = np.exp(0.06 * (temp - 15))
        y = level * heat * weekly * rng.lognormal(0, 0.08, days)
        frames.append(pd.DataFrame({"unique_id": f"shop_{s:02d}", "ds": dates[opened:], "y": y[opened:].round(1),
                                    "temperature": temp[opened:].round(1), "size": "large" if large else "small"}))
    return pd.concat(frames, ignore_index=True)


DIGIT_NAMES = {"en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
               "pt": ["zero", "um", "dois", "tres", "quatro", "cinco", "seis", "sete", "oito", "nove"]}


def digit_captions(lang: str = "en"):
    """scikit-learn's 8x8 digits (1,797 images) captioned with the digit's name, letter by letter.

    Returns X (N, 64) float32 in [0, 1], Y a list of (len(name) + 1,) letter tokens ending in EOS, and the digit
    labels (N,). Needs scikit-learn, which ships the images.
    """
    from sklearn.datasets import load_digits  # optional: scikit-learn ships the images (rnr[test])

    if lang not in DIGIT_NAMES:
        raise ValueError(f"lang must be one of {list(DIGIT_NAMES)}, got {lang!r}")
    digits = load_digits()
    X = torch.from_numpy((digits.data / 16.0).astype(np.float32))
    names = DIGIT_NAMES[lang]
    Y = [torch.tensor([LETTERS.index(c) for c in names[d]] + [EOS]) for d in digits.target]
    return X, Y, digits.target


def shuffle_words(sentences, seed: int = 0) -> list[str]:
    """Each sentence with its words (split on white space) in a random order: the input of the word-order task,
    whose target is the sentence itself."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in sentences:
        words = s.split()
        out.append(" ".join(words[i] for i in torch.randperm(len(words), generator=gen).tolist()))
    return out


def toy_sentences(n: int, seed: int = 0) -> list[str]:
    """Sentences of a small grammar, "the ADJ NOUN VERB a OBJECT [ADVERB]", in which every word's class fixes its
    place, so that a shuffled sentence has exactly one right order."""
    slots = [["the"], ["big", "small", "red", "old"], ["cat", "dog", "man", "bird"], ["sees", "likes", "finds"],
             ["a"], ["ball", "tree", "car", "house"], ["today", "slowly", "again", ""]]
    gen = torch.Generator().manual_seed(seed)
    return [" ".join(w for w in (words[int(torch.randint(len(words), (), generator=gen))] for words in slots) if w)
            for _ in range(n)]


def toy_reviews(n: int = 400, seed: int = 0):
    """A DataFrame of short film reviews (``review``) and their ``sentiment`` ("pos" | "neg"), in which "not"
    flips the opinion word after it ("not good" is negative), so that word order matters and a bag of words
    cannot be right every time."""
    good, bad = ["good", "great", "moving", "funny"], ["dull", "bad", "slow", "silly"]
    filler = ["the", "film", "was", "plot", "acting", "really", "quite", "and", "story"]
    gen = torch.Generator().manual_seed(seed)

    def pick(words):
        return words[int(torch.randint(len(words), (), generator=gen))]

    rows = []
    for _ in range(n):
        positive, negated = bool(torch.rand((), generator=gen) < 0.5), bool(torch.rand((), generator=gen) < 0.4)
        opinion = pick(bad if positive == negated else good)  # "not dull" is positive
        words = [pick(filler) for _ in range(int(torch.randint(2, 6, (), generator=gen)))]
        at = int(torch.randint(len(words) + 1, (), generator=gen))
        words[at:at] = ["not", opinion] if negated else [opinion]
        rows.append({"review": " ".join(words), "sentiment": "pos" if positive else "neg"})
    return pd.DataFrame(rows)
