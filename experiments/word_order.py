"""Restoring word order: English sentences of Multi30k with their words shuffled, back to the original sentence
(the seed's example of a delayed many-to-many task). Seq2Seq with attention; exact match and BLEU on the test
split, whose sentences the model never saw (a fixed shuffle per sentence).

A shuffled sentence often has more than one good order ("a man and a woman" / "a woman and a man"), so exact
match understates how well the order is restored; BLEU counts the n-grams that come back.

    python experiments/word_order.py                        # the defaults
    python experiments/word_order.py --epochs 1 --limit 3000
"""
import argparse
import json
import platform
import sys
import time

import torch

from rnr.data.datasets import load_multi30k
from rnr.data.tasks import shuffle_words
from rnr.metrics import bleu
from rnr.sequences.seq2seq import Seq2Seq


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--emb", type=int, default=128)
    p.add_argument("--attention", default="additive")
    p.add_argument("--emb-dropout", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--limit", type=int, default=None, help="train on the first N sentences only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    data = load_multi30k()
    if data is None:
        print("Multi30k not found: set RNR_DATA or place it at ../shared/data/multi30k", file=sys.stderr)
        return 2
    train, val, test = data["train"][1], data["val"][1], data["test"][1]
    if args.limit:
        train = train[: args.limit]
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; train {len(train)}, "
          f"val {len(val)}, test {len(test)}; {vars(args)}", flush=True)
    s2s = Seq2Seq(hidden_size=args.hidden, embedding_dim=args.emb, attention=args.attention,
                  embedding_dropout=args.emb_dropout, min_count=1, batch_size=args.batch, lr=args.lr,
                  lr_schedule="cosine", epochs=args.epochs, random_state=args.seed, progress=False)
    start = time.perf_counter()
    # one fixed shuffle per sentence, drawn from the seed
    s2s.fit(shuffle_words(train, seed=args.seed), train, shuffle_words(val, seed=1), val)
    minutes = (time.perf_counter() - start) / 60
    for row in s2s.history_.rows:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    shuffled, refs = shuffle_words(test, seed=2), s2s.references(test)
    result = {"args": vars(args), "train_minutes": minutes, "history": s2s.history_.rows}
    for beam in sorted({1, args.beam}):
        hyp = s2s.predict(shuffled, beam_width=beam)
        exact = sum(h == r for h, r in zip(hyp, refs)) / len(refs)
        same_words = sum(sorted(h.split()) == sorted(r.split()) for h, r in zip(hyp, refs)) / len(refs)
        score = bleu(hyp, refs, tokenize="none")
        base = bleu(shuffled, refs, tokenize="none")
        print(f"beam {beam}: exact match {exact:.3f}, output uses exactly the input's words {same_words:.3f}, "
              f"BLEU {score:.2f} (the shuffled input itself: BLEU {base:.2f})", flush=True)
        result[f"beam{beam}"] = {"exact": exact, "same_words": same_words, "bleu": score, "bleu_input": base,
                                 "examples": list(zip(shuffled[:5], hyp[:5]))}
    print(f"{minutes:.1f} min of training")
    for src, ref, hyp in zip(shuffled[:5], refs[:5], hyp[:5]):  # the last decoding: beam of args.beam
        print(f"  in:  {src}\n  ref: {ref}\n  out: {hyp}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
