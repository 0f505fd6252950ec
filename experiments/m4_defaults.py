"""M4 Hourly with the forecaster's defaults only, as a user would: ``RNNForecaster(horizon=48).fit(df)`` on a long
frame with hourly timestamps, and nothing else.

The 414 training series are laid on an hourly grid (each starting 2000-01-01 00:00: the files carry no dates), so
the forecaster reads the frequency, and from it the seasons, itself. Forecasts of the 48 steps after each series
are scored against Hourly-test.csv with the M4 definitions (sMAPE; MASE with m = 24; OWA against Naive2's 18.383
and 2.395), beside the seasonal naive forecast. M4's results for Hourly: seasonal naive 0.627, ES-RNN (the
winner) 0.440, the best hourly entry 0.410.

    python experiments/m4_defaults.py               # one seed
    python experiments/m4_defaults.py --seeds 3
    python experiments/m4_defaults.py --set relative_to="'smoothing'"     # a variant, for comparison
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
from rnr.data.datasets import load_m4  # noqa: E402
from rnr.forecast.baselines import SeasonalNaive  # noqa: E402
from rnr.forecast.defaults import describe  # noqa: E402
from rnr.forecast import smoothing  # noqa: E402
from rnr.forecast.forecaster import RNNForecaster  # noqa: E402
from rnr.metrics import evaluate_panel, owa  # noqa: E402

NAIVE2 = (18.383, 2.395)  # M4's official Naive2 sMAPE and MASE on Hourly


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=1, help="fits with random_state 0..N-1, each scored")
    p.add_argument("--first-seed", type=int, default=0, help="the first random_state (then +1, ...)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ensemble", type=int, help="pass ensemble=N (default: leave the default)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="another argument of RNNForecaster (a Python literal), e.g. --set relative_to='smoothing'; "
                        "not the defaults any more, for comparing variants")
    p.add_argument("--save", metavar="CSV", help="write each fit's forecasts here (unique_id, ds, y_hat, seed)")
    p.add_argument("--level-penalty", type=float, help="rnr.forecast.smoothing.LEVEL_PENALTY for this run")
    args = p.parse_args(argv)
    if args.level_penalty is not None:
        smoothing.LEVEL_PENALTY = args.level_penalty
    loaded = load_m4("Hourly")
    if loaded is None:
        print("M4 data not found: set RNR_DATA or place it at ../shared/data/m4", file=sys.stderr)
        return 2
    train, test, ids = loaded
    torch.set_num_threads(args.threads)
    start = pd.Timestamp("2000-01-01")
    df = pd.concat([pd.DataFrame({"unique_id": i, "ds": pd.date_range(start, periods=len(y), freq="h"), "y": y})
                    for i, y in zip(ids, train)], ignore_index=True)
    print(f"machine: {os.cpu_count()} CPUs, {args.threads} threads, Python {platform.python_version()}, "
          f"torch {torch.__version__}")
    rows = []
    snaive = SeasonalNaive(24).fit(train).predict(48)
    s = evaluate_panel(test, snaive, train, m=24)
    rows.append({"model": "seasonal naive", "smape": s["smape"], "mase": s["mase"],
                 "owa": owa(s["smape"], s["mase"], *NAIVE2), "fit_s": 0.0})
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        began = time.perf_counter()
        extra = {} if args.ensemble is None else {"ensemble": args.ensemble}
        extra.update({k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)})
        f = RNNForecaster(horizon=48, random_state=seed, **extra).fit(df)
        fit_s = time.perf_counter() - began
        fc = f.predict()
        if args.save:
            fc.assign(seed=seed).to_csv(args.save, index=False, mode="a" if seed > args.first_seed else "w",
                                           header=seed == args.first_seed)
        by_id = {k: g["y_hat"].to_numpy() for k, g in fc.groupby("unique_id", sort=False)}
        s = evaluate_panel(test, [by_id[i] for i in ids], train, m=24)
        knob = "" if args.level_penalty is None else f", level penalty {args.level_penalty:g}"
        rows.append({"model": f"rnr {extra or 'defaults'}{knob}, random_state={seed}", "smape": s["smape"], "mase": s["mase"],
                     "owa": owa(s["smape"], s["mase"], *NAIVE2), "fit_s": fit_s})
        trained = [len(m.history_) for m in [f, *getattr(f, "members_", [])] if getattr(m, "history_", None)]
        print(f"{rows[-1]}; chose {describe(f.chosen_)}; epochs trained per network {trained}", flush=True)
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
