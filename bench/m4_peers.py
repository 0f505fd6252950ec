"""M4 Hourly: rnr against neuralforecast and darts recurrent models, on fit time, predict time and OWA.

Every model sees the 414 training series, forecasts 48 steps, and is scored with rnr's own M4 metrics against
Hourly-test.csv (sMAPE, MASE with m = 24, OWA against Naive2 18.383 / 2.395), as in experiments/m4_hourly.py.

    python bench/m4_peers.py                                   # all six models, --steps 940 (20 rnr epochs)
    python bench/m4_peers.py --steps 94 --models rnr-lstm neuralforecast-lstm

The peers live in their own virtual environment, bench/.peers-venv, built on first use from
bench/peers-requirements.txt (the CPU build of torch first, as the Makefile installs it, then neuralforecast
and darts); they are never rnr dependencies. This script runs rnr in its own process and each peer in a child
process ``<peers venv>/bin/python bench/m4_peers.py --peer NAME``, which reads the series from a temp file and
writes back its forecasts and timings. Every process uses torch's default threads (all cores), on the CPU.

How the settings are matched (rnr's defaults of experiments/m4_hourly.py otherwise):

- horizon 48 and one hidden layer of 64 units of the same cell: LSTM, or Elman/tanh (rnr ``cell="elman"``,
  neuralforecast ``RNN``, darts ``model="RNN"``); MAE loss everywhere (darts: ``loss_fn=L1Loss()``).
- input window 256: rnr reads each whole series with the state carried across chunks of ``chunk=256`` steps,
  so gradients flow back 256 steps (truncated BPTT) and a forecast reads the whole history through the state.
  Peers read windows: neuralforecast ``input_size=256`` (training and inference windows); darts
  ``input_chunk_length=256`` with ``training_length=256 + 48``, which darts advises so that training runs the RNN
  as many steps as a 48-step forecast does. Peers cannot carry a state across windows, rnr can.
- optimiser steps: rnr takes one step per chunk of each batch of 32 series (batches of similar lengths), 47 per
  epoch on M4 Hourly; ``--steps`` is rounded to whole rnr epochs and the peers get exactly rnr's count
  (neuralforecast ``max_steps``, darts Lightning ``max_steps``). Each process counts real ``optimizer.step``
  calls with a torch hook; the table prints those counts.
- 32 samples per step: rnr 32 series chunks (<= 32 x 256 cell steps); neuralforecast 32 windows
  (``windows_batch_size=32``, its default is 128) from 32 series; darts batches of 32 windows.
- each library keeps its own learning rate, schedule and scaling: rnr Adam 3e-3 cosine-decayed, standard
  scaling per series, forecasts relative to the seasonal naive; neuralforecast Adam 1e-3, robust scaling per
  window; darts Adam 1e-3 on series min-max scaled with darts' ``Scaler``.

Fit seconds run from the long DataFrame (darts: the arrays) to a fitted model, scaling included; predict seconds
from the fitted model to the 48 forecasts of every series. "fit ratio" is the peer's fit time over rnr's with the
same cell, in this run. The models run one after another, so other work on the machine can slow one and not
another: the "others" column gives the cores other processes kept busy during each model (from /proc/stat), and
a ratio is only worth quoting where it is near 0 for both models.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HORIZON, SEASON = 48, 24
NAIVE2 = (18.383, 2.395)  # M4's official Naive2 sMAPE and MASE on Hourly
BATCH = 32                # samples per optimiser step, every library
HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers-venv"
REQUIREMENTS = HERE / "peers-requirements.txt"
MODELS = {  # name -> (library, cell)
    "rnr-lstm": ("rnr", "lstm"),
    "rnr-elman": ("rnr", "elman"),
    "neuralforecast-lstm": ("neuralforecast", "lstm"),
    "neuralforecast-rnn": ("neuralforecast", "elman"),
    "darts-lstm": ("darts", "lstm"),
    "darts-rnn": ("darts", "elman"),
}


class StepCounter:
    """Counts every ``optimizer.step`` of any torch optimiser inside the ``with`` block, in ``n``."""

    def __enter__(self) -> "StepCounter":
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.n = 0
        self._handle = register_optimizer_step_post_hook(self._count)
        return self

    def _count(self, optimizer, args, kwargs) -> None:
        self.n += 1

    def __exit__(self, *exc) -> None:
        self._handle.remove()


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds the machine has been busy, CPU seconds used by this process and its ended children), or None
    where /proc/stat is missing. Their difference over a run is the CPU time other processes took meanwhile."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:8]]  # user nice system idle iowait irq softirq
    except OSError:
        return None
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    own = sum(getattr(resource.getrusage(who), kind) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for kind in ("ru_utime", "ru_stime"))
    return busy, own


def rnr_steps_per_epoch(lengths: np.ndarray, batch: int, chunk: int) -> int:
    """Optimiser steps in one rnr epoch, as ``RNNForecaster._train`` batches: series sorted by length, ``batch``
    at a time, one step per chunk of the longest series of the batch."""
    order = np.argsort(lengths, kind="stable")
    return sum(-(-int(lengths[order[i : i + batch]].max()) // chunk) for i in range(0, len(order), batch))


# rnr, in this process ----------------------------------------------------------------------------------------
def fit_rnr(train, ids, cell: str, epochs: int, args) -> dict:
    import pandas as pd

    from rnr.forecast.forecaster import RNNForecaster

    df = pd.concat([pd.DataFrame({"unique_id": i, "ds": np.arange(len(y)), "y": y}) for i, y in zip(ids, train)])
    start = time.perf_counter()
    with StepCounter() as steps:
        f = RNNForecaster(HORIZON, season=SEASON, epochs=epochs, hidden_size=args.hidden, cell=cell,
                          chunk=args.window, batch_size=BATCH, relative_to="seasonal_naive", random_state=args.seed).fit(df)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = f.predict()
    by_id = {uid: g["y_hat"].to_numpy() for uid, g in pred.groupby("unique_id", sort=False)}
    predict_s = time.perf_counter() - start
    return {"fit_s": fit_s, "predict_s": predict_s, "steps": steps.n,
            "forecast": np.stack([by_id[i] for i in ids])}


# peers, in the peers' venv ------------------------------------------------------------------------------------
def peers_python(rebuild: bool = False) -> Path:
    """The peers venv's python, building the venv first when it is missing or older than the requirements."""
    python, stamp = VENV / "bin" / "python", VENV / ".installed"
    wanted = REQUIREMENTS.read_text()
    if not rebuild and python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"building {VENV} from {REQUIREMENTS.name} (a few minutes, once)", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    torch_pin = next(line for line in wanted.splitlines() if line.startswith("torch=="))
    subprocess.run(pip + [torch_pin], check=True)  # the CPU build first, so nothing pulls a multi-GB CUDA build
    subprocess.run(pip + ["-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(wanted)
    print(f"built {VENV} in {time.perf_counter() - start:.0f} s", flush=True)
    return python


def run_peer(python: Path, name: str, data: Path, steps: int, args, workdir: Path) -> dict:
    """Run one peer with the peers venv's python; its forecasts come back as (S, 48) in the order of the series."""
    out = workdir / f"{name}.npy"
    log = workdir / f"{name}.log"
    cmd = [str(python), __file__, "--peer", name, "--data", str(data), "--out", str(out), "--steps", str(steps), "--window", str(args.window), "--hidden", str(args.hidden),
           "--seed", str(args.seed)]
    with open(log, "w") as fh:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True, cwd=workdir)
    if done.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{name} failed (exit {done.returncode}); the end of its log:\n{tail}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["forecast"] = np.load(out)
    return result


def peer_main(args) -> int:
    """The child side: fit one peer on the series in ``args.data``, print one JSON line, save the forecasts."""
    import torch

    blob = np.load(args.data)
    series = np.split(blob["values"], blob["offsets"][1:-1])
    library, cell = MODELS[args.peer]
    fit = {"neuralforecast": fit_neuralforecast, "darts": fit_darts}[library]
    with StepCounter() as steps:
        result = fit(series, cell, args)
    np.save(args.out, result.pop("forecast"))
    versions = {m: __import__(m).__version__ for m in ("torch", "neuralforecast", "darts", "pytorch_lightning")}
    print(json.dumps({**result, "steps": steps.n, "threads": torch.get_num_threads(),
                      "versions": versions}))
    return 0


def trainer_kwargs() -> dict:
    """Lightning settings for a quiet CPU run: no progress bar, logger, checkpoints or model summary."""
    return dict(accelerator="cpu", devices=1, enable_progress_bar=False, enable_checkpointing=False, logger=False,
                enable_model_summary=False)


def fit_neuralforecast(series: list, cell: str, args) -> dict:
    import pandas as pd
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM, RNN

    df = pd.concat([pd.DataFrame({"unique_id": i, "ds": np.arange(len(y)), "y": y}) for i, y in enumerate(series)])
    start = time.perf_counter()
    model = (LSTM if cell == "lstm" else RNN)(
        h=HORIZON, input_size=args.window, encoder_n_layers=1, encoder_hidden_size=args.hidden, max_steps=args.steps,
        batch_size=BATCH, windows_batch_size=BATCH, random_seed=args.seed, **trainer_kwargs())
    nf = NeuralForecast(models=[model], freq=1)
    nf.fit(df)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = nf.predict()
    column = type(model).__name__
    forecast = np.stack([g[column].to_numpy() for _, g in pred.sort_values(["unique_id", "ds"]).groupby("unique_id")])
    return {"fit_s": fit_s, "predict_s": time.perf_counter() - start, "forecast": forecast}  # (S, 48)


def fit_darts(series: list, cell: str, args) -> dict:
    import torch
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from darts.models import RNNModel

    start = time.perf_counter()
    scaler = Scaler()  # min-max per series
    scaled = scaler.fit_transform([TimeSeries.from_values(y.astype(np.float32)) for y in series])
    model = RNNModel(input_chunk_length=args.window, training_length=args.window + HORIZON,
                     model="LSTM" if cell == "lstm" else "RNN", hidden_dim=args.hidden, n_rnn_layers=1,
                     batch_size=BATCH, n_epochs=10**6, loss_fn=torch.nn.L1Loss(), random_state=args.seed,
                     work_dir=tempfile.mkdtemp(), pl_trainer_kwargs={**trainer_kwargs(), "max_steps": args.steps})
    model.fit(scaled, verbose=False)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = scaler.inverse_transform(model.predict(n=HORIZON, series=scaled, verbose=False))
    forecast = np.stack([p.values()[:, 0] for p in pred])  # (S, 48)
    return {"fit_s": fit_s, "predict_s": time.perf_counter() - start, "forecast": forecast}


# the table ---------------------------------------------------------------------------------------------------
def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    git = ["git", "-C", str(HERE.parent)]
    rev = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(git + ["status", "--porcelain", "rnr"], capture_output=True, text=True).stdout.strip()
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"Python {platform.python_version()}; rnr at {rev or '?'}{' with uncommitted rnr/ changes' if dirty else ''}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--steps", type=int, default=940, help="optimiser steps, rounded to whole rnr epochs")
    p.add_argument("--window", type=int, default=256, help="rnr's chunk (BPTT length) and the peers' input window")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rebuild-venv", action="store_true", help="rebuild bench/.peers-venv from the requirements")
    p.add_argument("--json", help="also write the table here")
    p.add_argument("--peer", choices=[m for m in MODELS if not m.startswith("rnr")], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peer:
        return peer_main(args)

    from rnr.data.datasets import load_m4
    from rnr.forecast.baselines import SeasonalNaive
    from rnr.metrics import evaluate_panel, owa

    loaded = load_m4("Hourly")
    if loaded is None:
        print("M4 data not found: set RNR_DATA or place it at ../shared/data/m4", file=sys.stderr)
        return 2
    train, test, ids = loaded
    lengths = np.array([len(y) for y in train])
    per_epoch = rnr_steps_per_epoch(lengths, BATCH, args.window)
    epochs = max(1, round(args.steps / per_epoch))
    steps = epochs * per_epoch
    print(f"{steps} optimiser steps for every model ({epochs} rnr epochs of {per_epoch} steps)", flush=True)
    python = peers_python(args.rebuild_venv) if any(MODELS[m][0] != "rnr" for m in args.models) else None
    results, versions = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.npz"
        np.savez(data, values=np.concatenate(train), offsets=np.concatenate([[0], np.cumsum(lengths)]))
        for name in args.models:
            library, cell = MODELS[name]
            before, start = cpu_seconds(), time.perf_counter()
            if library == "rnr":
                results[name] = fit_rnr(train, ids, cell, epochs, args)
            else:
                results[name] = run_peer(python, name, data, steps, args, Path(tmp))
                versions = results[name].pop("versions")
            r = results[name]
            after, wall = cpu_seconds(), time.perf_counter() - start
            if before and after:  # cores kept busy by other processes while this model ran, on average
                r["others"] = max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / wall
            print(f"{name}: fit {r['fit_s']:.1f} s, predict {r['predict_s']:.2f} s, {r['steps']} steps", flush=True)
    snaive = SeasonalNaive(SEASON).fit(train).predict(HORIZON)

    print(f"\nM4 Hourly, 414 series, horizon {HORIZON}, window {args.window}, hidden {args.hidden}, {steps} steps of "
          f"{BATCH} samples\n{machine()}")
    if versions:
        print("peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"{'model':<21} {'steps':>6} {'fit s':>8} {'predict s':>10} {'sMAPE':>7} {'MASE':>7} {'OWA':>7} "
          f"{'fit ratio':>10} {'others':>7}")
    table = []
    for name, r in [*results.items(), ("seasonal naive", {"forecast": snaive})]:
        s = evaluate_panel(test, r["forecast"], train, m=SEASON)
        row = {"model": name, "steps": r.get("steps"), "fit_s": r.get("fit_s"), "predict_s": r.get("predict_s"),
               "others": r.get("others"), "smape": s["smape"], "mase": s["mase"], "owa": owa(s["smape"], s["mase"], *NAIVE2)}
        twin = results.get(f"rnr-{MODELS[name][1]}") if name in MODELS else None  # rnr with the same cell
        row["fit_ratio"] = r["fit_s"] / twin["fit_s"] if twin else None
        table.append(row)
        num = lambda v, f: format(v, f) if v is not None else "-"
        print(f"{name:<21} {num(row['steps'], 'd'):>6} {num(row['fit_s'], '.1f'):>8} {num(row['predict_s'], '.2f'):>10} "
              f"{row['smape']:>7.3f} {row['mase']:>7.3f} {row['owa']:>7.3f} {num(row['fit_ratio'], '.2f'):>10} "
              f"{num(row['others'], '.2f'):>7}")
    print("fit ratio: the model's fit seconds over rnr's with the same cell (peer / rnr; below 1: the peer is faster)")
    print(f"others: cores (of {os.cpu_count()}) that other processes kept busy while the model ran, on average")
    busy = [row["model"] for row in table if (row["others"] or 0) > 0.1]
    if busy:
        print(f"warning: other processes took CPU time while {', '.join(busy)} ran, so their seconds are too long; "
              f"compare fit ratios from a quiet machine")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "machine": machine(), "versions": versions, "table": table}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
