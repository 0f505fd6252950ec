"""M4 Hourly: rnr's defaults against the models a forecaster user would reach for first, statistical
(statsforecast) and gradient-boosted trees on lags (LightGBM through mlforecast), on accuracy, fit and predict time.

Every model sees the 414 training series of Hourly-train.csv on an hourly grid (each starting 2000-01-01 00:00,
as experiments/m4_defaults.py lays them: the files carry no dates), forecasts the 48 steps after each, and is scored
in rnr's environment with rnr.metrics against Hourly-test.csv: sMAPE, MASE with m = 24, and OWA against Naive2's
18.383 and 2.395 (M4's definitions; Makridakis, Spiliotis & Assimakopoulos 2020, IJF 36(1):54-74).

    python bench/m4_stats_peers.py --setup                 # build bench/.peers-venv only (also done on first run)
    python bench/m4_stats_peers.py                         # every model, one after another
    python bench/m4_stats_peers.py --skip autoets --json stats.json

The models, each with its library's defaults beyond what is named here:

- statsforecast (Garza et al., Nixtla): ``SeasonalNaive(season_length=24)``; ``MSTL(season_length=[24, 168])``
  with its default trend forecaster (AutoETS, non-seasonal); ``AutoETS(season_length=24)``;
  ``AutoTheta(season_length=24)``; all through ``StatsForecast(models=[...], freq="h", n_jobs=1)``.
- LightGBM (Ke et al. 2017) through mlforecast, recursive (mlforecast's default: one one-step model fed its own
  forecasts): lags 1..48 (the lagged ridge's L = 48 of rnr.forecast.baselines.LaggedRidge), hour of day and day
  of week from the timestamps, ``LGBMRegressor(n_jobs=1)`` with default hyperparameters, and each series
  standardised by its own mean and deviation (``LocalStandardScaler``, as rnr scales each series): one pooled
  model on raw levels scores OWA near 3.7 here, so ``lightgbm-unscaled`` is there to show it, not run by default.
- rnr: ``RNNForecaster(horizon=48, random_state=seed).fit(df)``, as experiments/m4_defaults.py runs it; the
  forecaster reads the frequency and chooses its seasons, base and training length itself.

Every model runs in a process of its own, one after another: rnr with the python running this script (rnr's
environment; the repository root goes first on its path), the peers with bench/.peers-venv's python, built by
bench/m4_peers.py's ``peers_python`` from bench/peers-requirements.txt; they are never rnr dependencies. Each
process is held to one thread (torch.set_num_threads(1); n_jobs=1 and num_threads=1 for statsforecast, mlforecast
and LightGBM; OMP/MKL/OpenBLAS/NUMBA threads 1), so the seconds compare per core. Fit seconds run from the long
DataFrame to a fitted model (rnr's choices and scaling included); predict seconds from the fitted model to the 48
forecasts of every series. Imports and the building of the DataFrame are not timed. "own" is the cores the model's
own process kept busy during its fit (near 1.0 when it held to one thread); "others" the cores other processes kept
busy meanwhile (from /proc/stat, as bench/m4_peers.py counts them): seconds are only comparable between models run
with "others" near 0.
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
from m4_peers import cpu_seconds, peers_python  # bench/ is first on the path of a script run from it

HORIZON, SEASON = 48, 24
NAIVE2 = (18.383, 2.395)  # M4's official Naive2 sMAPE and MASE on Hourly
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START = "2000-01-01"      # the hourly grid every series starts on (M4 gives no dates)
MODELS = {  # name -> (library, what runs)
    "seasonal-naive": ("statsforecast", "SeasonalNaive(season_length=24)"),
    "mstl": ("statsforecast", "MSTL(season_length=[24, 168])"),
    "autoets": ("statsforecast", "AutoETS(season_length=24)"),
    "autotheta": ("statsforecast", "AutoTheta(season_length=24)"),
    "lightgbm": ("mlforecast", "LGBMRegressor, lags 1..48, hour, weekday, series standardised"),
    "lightgbm-unscaled": ("mlforecast", "LGBMRegressor, lags 1..48, hour, weekday, raw levels"),
    "rnr": ("rnr", "RNNForecaster(horizon=48) defaults"),
}
DEFAULT_MODELS = [m for m in MODELS if m != "lightgbm-unscaled"]
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}


# the child: one model, in its own process ---------------------------------------------------------------------
def fit_statsforecast(df, name: str, seed: int):
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, AutoTheta, SeasonalNaive

    model = {"seasonal-naive": lambda: SeasonalNaive(season_length=SEASON),
             "mstl": lambda: MSTL(season_length=[SEASON, 7 * SEASON]),
             "autoets": lambda: AutoETS(season_length=SEASON),
             "autotheta": lambda: AutoTheta(season_length=SEASON)}[name]()
    sf = StatsForecast(models=[model], freq="h", n_jobs=1).fit(df)
    return lambda: sf.predict(h=HORIZON).rename(columns={model.alias: "y_hat"}), ""


def fit_mlforecast(df, name: str, seed: int):
    import lightgbm
    from mlforecast import MLForecast
    from mlforecast.target_transforms import LocalStandardScaler

    scale = [LocalStandardScaler()] if name == "lightgbm" else None
    mlf = MLForecast(models={"y_hat": lightgbm.LGBMRegressor(n_jobs=1, verbosity=-1)}, freq="h",
                     lags=range(1, 2 * SEASON + 1), date_features=["hour", "dayofweek"], target_transforms=scale,
                     num_threads=1).fit(df)
    cols = mlf.ts.features_order_
    note = (f"features: {sum(c.startswith('lag') for c in cols)} lags, "
            f"{', '.join(c for c in cols if not c.startswith('lag'))}; {'standardised' if scale else 'raw'} target")
    return lambda: mlf.predict(h=HORIZON), note


def fit_rnr(df, name: str, seed: int):
    import torch

    from rnr.forecast.defaults import describe
    from rnr.forecast.forecaster import RNNForecaster

    torch.set_num_threads(1)
    f = RNNForecaster(horizon=HORIZON, random_state=seed).fit(df)
    return f.predict, f"chose {describe(f.chosen_)}"


def child_main(args) -> int:
    """Fit ``args.peer`` on the series in ``args.data``, save its (S, 48) forecasts, print one JSON line."""
    import pandas as pd

    library = MODELS[args.peer][0]
    if library == "rnr":
        sys.path.insert(0, str(ROOT))  # this checkout's rnr, ahead of any installed one
    blob = np.load(args.data)
    series, ids = np.split(blob["values"], blob["offsets"][1:-1]), blob["ids"].tolist()
    df = pd.concat([pd.DataFrame({"unique_id": i, "ds": pd.date_range(START, periods=len(y), freq="h"), "y": y})
                    for i, y in zip(ids, series)], ignore_index=True)
    fit = {"statsforecast": fit_statsforecast, "mlforecast": fit_mlforecast, "rnr": fit_rnr}[library]
    before, start = cpu_seconds(), time.perf_counter()
    predict, note = fit(df, args.peer, args.seed)
    fit_s, after = time.perf_counter() - start, cpu_seconds()
    start = time.perf_counter()
    pred = predict()
    by_id = {uid: g.sort_values("ds")["y_hat"].to_numpy() for uid, g in pred.groupby("unique_id", sort=False)}
    predict_s = time.perf_counter() - start
    np.save(args.out, np.stack([by_id[i] for i in ids]))  # (S, 48), in file order
    result = {"fit_s": fit_s, "predict_s": predict_s, "note": note, "versions": versions(library)}
    if before and after:  # cores busy on average during the fit: this process's, and everyone else's
        own = after[1] - before[1]
        result["own"] = own / fit_s
        result["others"] = max(0.0, (after[0] - before[0]) - own) / fit_s
    print(json.dumps(result))
    return 0


def versions(library: str) -> dict:
    """Python and the versions of the libraries a model's process ran on."""
    names = ["rnr", "torch"] if library == "rnr" else ["statsforecast", "mlforecast", "lightgbm"]
    found = {"python": platform.python_version()}
    for name in names + ["numpy", "pandas"]:
        module = __import__(name)
        found[name] = module.__version__
        if name == "rnr":
            found["rnr_path"] = str(Path(module.__file__).parent)
    return found


# the parent: every model, then the table ----------------------------------------------------------------------
def run_model(name: str, python: Path, data: Path, workdir: Path, args) -> dict:
    """One model in a child process held to one thread; its result, or ``{"skipped": reason}`` past the limit."""
    out, log = workdir / f"{name}.npy", workdir / f"{name}.log"
    env = {**os.environ, **ONE_THREAD}
    env.pop("PYTHONPATH", None)
    if MODELS[name][0] == "rnr":
        env["PYTHONPATH"] = str(ROOT)
    cmd = [str(python), __file__, "--peer", name, "--data", str(data), "--out", str(out), "--seed", str(args.seed)]
    try:
        with open(log, "w") as fh:
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True, cwd=workdir, env=env,
                                  timeout=args.limit_min * 60, check=False)
    except subprocess.TimeoutExpired:
        return {"skipped": f"stopped after {args.limit_min:g} min (--limit-min)"}
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {done.returncode}); the end of its log:\n{log.read_text()[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["forecast"] = np.load(out)
    return result


def machine() -> dict:
    """The CPU, its cores, the load when the run began, and the commit of rnr that ran."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    git = lambda *a: subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True, check=False)
    rev, dirty = git("rev-parse", "--short", "HEAD").stdout.strip(), git("status", "--porcelain", "rnr").stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "load_at_start": os.getloadavg(), "system": platform.platform(),
            "rnr_commit": (rev or "?") + (" with uncommitted rnr/ changes" if dirty else "")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(MODELS))
    p.add_argument("--skip", nargs="+", default=[], choices=list(MODELS), help="leave these out (listed as skipped)")
    p.add_argument("--seed", type=int, default=0, help="rnr's random_state (the peers here are deterministic)")
    p.add_argument("--limit-min", type=float, default=20.0, help="stop a model whose process runs longer")
    p.add_argument("--setup", action="store_true", help="build bench/.peers-venv and stop")
    p.add_argument("--rebuild-venv", action="store_true", help="rebuild bench/.peers-venv from the requirements")
    p.add_argument("--json", help="also write the table, the machine and the versions here")
    p.add_argument("--peer", choices=list(MODELS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peer:
        return child_main(args)
    if args.setup:
        print(peers_python(args.rebuild_venv))
        return 0

    sys.path.insert(0, str(ROOT))  # this checkout's rnr, as in the rnr child
    from rnr.data.datasets import load_m4
    from rnr.forecast.baselines import SeasonalNaive
    from rnr.metrics import evaluate_panel, owa

    loaded = load_m4("Hourly")
    if loaded is None:
        print("M4 data not found: set RNR_DATA or place it at ../shared/data/m4", file=sys.stderr)
        return 2
    train, test, ids = loaded
    host, began = machine(), time.perf_counter()
    names = [m for m in args.models if m not in args.skip]
    peers = peers_python(args.rebuild_venv) if any(MODELS[m][0] != "rnr" for m in names) else None
    results, envs = {m: {"skipped": "--skip"} for m in args.models if m in args.skip}, {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.npz"
        np.savez(data, values=np.concatenate(train), offsets=np.concatenate([[0], np.cumsum([len(y) for y in train])]),
                 ids=np.array(ids))
        for name in names:
            print(f"{name}: {MODELS[name][1]} ...", end=" ", flush=True)
            r = results[name] = run_model(name, sys.executable if MODELS[name][0] == "rnr" else peers, data,
                                          Path(tmp), args)
            if "skipped" in r:
                print(r["skipped"], flush=True)
                continue
            envs["rnr" if MODELS[name][0] == "rnr" else "peers"] = r.pop("versions")
            print(f"fit {r['fit_s']:.1f} s, predict {r['predict_s']:.2f} s, others {r.get('others', 0):.2f} cores"
                  f"{'; ' + r['note'] if r['note'] else ''}", flush=True)
    wall = time.perf_counter() - began

    snaive = np.stack(SeasonalNaive(SEASON).fit(train).predict(HORIZON))  # (S, 48), rnr's own
    table, notes = [], []
    for name in args.models:
        r = results[name]
        row = {"model": name, "library": MODELS[name][0], "runs": MODELS[name][1], "skipped": r.get("skipped")}
        if "forecast" in r:
            s = evaluate_panel(test, r["forecast"], train, m=SEASON)
            row.update(smape=s["smape"], mase=s["mase"], owa=owa(s["smape"], s["mase"], *NAIVE2),
                       **{k: r.get(k) for k in ("fit_s", "predict_s", "own", "others", "note")})
            if name == "seasonal-naive":  # the same forecasts as rnr's seasonal naive: the pipelines agree
                notes.append(f"statsforecast's seasonal naive is rnr's to {np.abs(r['forecast'] - snaive).max():.2g}")
        table.append(row)

    print(f"\nM4 Hourly, {len(train)} series, horizon {HORIZON}, scored with sMAPE, MASE (m = {SEASON}) and OWA "
          f"against Naive2 ({NAIVE2[0]}, {NAIVE2[1]}); one thread per model")
    print(f"{host['cpu']}, {host['cores']} cores, load {host['load_at_start'][0]:.2f} at the start; "
          f"rnr at {host['rnr_commit']}")
    for env, found in envs.items():
        print(f"{env} environment: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    print(f"{'model':<18} {'fit s':>8} {'predict s':>10} {'sMAPE':>7} {'MASE':>7} {'OWA':>7} {'own':>5} {'others':>7}")
    num = lambda v, f: format(v, f) if v is not None else "-"
    for row in table:
        if row["skipped"]:
            print(f"{row['model']:<18} skipped: {row['skipped']}")
            continue
        print(f"{row['model']:<18} {row['fit_s']:>8.1f} {row['predict_s']:>10.2f} {row['smape']:>7.3f} "
              f"{row['mase']:>7.3f} {row['owa']:>7.3f} {num(row['own'], '.2f'):>5} {num(row['others'], '.2f'):>7}")
    print(f"own: cores the model's process kept busy during its fit; others: cores (of {host['cores']}) other "
          f"processes kept busy meanwhile, on average")
    print("M4's published Hourly OWA: seasonal naive 0.627, Theta 1.006, ES-RNN (the winner) 0.440, best 0.410")
    for row in table:
        if row.get("note"):
            notes.append(f"{row['model']}: {row['note']}")
    busy = [row["model"] for row in table if (row.get("others") or 0) > 0.1]
    if busy:
        notes.append(f"other processes took CPU time while {', '.join(busy)} fitted, so those seconds are too long; "
                     f"compare seconds from a quiet machine")
    where = envs.get("rnr", {}).get("rnr_path")
    if where and Path(where) != ROOT / "rnr":
        notes.append(f"warning: rnr ran from {where}, not from this checkout ({ROOT / 'rnr'})")
    notes.append(f"wall time of the models, one after another: {wall / 60:.1f} min")
    print("\n".join(notes))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "machine": host, "versions": envs, "table": table, "notes": notes}, fh,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
