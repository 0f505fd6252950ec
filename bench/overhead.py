"""Overhead above the kernels: each estimator's training loop against a bare torch loop of the same shapes.

For ``rnr.CharLM``, ``rnr.Seq2Seq``, ``rnr.RNNClassifier`` and ``rnr.RNNForecaster`` it trains the estimator
(``fit``) and, in the same process, a bare loop: the same layers built from ``torch.nn`` (or, where rnr's layer
runs its own compiled kernel rather than torch's, ``rnr.RNN`` called directly with that kernel), the same cell,
widths, batch size, optimizer, gradient clipping and threads (``RNR_THREADS`` holds rnr's runs to torch's count, or
``--threads``), and a plain ``for`` loop of forward, loss, ``zero_grad``,
``backward``, ``clip_grad_norm_``, ``step`` over batches made before the clock starts. It prints the throughput of
both (characters, or examples, per second of the training loop: the training core's own epoch seconds for rnr, so
what ``fit`` does before and after training, such as building the vocabulary, is left out) and their ratio
rnr / bare (1 or more: no overhead), with the machine. A third column runs rnr as it ran before its values were
checked once per fit: every value checked on every call (``rnr.core.checks.ALWAYS_CHECK``, the plain path), and
finite values found with an ``isfinite`` mask of each tensor rather than its ends (``checks.all_finite``).

Each side runs twice, alternating (bare, rnr, before, bare, rnr, before), after an untimed warm-up at the quick
sizes, and the faster run of each counts.

    python bench/overhead.py            # about 20-40 s per estimator
    python bench/overhead.py --quick    # a few seconds each: checks that it runs
    python bench/overhead.py --only charlm --threads 1
"""
import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

import rnr
from rnr.core import checks
from rnr.core.threads import ENV as RNR_THREADS
from rnr.core.rnn import RNN
from rnr.data.sequences import SequenceData
from rnr.data.text import Tokenizer

CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU}


def machine() -> str:
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, rnr {rnr.__version__}, "
            f"Python {platform.python_version()}")


def bare_rnn(n_in: int, H: int, cell: str, bidirectional: bool, batch: int, steps: int) -> nn.Module:
    """The layer a bare loop would use for the kernel rnr picks: torch.nn's where rnr runs torch's fused kernel,
    else rnr.RNN called directly with the kernel it picks (the compiled loop)."""
    layer = RNN(n_in, H, cell=cell, bidirectional=bidirectional)
    impl = layer._impl(torch.zeros(batch, steps, n_in))
    if impl == "fused":
        return CLASSES[cell](n_in, H, batch_first=True, bidirectional=bidirectional)
    return RNN(n_in, H, cell=cell, bidirectional=bidirectional, impl=impl)


def isfinite_mask(tensors) -> bool:
    """How checks.all_finite answered before it read the ends of each tensor."""
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


def as_before(run_rnr):
    """run_rnr as rnr ran before: every value checked on every call, each through an isfinite mask."""
    def run():
        checks.ALWAYS_CHECK, checks.all_finite = True, isfinite_mask
        try:
            return run_rnr()
        finally:
            checks.ALWAYS_CHECK, checks.all_finite = False, fast_all_finite

    fast_all_finite = checks.all_finite
    return run


def loop_seconds(history) -> float:
    rows = history.rows if hasattr(history, "rows") else history
    return sum(r["seconds"] for r in rows)


def update(opt, params, loss, clip: float = 1.0) -> None:
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(params, clip)
    opt.step()


# CharLM: LSTM 512, 32 streams x 128 characters, AdamW -------------------------------------------------------
def text_of(n: int, seed: int = 0) -> str:
    """n characters of made-up text over 65 symbols (tiny Shakespeare's count)."""
    symbols = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'-\n&$3"))
    rng = np.random.default_rng(seed)
    return "".join(symbols[rng.integers(0, len(symbols), n)].tolist())


def charlm(quick: bool):
    B, T, H = 32, 128, 512
    chunks = 3 if quick else 24
    text = text_of(B * T * chunks + 1)

    def run_rnr():
        lm = rnr.CharLM(hidden_size=H, batch_size=B, seq_len=T, epochs=1, max_minutes=None, progress=False)
        lm.fit(text)
        return loop_seconds(lm.history_), B * T * chunks

    def run_bare():
        torch.manual_seed(0)
        vocab = sorted(set(text))
        index = {c: i for i, c in enumerate(vocab)}
        ids = torch.tensor([index[c] for c in text])
        x, y = ids[:-1].view(B, -1), ids[1:].view(B, -1)
        emb, rnn = nn.Embedding(len(vocab), 64), bare_rnn(64, H, "lstm", False, B, T)
        drop, head = nn.Dropout(0.2), nn.Linear(H, len(vocab))
        params = [p for m in (emb, rnn, head) for p in m.parameters()]
        opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
        start, state = time.perf_counter(), None
        for c in range(chunks):
            out, state = rnn(emb(x[:, c * T : (c + 1) * T]), state)
            logits = head(drop(out))
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y[:, c * T : (c + 1) * T].flatten())
            update(opt, params, loss)
            state = tuple(s.detach() for s in state)
        return time.perf_counter() - start, B * T * chunks

    return "CharLM", f"LSTM {H}, {B} streams x {T} chars, {chunks} chunks", "chars", run_rnr, run_bare


# Seq2Seq: GRU 256 (bidirectional encoder), additive attention, tied embeddings, batch 64 ----------------------
def sentences(n: int, vocab: int = 2000, seed: int = 0):
    """n made-up source sentences of 6-20 words and their targets (the words reversed)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    src = [[words[k] for k in rng.zipf(1.3, rng.integers(6, 21)) % vocab] for _ in range(n)]
    return [" ".join(s) for s in src], [" ".join(reversed(s)) for s in src]


class BareSeq2Seq(nn.Module):
    """The EncoderDecoder of Seq2Seq's defaults written with torch.nn: a bidirectional GRU encoder, a tanh bridge,
    a GRU decoder stepping with additive attention, and an output layer tied to the decoder's embedding."""

    def __init__(self, V_src: int, V_tgt: int, E: int, H: int, B: int, S: int):
        super().__init__()
        self.emb, self.drop = nn.Embedding(V_src, E), nn.Dropout(0.3)
        self.enc = bare_rnn(E, H, "gru", True, B, S)
        self.bridge = nn.Linear(2 * H, H)
        self.dec_emb = nn.Embedding(V_tgt + 1, H)  # id V_tgt: the start symbol
        self.dec = bare_rnn(H + 2 * H, H, "gru", False, B, 1)
        self.att_q, self.att_k = nn.Linear(H, H, bias=False), nn.Linear(2 * H, H)
        self.att_v = nn.Linear(H, 1, bias=False)
        self.proj, self.bias, self.V = nn.Linear(3 * H, H), nn.Parameter(torch.zeros(V_tgt)), V_tgt

    def forward(self, x, x_len, y):
        B = x.shape[0]
        e = self.drop(self.emb(x))
        packed = nn.utils.rnn.pack_padded_sequence(e, x_len, batch_first=True, enforce_sorted=False)
        out, h_n = self.enc(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (B, S, 2H)
        h = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], -1)))[None]  # (1, B, H)
        mask = torch.arange(x.shape[1])[None] < x_len[:, None]
        keys = self.att_k(out)
        prev = torch.cat([torch.full((B, 1), self.V), y[:, :-1]], 1)
        inputs = self.drop(self.dec_emb(prev))  # (B, T, H)
        feats = []
        for t in range(y.shape[1]):
            scores = self.att_v(torch.tanh(keys + self.att_q(h[-1])[:, None])).squeeze(-1).masked_fill(~mask, -1e9)
            ctx = torch.bmm(torch.softmax(scores, -1)[:, None], out)[:, 0]  # (B, 2H)
            o, h = self.dec(torch.cat([inputs[:, t], ctx], -1)[:, None], h)
            feats.append(torch.cat([o[:, 0], ctx], -1))
        f = torch.tanh(self.proj(torch.stack(feats, 1)))
        return nn.functional.linear(f, self.dec_emb.weight[: self.V], self.bias)  # (B, T, V)


def seq2seq(quick: bool):
    B, H, n, epochs = 64, 256, (128 if quick else 512), 2
    X, Y = sentences(n)
    words = sum(len(y.split()) + 1 for y in Y)

    def settings():
        return dict(hidden_size=H, embedding_dim=H, batch_size=B, epochs=epochs, max_minutes=None, progress=False)

    def run_rnr():
        s2s = rnr.Seq2Seq(**settings()).fit(X, Y)
        return loop_seconds(s2s.history_), n * epochs

    def run_bare():
        torch.manual_seed(0)
        src, tgt = Tokenizer("space").fit(X), Tokenizer("space").fit(Y)
        eos = len(tgt)
        data = SequenceData([torch.tensor(src.encode(x)) for x in X],
                            [torch.tensor(tgt.encode(y) + [eos]) for y in Y])
        batches = list(data.batches(B, True, torch.Generator().manual_seed(0), bucket=True))
        model = BareSeq2Seq(len(src), eos + 1, H, H, B, max(b.x.shape[1] for b in batches))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        params = list(model.parameters())
        start = time.perf_counter()
        for b in batches * epochs:
            x_len = b.x_lengths if b.x_lengths is not None else torch.full((len(b),), b.x.shape[1])
            logits = model(b.x, x_len, b.y)
            y = b.y if b.y_lengths is None else b.y.masked_fill(
                torch.arange(b.y.shape[1])[None] >= b.y_lengths[:, None], -100)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
            update(opt, params, loss)
        return time.perf_counter() - start, n * epochs

    return "Seq2Seq", f"GRU {H} bidirectional, additive attention, batch {B}, {n} pairs ({words} target words) x " \
        f"{epochs} epochs", \
        "pairs", run_rnr, run_bare


# RNNClassifier: GRU 64 bidirectional, last states, batch 32 ---------------------------------------------------
def classifier(quick: bool):
    B, T, F, H, n, epochs = 32, 100, 3, 64, (160 if quick else 2048), 2
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, T, F)).astype(np.float32)
    y = (X[:, :, 0].mean(1) > 0).astype(np.int64)

    def run_rnr():
        clf = rnr.RNNClassifier(hidden_size=H, batch_size=B, epochs=epochs, conv=False, pooling="last", n_models=1,
                                validation_fraction=None, lr_schedule=None, max_minutes=None, progress=False)
        clf.fit(X, y)
        return loop_seconds(clf.history_), n * epochs

    def run_bare():
        torch.manual_seed(0)
        xs = torch.from_numpy((X - X.mean((0, 1))) / X.std((0, 1)))
        ys = torch.from_numpy(y)
        rnn, head = bare_rnn(F, H, "gru", True, B, T), nn.Linear(2 * H, 2)
        params = [p for m in (rnn, head) for p in m.parameters()]
        opt = torch.optim.Adam(params, lr=3e-3)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
        batches = [(xs[order[i : i + B]], ys[order[i : i + B]]) for i in range(0, n, B)]
        start = time.perf_counter()
        for xb, yb in batches * epochs:
            _, h_n = rnn(xb)
            loss = nn.functional.cross_entropy(head(torch.cat([h_n[-2], h_n[-1]], -1)), yb)
            update(opt, params, loss)
        return time.perf_counter() - start, n * epochs

    return "RNNClassifier", f"GRU {H} bidirectional, {n} sequences of {T} x {F} x {epochs} epochs, batch {B}", \
        "sequences", \
        run_rnr, run_bare


# RNNForecaster: GRU 64, recursive, chunks of 256 steps, batch 32 ----------------------------------------------
def forecaster(quick: bool):
    B, T, H, chunk, n = 32, 512, 64, 256, (64 if quick else 1024)
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.standard_normal((n, T)), 1).astype(np.float32)
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(n), T), "ds": np.tile(np.arange(T), n),
                       "y": values.ravel()})

    def run_rnr():
        f = rnr.RNNForecaster(horizon=1, strategy="recursive", hidden_size=H, batch_size=B, chunk=chunk, epochs=1,
                              season=None, relative_to=None, scaler=None, max_minutes=None, progress=False)
        f.fit(df)
        return loop_seconds(f.history_), n * T

    def run_bare():
        torch.manual_seed(0)
        x = torch.from_numpy(values)[:, :, None]  # (N, T, 1)
        rnn, head = bare_rnn(1, H, "gru", False, B, chunk), nn.Linear(H, 1)
        params = [p for m in (rnn, head) for p in m.parameters()]
        opt = torch.optim.Adam(params, lr=3e-3)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        for i in range(0, n, B):
            xb, state = x[order[i : i + B]], None
            for c0 in range(0, T - 1, chunk):
                inp, target = xb[:, c0 : c0 + chunk], xb[:, c0 + 1 : c0 + chunk + 1]
                out, state = rnn(inp, state)
                pred = head(out[:, : target.shape[1]])
                update(opt, params, (pred - target).abs().mean())
                state = state.detach()
        return time.perf_counter() - start, n * T

    return "RNNForecaster", f"GRU {H}, {n} series of {T} steps, chunks of {chunk}, batch {B}", "steps", \
        run_rnr, run_bare


BENCHES = {"charlm": charlm, "seq2seq": seq2seq, "classifier": classifier, "forecaster": forecaster}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a few seconds per estimator")
    ap.add_argument("--only", choices=sorted(BENCHES), action="append", help="only these estimators")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both sides (default: torch's count)")
    args = ap.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    os.environ[RNR_THREADS] = str(threads)  # rnr's runs on the bare loop's threads, not a count it would choose
    print(machine())
    print(f"{'estimator':<14} {'rnr /s':>10} {'before /s':>10} {'bare /s':>10} {'rnr/bare':>8} {'bef/bare':>8}  "
          f"unit, sizes")
    for name in args.only or BENCHES:
        label, sizes, unit, run_rnr, run_bare = BENCHES[name](args.quick)
        sides = {"bare": run_bare, "rnr": run_rnr, "before": as_before(run_rnr)}
        best = dict.fromkeys(sides, float("inf"))
        for run in BENCHES[name](True)[3:]:  # warm-up at the quick sizes: the first calls of each path, untimed
            run()
        for _ in range(2):
            for side, run in sides.items():
                seconds, count = run()
                best[side] = min(best[side], seconds)
        rate = {side: count / s for side, s in best.items()}
        print(f"{label:<14} {rate['rnr']:>10,.0f} {rate['before']:>10,.0f} {rate['bare']:>10,.0f} "
              f"{rate['rnr'] / rate['bare']:>8.2f} {rate['before'] / rate['bare']:>8.2f}  {unit}; {sizes}",
              flush=True)


if __name__ == "__main__":
    main()
