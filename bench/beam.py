"""Beam search in Seq2Seq: the batched search against the loop over one sentence at a time, one model, one process.

    python bench/beam.py                                      # hidden 512, 1,000 Multi30k test sentences, beam 5
    python bench/beam.py --hidden 256 --train-pairs 4000 --epochs 2   # the numbers below, about 2.5 minutes
    python bench/beam.py --hidden 64 --emb 64 --train-pairs 500 --sentences 60   # a quick look

One thread, x86_64, torch 2.13, other measurements running on the machine's second core; hidden 256, 3,962 target
words (4.5M parameters), outputs of 9.9 words on average: the loop over sentences 48.4 s, batched 12.3 s (3.9x),
1,000 of 1,000 outputs identical. The batched search alone on the same model, timed again, took 6.3 s: the
machine's other load moves these numbers by up to 2x.

A Seq2Seq shaped as in docs/results.md (bidirectional GRU encoder, GRU decoder with additive attention, output
layer tied to the decoder's word embedding) is trained for --epochs (1) on the first --train-pairs Multi30k pairs,
enough to have learnt to stop; its weights are not the point, only its sizes. The same source sentences (Multi30k's
test set; generated word-order sentences where Multi30k is absent) are then decoded by ``predict(beam_width=5)``
twice: with ``Decoder._beam`` (every sentence of a batch at once) and with ``Decoder._beam_reference`` (the loop it
is held to). Prints the machine, the sizes, both times, their ratio and whether every output is identical.
"""
import argparse
import json
import os
import platform
import time

import torch

from rnr.data.datasets import load_multi30k
from rnr.data.tasks import shuffle_words, toy_sentences
from rnr.sequences.seq2seq import Seq2Seq


def sentences(train_pairs: int, n: int):
    """(train sources, train targets, test sources, where they come from)."""
    data = load_multi30k()
    if data is not None:
        (Xtr, Ytr), (Xte, _) = data["train"], data["test"]
        return Xtr[:train_pairs], Ytr[:train_pairs], Xte[:n], "Multi30k de->en"
    Ytr = toy_sentences(train_pairs, seed=0)
    return shuffle_words(Ytr, seed=0), Ytr, shuffle_words(toy_sentences(n, seed=1), seed=1), "word order (toy)"


def timed_predict(s2s: Seq2Seq, X, beam: int, batch_size: int, reference: bool) -> tuple[list[str], float]:
    decoder = s2s.model_.decoder
    if reference:  # an instance attribute shadows the method for this call only
        decoder._beam = decoder._beam_reference
    try:
        start = time.perf_counter()
        out = s2s.predict(X, beam_width=beam, batch_size=batch_size)
        return out, time.perf_counter() - start
    finally:
        decoder.__dict__.pop("_beam", None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--emb", type=int, default=256)
    p.add_argument("--train-pairs", type=int, default=3000, help="trained on, so that the model stops")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--sentences", type=int, default=1000, help="sources decoded by each search")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch", type=int, default=128, help="predict's batch size")
    p.add_argument("--max-len", type=int, default=80, help="the longest output")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    Xtr, Ytr, X, source = sentences(args.train_pairs, args.sentences)
    start = time.perf_counter()
    s2s = Seq2Seq(hidden_size=args.hidden, embedding_dim=args.emb, epochs=args.epochs, max_len=args.max_len, lr=2e-3,
                  max_minutes=None, progress=False).fit(Xtr, Ytr)
    train_s = time.perf_counter() - start
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    sizes = {"data": source, "train_pairs": len(Xtr), "epochs": args.epochs, "sentences": len(X), "beam": args.beam,
             "batch": args.batch, "hidden": args.hidden, "embedding": args.emb,
             "source_vocab": len(s2s.source_tokenizer_), "target_vocab": len(s2s.target_tokenizer_) + 1,
             "parameters": sum(q.numel() for q in s2s.model_.parameters()), "train_seconds": round(train_s, 1)}
    print(machine, flush=True)
    print(sizes, flush=True)

    for reference in (False, True):  # warm both paths up on a few sentences
        timed_predict(s2s, X[:8], args.beam, args.batch, reference)
    batched, batched_s = timed_predict(s2s, X, args.beam, args.batch, reference=False)
    loop, loop_s = timed_predict(s2s, X, args.beam, args.batch, reference=True)
    same = sum(a == b for a, b in zip(batched, loop))
    words = sum(len(s.split()) for s in batched) / len(batched)
    result = {"machine": machine, "sizes": sizes, "reference_seconds": round(loop_s, 2),
              "batched_seconds": round(batched_s, 2), "speedup": round(loop_s / batched_s, 2),
              "identical": same == len(X), "identical_outputs": same, "mean_output_words": round(words, 1)}
    print(f"beam {args.beam}, {len(X)} sentences: loop over sentences {loop_s:.1f} s, batched {batched_s:.1f} s, "
          f"{loop_s / batched_s:.1f}x; identical outputs {same}/{len(X)} (mean {words:.1f} words)", flush=True)
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if same == len(X) else 1


if __name__ == "__main__":
    raise SystemExit(main())
