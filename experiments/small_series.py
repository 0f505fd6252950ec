"""Single series with the forecaster's defaults: ``RNNForecaster(horizon=h).fit(df)`` and nothing else.

AirPassengers (monthly, 144 points, the last 12 held out), lynx (annual, 114 points, the last 14 held out) and
sunspots (monthly, 2,820 points, the last 24 held out; kept aside while the defaults were chosen). Each is scored
with MAE and MASE (the in-sample seasonal naive, m = 12 for monthly data, 1 for annual) beside the naive and the
seasonal naive forecasts, mean over seeds.

    python experiments/small_series.py                      # the defaults, 3 seeds
    python experiments/small_series.py --min-updates 100    # another minimum number of updates
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
import rnr  # noqa: E402
from rnr.data.datasets import data_dir  # noqa: E402
from rnr.forecast import defaults  # noqa: E402


def load(name: str) -> tuple[pd.DataFrame, int, int]:
    """(frame with unique_id, ds, y; horizon; seasonal period for MASE)."""
    root = data_dir()
    if name == "airpassengers":
        raw = pd.read_csv(root / "airpassengers" / "AirPassengers_darts.csv")
        df = pd.DataFrame({"ds": pd.to_datetime(raw["Month"]), "y": raw["#Passengers"].astype(float)})
        return df.assign(unique_id="air"), 12, 12
    if name == "lynx":
        raw = pd.read_csv(root / "lynx" / "Lynx.csv")
        df = pd.DataFrame({"ds": pd.to_datetime(raw.iloc[:, 0].astype(str), format="%Y"),
                           "y": raw.iloc[:, 1].astype(float)})
        return df.assign(unique_id="lynx"), 14, 1
    raw = pd.read_csv(root / "sunspots" / "monthly-sunspots.csv")
    df = pd.DataFrame({"ds": pd.to_datetime(raw["Month"]), "y": raw["Sunspots"].astype(float)})
    return df.assign(unique_id="sunspots"), 24, 12


def score(train: np.ndarray, test: np.ndarray, forecast: np.ndarray, m: int) -> dict:
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    mae = float(np.mean(np.abs(test - forecast)))
    return {"mae": mae, "mase": mae / scale}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--min-updates", type=int, default=defaults.MIN_UPDATES)
    p.add_argument("--sets", default="airpassengers,lynx,sunspots")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="another argument of RNNForecaster (a Python literal), for comparing variants")
    args = p.parse_args(argv)
    defaults.MIN_UPDATES = args.min_updates
    extra = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}; "
          f"MIN_UPDATES={args.min_updates}")
    rows = []
    for name in args.sets.split(","):
        df, h, m = load(name)
        train, test = df.iloc[:-h], df.iloc[-h:]
        y, actual = train["y"].to_numpy(), test["y"].to_numpy()
        rows.append({"data": name, "model": "naive", **score(y, actual, np.repeat(y[-1], h), m)})
        snaive = np.resize(y[-m:], h) if m > 1 else np.repeat(y[-1], h)
        rows.append({"data": name, "model": "seasonal naive", **score(y, actual, snaive, m)})
        runs, seconds, chosen = [], [], None
        for seed in range(args.seeds):
            start = time.perf_counter()
            f = rnr.RNNForecaster(horizon=h, random_state=seed, **extra).fit(train)
            seconds.append(time.perf_counter() - start)
            runs.append(score(y, actual, f.predict()["y_hat"].to_numpy(), m))
            chosen = f.chosen_
        rows.append({"data": name, "model": f"rnr {extra or 'defaults'}", "mae": np.mean([r["mae"] for r in runs]),
                     "mase": np.mean([r["mase"] for r in runs]), "mase_std": np.std([r["mase"] for r in runs]),
                     "fit_s": np.mean(seconds), "chosen": defaults.describe(chosen)})
        print(pd.DataFrame(rows[-3:]).to_string(index=False), flush=True)
    print()
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
