"""The tour: train each topology on its small generated task and print a table (task, metric, seconds, model).

Run it with ``rnr tour`` (or ``python -m rnr tour``); it takes under half a minute on 2 CPU cores. The same runs
are the learning tests (tests/test_learning.py), which hold each result to its bar.
"""
import time

import torch

from rnr.core.rnn import step_mask
from rnr.data import tasks
from rnr.data.sequences import SequenceData
from rnr.nn.topologies import EncoderDecoder, ManyToManySync, ManyToOne, OneToMany, OneToOne
from rnr.training.train import fit


def _exact_tokens(generated, lengths, targets, eos) -> float:
    """Share of generated token sequences equal to their target up to its stop token."""
    hits = 0
    for g, n, t in zip(generated, lengths, targets):
        want = t[: int((t == eos).nonzero()[0, 0])] if (t == eos).any() else t
        hits += int(n) == len(want) and torch.equal(g[: int(n)], want)
    return hits / len(targets)


def _r2(pred, y) -> float:
    """Coefficient of determination: 1 - sum of squared errors / sum of squares about the mean."""
    return float(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


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
    X, Y = tasks.ragged_sums(1000, seed=0)
    Xv, Yv = tasks.ragged_sums(500, seed=1)  # held out: fresh sequences
    model = ManyToOne(1, 1, hidden_size=32, cell="elman")
    fit(model, (X, Y), epochs=10, batch_size=32, lr=1e-2, lr_schedule="cosine", progress=False)
    model.eval()
    batch = SequenceData(Xv, Yv).batch(list(range(len(Xv))))
    with torch.no_grad():
        r2 = _r2(model(batch.x, batch.x_lengths), batch.y)
    return "sum of a ragged sequence", model, "R^2 (held out)", r2


def run_echo():
    X, Y = tasks.delayed_echo(600, delay=2, seed=0)
    Xv, Yv = tasks.delayed_echo(300, delay=2, seed=1)  # held out: fresh sequences
    model = ManyToManySync(1, 1, hidden_size=32, cell="gru")
    fit(model, (X, Y), epochs=10, batch_size=32, lr=1e-2, lr_schedule="cosine", progress=False)
    model.eval()
    batch = SequenceData(Xv, Yv).batch(list(range(len(Xv))))
    real = step_mask(batch.x_lengths, batch.x.shape[1])  # (B, T): the real steps
    with torch.no_grad():
        r2 = _r2(model(batch.x, batch.x_lengths)[real], batch.y[real])
    return "delayed echo y_t = x_(t-2)", model, "R^2 (held out)", r2


REVERSAL_TRAIN = 3000  # training strings; the 500 held-out ones are none of them


def run_reversal():
    X, Y = tasks.reversal(REVERSAL_TRAIN, seed=0)
    Xv, Yv = tasks.reversal(500, seed=1, exclude={tasks.decode(x) for x in X})
    # attention lets output t look straight at source step S-1-t, and the encoder's backward direction tells each
    # step how far it is from the end; with the same budget, dropping either one leaves ~96% (forward encoder
    # only) or ~43% (no attention) exact instead of ~100%
    model = EncoderDecoder(16, tasks.EOS + 1, hidden_size=64, cell="lstm", bidirectional=True,
                           vocab_size=len(tasks.LETTERS), task="classification", eos=tasks.EOS, attention="dot")
    fit(model, (X, Y), epochs=6, batch_size=64, lr=1e-2, lr_schedule="cosine", progress=False)
    model.eval()
    batch = SequenceData(Xv, Yv).batch(list(range(len(Xv))))
    out, lengths = model.generate(batch.x, batch.x_lengths)
    return "reverse a string of letters", model, "exact match (held out)", _exact_tokens(out, lengths, Yv, tasks.EOS)


def main() -> None:
    torch.set_num_threads(1)  # these small models gain nothing from more, and slow to a crawl on a busy machine
    torch.manual_seed(0)
    print(f"{'task':<28} {'metric':<24} {'value':>6} {'seconds':>8}  model")
    for job in (run_xor, run_patterns, run_sums, run_echo, run_reversal):
        torch.manual_seed(0)
        start = time.perf_counter()
        task, model, metric, value = job()
        seconds = time.perf_counter() - start
        print(f"{task:<28} {metric:<24} {value:>6.3f} {seconds:>8.1f}  {model!r}", flush=True)  # model last: it is long


if __name__ == "__main__":
    main()
