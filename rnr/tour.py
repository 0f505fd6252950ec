"""The tour: train each topology on its small generated task and print a table (task, metric, seconds).

Run it with ``make run`` or ``python -m rnr.tour``; it takes about a minute on 2 CPU cores.
"""
import time

import torch

from rnr import tasks
from rnr.data import SequenceData
from rnr.topologies import EncoderDecoder, ManyToManySync, ManyToOne, OneToMany, OneToOne
from rnr.train import fit


def _exact_tokens(generated, lengths, targets, eos) -> float:
    """Share of generated token sequences equal to their target up to its stop token."""
    hits = 0
    for g, n, t in zip(generated, lengths, targets):
        want = t[: int((t == eos).nonzero()[0, 0])] if (t == eos).any() else t
        hits += int(n) == len(want) and torch.equal(g[: int(n)], want)
    return hits / len(targets)


def run_xor():
    X, Y = tasks.xor()
    model = OneToOne(2, 2, hidden_size=8, task="classification")
    fit(model, (X, Y), epochs=300, batch_size=4, lr=0.05, progress=False)
    model.eval()
    return "XOR", model, "accuracy", float((model(X).argmax(-1) == Y).float().mean())


def run_patterns():
    X, Y = tasks.patterns(n_patterns=4, length=6, vocab=5)
    model = OneToMany(4, 6, hidden_size=32, cell="gru", task="classification", eos=5)
    fit(model, (X, Y), epochs=150, batch_size=4, lr=0.02, progress=False)
    model.eval()
    out, lengths = model.generate(X)
    return "pattern from a vector", model, "exact match", _exact_tokens(out, lengths, Y, eos=5)


def run_sums():
    X, Y = tasks.ragged_sums(2000, seed=0)
    Xv, Yv = tasks.ragged_sums(500, seed=1)
    model = ManyToOne(1, 1, hidden_size=32, cell="elman")
    fit(model, (X, Y), epochs=30, batch_size=32, lr=3e-3, progress=False)
    model.eval()
    batch = SequenceData(Xv, Yv).batch(list(range(len(Xv))))
    with torch.no_grad():
        mse = float(((model(batch.x, batch.x_lengths) - batch.y) ** 2).mean())
    return "sum of a ragged sequence (R^2)", model, "R^2", 1 - mse / float(batch.y.var())


def run_echo():
    X, Y = tasks.delayed_echo(1000, delay=2, seed=0)
    Xv, Yv = tasks.delayed_echo(300, delay=2, seed=1)
    model = ManyToManySync(1, 1, hidden_size=32, cell="lstm")
    fit(model, (X, Y), epochs=25, batch_size=32, lr=1e-2, progress=False)
    model.eval()
    batch = SequenceData(Xv, Yv).batch(list(range(len(Xv))))
    loss = model.metrics(batch)["loss"]
    return "delayed echo y_t = x_(t-2) (R^2)", model, "R^2", 1 - loss  # the inputs have unit variance


def run_reversal():
    X, Y = tasks.reversal(4000, seed=0)
    Xv, Yv = tasks.reversal(500, seed=1, exclude={tasks.decode(x) for x in X})
    model = EncoderDecoder(16, tasks.EOS + 1, hidden_size=64, cell="gru", vocab_size=len(tasks.LETTERS),
                           task="classification", eos=tasks.EOS, attention="dot")
    fit(model, (X, Y), epochs=6, batch_size=32, lr=1e-2, progress=False)
    model.eval()
    batch = SequenceData(Xv, Yv).batch(list(range(len(Xv))))
    out, lengths = model.generate(batch.x, batch.x_lengths, steps=12)
    return "reverse the alphabet", model, "exact match (held out)", _exact_tokens(out, lengths, Yv, tasks.EOS)


def main() -> None:
    torch.manual_seed(0)
    print(f"{'task':<34} {'model':<58} {'metric':<24} {'value':>7} {'seconds':>8}")
    for job in (run_xor, run_patterns, run_sums, run_echo, run_reversal):
        torch.manual_seed(0)
        start = time.perf_counter()
        task, model, metric, value = job()
        seconds = time.perf_counter() - start
        print(f"{task:<34} {repr(model):<58} {metric:<24} {value:>7.3f} {seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
