"""Small generated tasks, one per topology, that show a model learns: used by the tour and the tests.

Each function returns ``(X, Y)`` ready for ``rnr.SequenceData`` (lists when lengths vary), drawn from a
``torch.Generator`` seeded by ``seed`` so that two calls with the same seed give the same data.
"""
import string

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
