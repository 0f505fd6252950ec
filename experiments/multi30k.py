"""Translation, German to English, on Multi30k (task 1): Seq2Seq (a bidirectional GRU encoder, a GRU decoder with
attention) trained within a time budget; test BLEU, greedy and beam.

BLEU is reported two ways: (1) on the lower-cased tokenised text, the way bentrevett/pytorch-seq2seq reports
it (GRU 20.6, GRU + attention 28.3; GPU), here with sacrebleu's tokenize="none"; (2) sacrebleu's standard
13a tokenisation, lower-cased, of the output detokenised against the original (raw) English references.

    python experiments/multi30k.py                      # the defaults: at most 12 epochs, within 45 minutes
    python experiments/multi30k.py --epochs 1 --limit 2000
"""
import argparse
import json
import platform
import re
import sys
import time

import torch

from rnr.data.datasets import load_multi30k
from rnr.metrics import bleu
from rnr.sequences.seq2seq import Seq2Seq


def detokenize(text: str) -> str:
    """Undo Moses-style tokenisation well enough for BLEU on raw text: entities, spaces before punctuation."""
    text = text.replace("&apos;", "'").replace("&quot;", '"').replace("&amp;", "&")
    text = re.sub(r" ([.,!?;:%)])", r"\1", text)
    text = re.sub(r"([(]) ", r"\1", text)
    return re.sub(r" (n't|'s|'re|'ve|'m|'ll|'d)\b", r"\1", text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--minutes", type=float, default=45.0, help="training time budget")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--emb", type=int, default=256)
    p.add_argument("--cell", default="gru")
    p.add_argument("--attention", default="additive")
    p.add_argument("--emb-dropout", type=float, default=0.3)
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", default=None)
    p.add_argument("--teacher-forcing", type=float, default=1.0)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--limit", type=int, default=None, help="train on the first N pairs only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="write the model here (rnr.save)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    data, raw = load_multi30k(), load_multi30k(tokenised=False)
    if data is None:
        print("Multi30k not found: set RNR_DATA or place it at ../shared/data/multi30k", file=sys.stderr)
        return 2
    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = data["train"], data["val"], data["test"]
    if args.limit:
        Xtr, Ytr = Xtr[: args.limit], Ytr[: args.limit]
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; train {len(Xtr)}, "
          f"val {len(Xva)}, test {len(Xte)}; {vars(args)}", flush=True)
    s2s = Seq2Seq(hidden_size=args.hidden, embedding_dim=args.emb, cell=args.cell, attention=args.attention,
                  embedding_dropout=args.emb_dropout, min_count=args.min_count, batch_size=args.batch, lr=args.lr,
                  lr_schedule=args.schedule, teacher_forcing=args.teacher_forcing, epochs=args.epochs,
                  patience=args.epochs, max_minutes=args.minutes, random_state=args.seed, progress=False)
    start = time.perf_counter()
    s2s.fit(Xtr, Ytr, Xva, Yva)
    minutes = (time.perf_counter() - start) / 60
    for row in s2s.history_.rows:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    print(f"vocabulary: {len(s2s.source_tokenizer_)} de, {len(s2s.target_tokenizer_)} en; "
          f"{sum(p.numel() for p in s2s.model_.parameters()):,} parameters; {minutes:.1f} min of training")
    result = {"args": vars(args), "train_minutes": minutes, "history": s2s.history_.rows}
    refs = s2s.references(Yte)
    for beam in sorted({1, args.beam}):
        t = time.perf_counter()
        hyp = s2s.predict(Xte, beam_width=beam)
        tok = bleu(hyp, refs, tokenize="none")
        sacre = bleu([detokenize(h) for h in hyp], raw["test"][1], tokenize="13a", lowercase=True)
        print(f"beam {beam}: test BLEU {tok:.2f} (tokenised, lower-cased), sacreBLEU {sacre:.2f} (13a, -lc, raw "
              f"references); decoding {time.perf_counter() - t:.0f}s", flush=True)
        result[f"beam{beam}"] = {"bleu_tok": tok, "sacrebleu_13a_lc": sacre, "examples": hyp[:5]}
    for src, ref, hyp in zip(Xte[:5], refs[:5], result[f"beam{args.beam}"]["examples"]):
        print(f"  de:  {src}\n  ref: {ref}\n  out: {hyp}")
    if args.save:
        from rnr.io import save

        save(s2s, args.save)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
