"""The UCR/UEA suite: rnr's classifier defaults beside the peers a time-series user would reach for, on the same
splits: MiniRocket (Dempster, Schmidt & Webb 2021) and 1-NN with full-window DTW, both from aeon.

    python bench/ucr_peers.py --setup                # build bench/.ucr-peers-venv only (also done on first run)
    python bench/ucr_peers.py                        # every set: rnr (5 seeds), MiniRocket (5 seeds), 1-NN DTW
    python bench/ucr_peers.py --sets GunPoint --models minirocket,dtw --seeds 1

The data are experiments/ucr_defaults.py's (``../shared/data/ucr_suite`` and ``../shared/data/japanese_vowels``,
official train/test splits). rnr runs ``RNNClassifier(random_state=seed).fit(X, y)`` in this environment; the
peers run in bench/.ucr-peers-venv (aeon, pinned below; never an rnr dependency), each model and data set in a
process of its own held to one thread, so that the seconds compare per core. aeon's MiniRocket takes
sequences of equal length only: PickupGestureWiimoteZ's are padded at the end with each sequence's last value for
it (1-NN DTW reads them as they are). Fit seconds run from the arrays to a fitted model; accuracy is on the test
split, mean +- std over seeds (1-NN DTW has no randomness: one run). MiniRocket is fitted once untimed first, so
that numba's compilation is not counted; 1-NN DTW does its work when it predicts, hence fit+predict seconds too.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".ucr-peers-venv"
REQUIREMENTS = "aeon==1.6.0\n"
SETS = ["ArrowHead", "GunPoint", "ItalyPowerDemand", "OSULeaf", "PickupGestureWiimoteZ", "JapaneseVowels"]
MODELS = ("rnr", "minirocket", "dtw")
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}


def peers_python() -> Path:
    """The peers venv's python, built first when missing or made from other requirements."""
    python, stamp = VENV / "bin" / "python", VENV / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == REQUIREMENTS:
        return python
    print(f"building {VENV} ({REQUIREMENTS.strip()}; a minute or two, once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS.split()], check=True)
    stamp.write_text(REQUIREMENTS)
    return python


# the child: one peer on one data set, in the peers venv ---------------------------------------------------------
def unpack(blob, split: str) -> tuple[list, np.ndarray]:
    values, lengths = blob[f"{split}_values"], blob[f"{split}_lengths"]
    return np.split(values, np.cumsum(lengths)[:-1]), blob[f"{split}_y"]


def child_main(args) -> int:
    blob = np.load(args.data, allow_pickle=False)
    (X, y), (X_test, y_test) = unpack(blob, "train"), unpack(blob, "test")
    equal = len({len(s) for s in X + X_test}) == 1
    if args.peer == "minirocket":
        from aeon.classification.convolution_based import MiniRocketClassifier

        T = max(len(s) for s in X + X_test)
        def pad(seqs):  # (n, C, T): each sequence padded with its last value
            return np.stack([np.concatenate([s, np.repeat(s[-1:], T - len(s), 0)]).T for s in seqs])

        model = MiniRocketClassifier(random_state=args.seed, n_jobs=1)
        X, X_test = pad(X), pad(X_test)
    else:
        from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

        model = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw", n_jobs=1)
        if equal:
            X, X_test = np.stack([s.T for s in X]), np.stack([s.T for s in X_test])
        else:
            X, X_test = [s.T for s in X], [s.T for s in X_test]
    if args.peer == "minirocket":
        model.fit(X, y)  # untimed: numba compiles MiniRocket's kernels on the first call in a process
    start = time.perf_counter()
    model.fit(X, y)
    fit_s = time.perf_counter() - start
    acc = float((model.predict(X_test) == y_test).mean())
    print(json.dumps({"accuracy": 100 * acc, "fit_s": fit_s, "total_s": time.perf_counter() - start}))
    return 0


# the parent ----------------------------------------------------------------------------------------------------
def pack(path: Path, X, y, X_test, y_test) -> None:
    def flat(seqs):
        seqs = [np.asarray(s, np.float64).reshape(len(s), -1) for s in seqs]
        return np.concatenate(seqs), np.array([len(s) for s in seqs])

    (v, n), (vt, nt) = flat(X), flat(X_test)
    np.savez(path, train_values=v, train_lengths=n, train_y=np.asarray(y).astype(str), test_values=vt,
             test_lengths=nt, test_y=np.asarray(y_test).astype(str))


def run_rnr(X, y, X_test, y_test, seed: int) -> dict:
    import torch

    from rnr.sequences.classifier import RNNClassifier

    torch.set_num_threads(1)
    start = time.perf_counter()
    clf = RNNClassifier(random_state=seed, progress=False).fit(X, y)
    fit_s = time.perf_counter() - start
    acc = 100 * clf.score(X_test, y_test)
    return {"accuracy": acc, "fit_s": fit_s, "total_s": time.perf_counter() - start, "chosen": str(clf.chosen_)}


def run_peer(python: Path, peer: str, data: Path, seed: int) -> dict:
    cmd = [str(python), __file__, "--peer", peer, "--data", str(data), "--seed", str(seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    if done.returncode != 0:
        raise RuntimeError(f"{peer} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setup", action="store_true", help="build the peers venv and stop")
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--peer", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peer:
        return child_main(args)
    python = peers_python()
    if args.setup:
        return 0
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "experiments"))
    from ucr_defaults import load  # the loaders of the defaults experiment: the same splits

    import torch

    models = args.models.split(",")
    print(f"machine: {os.cpu_count()} CPUs, one thread per model, Python {platform.python_version()}, torch "
          f"{torch.__version__}, {REQUIREMENTS.strip()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            loaded = load(name)
            if loaded is None:
                print(f"{name}: not found under the data folder (set RNR_DATA)", file=sys.stderr)
                continue
            data = Path(tmp) / f"{name}.npz"
            pack(data, *loaded)
            for model in models:
                seeds = 1 if model == "dtw" else args.seeds
                runs = [run_rnr(*loaded, seed) if model == "rnr" else run_peer(python, model, data, seed)
                        for seed in range(seeds)]
                acc = [r["accuracy"] for r in runs]
                row = {"data": name, "model": model, "acc": float(np.mean(acc)), "std": float(np.std(acc)),
                       "seeds": seeds, "fit_s": float(np.mean([r["fit_s"] for r in runs])),
                       "total_s": float(np.mean([r["total_s"] for r in runs])), "runs": acc}
                rows.append(row)
                print(f"{name:22s} {model:11s} {row['acc']:6.2f} +- {row['std']:5.2f}  fit {row['fit_s']:7.1f} s  "
                      f"fit+predict {row['total_s']:7.1f} s  {np.round(acc, 2).tolist()}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    for model in models:
        mine = [r["acc"] for r in rows if r["model"] == model]
        if mine:
            print(f"{model}: mean accuracy over {len(mine)} sets {np.mean(mine):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
