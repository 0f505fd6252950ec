"""Character language model on tiny Shakespeare: validation loss (nats and bits per character) within a time
budget, and samples.

Reference (nanoGPT's README, same split: the last 10% of characters held out): 1.4697 nats for a 6-layer
transformer on an A100; about 1.88 for its small configuration on a laptop CPU in about 3 minutes.

    python experiments/charlm.py                       # 15 minutes on this machine
    python experiments/charlm.py --minutes 2 --hidden 256
    python experiments/charlm.py --defaults            # CharLM(max_minutes=15) and nothing else
"""
import argparse
import json
import platform
import sys
import time

import torch

from rnr.data.datasets import load_tinyshakespeare
from rnr.sequences.charlm import CharLM


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    p.add_argument("--epochs", type=int, default=30, help="at most this many epochs (the time budget usually ends "
                   "the run first)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--emb", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--wd", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="write the model here (rnr.save)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--defaults", action="store_true",
                   help="CharLM(max_minutes=MINUTES, random_state=SEED) with nothing else set, as a user calls it")
    args = p.parse_args(argv)
    data = load_tinyshakespeare()
    if data is None:
        print("tiny Shakespeare not found: set RNR_DATA or place it at ../shared/data/tinyshakespeare",
              file=sys.stderr)
        return 2
    train, val = data
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}; train {len(train):,} chars, val {len(val):,}; {vars(args)}", flush=True)
    if args.defaults:
        lm = CharLM(max_minutes=args.minutes, random_state=args.seed, progress=False)
    else:
        lm = CharLM(hidden_size=args.hidden, num_layers=args.layers, cell=args.cell, embedding_dim=args.emb,
                    dropout=args.dropout, seq_len=args.seq_len, batch_size=args.batch, epochs=args.epochs,
                    lr=args.lr, weight_decay=args.wd, max_minutes=args.minutes, random_state=args.seed,
                    progress=False)
    start = time.perf_counter()
    lm.fit(train, val)
    seconds = time.perf_counter() - start
    for row in lm.history_.rows:
        print(f"epoch {row['epoch']:3d}  steps {row['steps']:6d}  train {row['train_loss']:.4f}  "
              f"val {row['val_nats']:.4f} nats ({row['val_bits']:.3f} bits)  lr {row['lr']:.2e}  {row['seconds']:.0f}s",
              flush=True)
    exact = lm.evaluate(val, streams=1)
    print(f"best validation loss {exact['nats']:.4f} nats/char = {exact['bits']:.4f} bits/char (one pass over "
          f"{exact['chars']:,} chars); {seconds / 60:.1f} min of training in all")
    samples = {t: lm.sample(300, prime="ROMEO:", temperature=t, seed=1) for t in (0.8,)}
    samples["top_p=0.9"] = lm.sample(300, prime="ROMEO:", top_p=0.9, seed=1)
    samples["beam 5"] = lm.beam_search(120, prime="ROMEO:", beam_width=5)
    for k, s in samples.items():
        print(f"\n--- sample ({k}) ---\nROMEO:{s}")
    if args.save:
        from rnr.io import save

        save(lm, args.save)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "val_nats": exact["nats"], "val_bits": exact["bits"],
                       "minutes": seconds / 60, "history": lm.history_.rows,
                       "samples": {str(k): v for k, v in samples.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
