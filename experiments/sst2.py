"""SST-2 (binary sentiment, sentence level): RNNClassifier on words with a randomly initialised embedding.

Reference: Kim (2014)'s CNN with random embeddings, 82.7% (trained also on phrase-level labels, which this copy
lacks). Reports test accuracy, mean and std over seeds, and the training time.

    python experiments/sst2.py                 # 3 seeds
    python experiments/sst2.py --seeds 1 --epochs 4
"""
import argparse
import platform
import sys
import time

import numpy as np
import torch

from rnr.data.datasets import load_sst2
from rnr.sequences.classifier import RNNClassifier


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--emb", type=int, default=128)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--pooling", default="max")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--wd", type=float, default=0.0)
    p.add_argument("--min-count", type=int, default=1)
    p.add_argument("--emb-dropout", type=float, default=0.0)
    p.add_argument("--patience", type=int, default=None, help="early stopping on the dev set (keeps the best epoch)")
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--defaults", action="store_true",
                   help="RNNClassifier(tokenizer='word', random_state=seed) with nothing else set, as a user calls it")
    args = p.parse_args(argv)
    data = load_sst2()
    if data is None:
        print("SST-2 not found: set RNR_DATA or place it at ../shared/data/sst2", file=sys.stderr)
        return 2
    (Xtr, ytr), (Xdev, ydev), (Xte, yte) = data["train"], data["dev"], data["test"]
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; train {len(Xtr)}, "
          f"dev {len(Xdev)}, test {len(Xte)}; {vars(args)}")
    accs = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        if args.defaults:
            clf = RNNClassifier(tokenizer="word", random_state=seed, progress=False).fit(Xtr, ytr)
        else:
            clf = RNNClassifier(hidden_size=args.hidden, embedding_dim=args.emb, cell=args.cell, pooling=args.pooling,
                                epochs=args.epochs, lr=args.lr, dropout=args.dropout, weight_decay=args.wd,
                                min_count=args.min_count, batch_size=args.batch, embedding_dropout=args.emb_dropout,
                                patience=args.patience, lr_schedule=args.schedule, random_state=seed)
            clf.fit(Xtr, ytr, *((Xdev, ydev) if args.patience else ()))
        secs = time.perf_counter() - start
        accs.append(100 * clf.score(Xte, yte))
        best = clf.history_.best_epoch if (args.patience or args.defaults) else len(clf.history_)
        print(f"seed {seed}: dev {100 * clf.score(Xdev, ydev):.2f}%, test {accs[-1]:.2f}% ({secs:.0f} s to train, "
              f"{len(clf.history_)} epochs, epoch {best} kept; {clf!r})", flush=True)
    print(f"test accuracy {np.mean(accs):.2f} +- {np.std(accs):.2f} % over {len(accs)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
