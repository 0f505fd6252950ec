"""The generated ice-cream panel of ``make run`` with the forecaster's defaults only: ``RNNForecaster(horizon=14)``.

``rnr demo`` runs this panel with settings written for it (season 7, GRU 32, 40 epochs, no base). Here the
forecaster gets nothing but the horizon, the column roles and, for comparison, one base at a time: the panel was
kept aside while the bases of the defaults (smoothing and the seasonal naive, averaged) were chosen on M4 Hourly
and AirPassengers. The same backtest as the demo: 4 windows of 14 days, the network fitted once and carried
forward with ``update()``; OWA against Naive2 over the windows, beside the baselines of the backtest.

    python experiments/icecream_defaults.py
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnr.data import tasks  # noqa: E402
from rnr.forecast.backtest import backtest  # noqa: E402
from rnr.forecast.defaults import describe  # noqa: E402
from rnr.forecast.forecaster import RNNForecaster  # noqa: E402

VARIANTS = {"defaults": {}, "relative_to='seasonal_naive'": {"relative_to": "seasonal_naive"},
            "relative_to='smoothing'": {"relative_to": "smoothing"}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shops", type=int, default=100)
    p.add_argument("--days", type=int, default=730)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {os.cpu_count()} CPUs, {args.threads} threads, Python {platform.python_version()}, "
          f"torch {torch.__version__}")
    df = tasks.ice_cream(n_shops=args.shops, days=args.days, seed=args.seed)
    rows = []
    for name, extra in VARIANTS.items():
        model = RNNForecaster(horizon=14, random_state=args.seed, **extra)
        start = time.perf_counter()
        result = backtest(model, df, n_windows=4, step=14, refit=False, m=7, lags=(7, 14, 28),
                          future=["temperature"], static=["size"])
        seconds = time.perf_counter() - start
        table = result.table()
        print(f"{name}: chose {describe(result.forecaster.chosen_)}; {seconds:.0f} s\n{table.round(3).to_string()}\n",
              flush=True)
        rnn = table.loc["rnr"]
        rows.append({"model": f"rnr {name}", "sMAPE": rnn.get("smape"), "MASE": rnn.get("mase"),
                     "OWA": rnn.get("owa"), "seconds": round(seconds, 1)})
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
