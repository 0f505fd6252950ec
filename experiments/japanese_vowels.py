"""UEA JapaneseVowels (9 speakers, 12 channels, lengths 7-29): RNNClassifier's test accuracy over seeds.

Published deep baselines on the same 270/370 split (Fawaz et al. 2019): FCN 99.3, ResNet 99.2, MLP 97.6.

    python experiments/japanese_vowels.py                 # 5 seeds, mean and std of the test accuracy
    python experiments/japanese_vowels.py --seeds 1 --epochs 20
"""
import argparse
import platform
import sys
import time

import numpy as np
import torch

from rnr.data.datasets import load_uea
from rnr.sequences.classifier import RNNClassifier


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--cell", default="gru")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--pooling", default="last")
    p.add_argument("--wd", type=float, default=0.0, help="weight decay")
    p.add_argument("--layers", type=int, default=1)
    args = p.parse_args(argv)
    data = load_uea("JapaneseVowels")
    if data is None:
        print("JapaneseVowels not found: set RNR_DATA or place it at ../shared/data/japanese_vowels", file=sys.stderr)
        return 2
    X_train, y_train, X_test, y_test = data
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"train {len(X_train)}, test {len(X_test)}; {vars(args)}")
    accs = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        clf = RNNClassifier(hidden_size=args.hidden, cell=args.cell, epochs=args.epochs, lr=args.lr,
                            batch_size=args.batch, dropout=args.dropout, pooling=args.pooling, random_state=seed,
                            weight_decay=args.wd, num_layers=args.layers)
        clf.fit(X_train, y_train)
        accs.append(100 * clf.score(X_test, y_test))
        print(f"seed {seed}: test accuracy {accs[-1]:.2f}%  ({time.perf_counter() - start:.1f} s)", flush=True)
    print(f"mean {np.mean(accs):.2f} +- {np.std(accs):.2f} % over {len(accs)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
