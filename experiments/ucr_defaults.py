"""The UCR/UEA suite with the classifier's defaults only, as a user would: ``RNNClassifier().fit(X, y)``.

ArrowHead, GunPoint, ItalyPowerDemand, OSULeaf and PickupGestureWiimoteZ (unequal lengths) from
``../shared/data/ucr_suite`` and JapaneseVowels from ``../shared/data/japanese_vowels``, official splits; test
accuracy, mean +- std over seeds, and fit seconds, beside FCN and ResNet (Fawaz et al. 2019, dl-4-tsc).

    python experiments/ucr_defaults.py                                  # every set, 5 seeds
    python experiments/ucr_defaults.py --sets GunPoint --seeds 1 --set pooling="'max'"   # a variant
"""
import argparse
import ast
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnr.data.datasets import data_dir, load_ts, load_uea  # noqa: E402
from rnr.sequences.classifier import RNNClassifier  # noqa: E402

SETS = ["ArrowHead", "GunPoint", "ItalyPowerDemand", "OSULeaf", "PickupGestureWiimoteZ", "JapaneseVowels"]
PUBLISHED = {"ArrowHead": (84.3, 84.5), "GunPoint": (100.0, 99.1), "ItalyPowerDemand": (96.1, 96.3),
             "OSULeaf": (97.7, 97.9), "JapaneseVowels": (99.3, 99.2)}  # FCN, ResNet


def load(name: str):
    if name == "JapaneseVowels":
        return load_uea(name)
    root = data_dir()
    folder = None if root is None else root / "ucr_suite" / name
    if folder is None or not (folder / f"{name}_TRAIN.ts").is_file():
        return None
    return (*load_ts(folder / f"{name}_TRAIN.ts"), *load_ts(folder / f"{name}_TEST.ts"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="another argument of RNNClassifier (a Python literal), for comparing variants")
    args = p.parse_args(argv)
    extra = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    torch.set_num_threads(args.threads)
    print(f"machine: {os.cpu_count()} CPUs, {args.threads} threads, Python {platform.python_version()}, "
          f"torch {torch.__version__}; RNNClassifier({extra or ''})")
    rows = []
    for name in args.sets.split(","):
        loaded = load(name)
        if loaded is None:
            print(f"{name}: not found under the data folder (set RNR_DATA)", file=sys.stderr)
            continue
        X, y, X_test, y_test = loaded
        accs, secs, chosen = [], [], ""
        for seed in range(args.seeds):
            start = time.perf_counter()
            clf = RNNClassifier(random_state=seed, progress=False, **extra).fit(X, y)
            secs.append(time.perf_counter() - start)
            accs.append(100 * clf.score(X_test, y_test))
            chosen = getattr(clf, "chosen_", "")
        fcn, resnet = PUBLISHED.get(name, (None, None))
        rows.append({"data": name, "acc": np.mean(accs), "std": np.std(accs), "fit_s": np.mean(secs), "FCN": fcn,
                     "ResNet": resnet})
        print(f"{name}: {np.round(accs, 2).tolist()} in {np.round(secs, 1).tolist()} s; {chosen}", flush=True)
    table = pd.DataFrame(rows)
    print(table.round(2).to_string(index=False))
    print(f"mean accuracy {table['acc'].mean():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
