"""The main job (``make run``): forecast a panel of daily ice-cream sales and compare with the classical baselines.

The data is generated (``rnr.data.tasks.ice_cream``): shops that opened on different days, so series of different
lengths, with a weekly pattern and sales driven by the day's temperature, a future covariate (a weather
forecast is known ahead), and the shop's size as a static covariate. A GRU forecaster is backtested on rolling
origins beside naive, seasonal naive, Naive2 and the lagged-variables ridge regression (which also regresses on
the temperature's lags), all on the same windows. It prints the table, and writes the forecast plot, the error
by horizon and the model file to ``--out``.

    rnr demo                 # about 70 seconds on 2 CPU cores (or python -m rnr demo)
    rnr demo --epochs 5      # quicker, less accurate
"""
import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from rnr.data import tasks
from rnr.forecast.backtest import backtest
from rnr.forecast.forecaster import RNNForecaster
from rnr.forecast.plots import plot_error_by_horizon, save_forecast_plots
from rnr.io import save


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="rnr demo", description=__doc__.splitlines()[0])
    p.add_argument("--shops", type=int, default=100, help="series in the generated panel")
    p.add_argument("--days", type=int, default=730, help="days from the first shop's opening to the end")
    p.add_argument("--epochs", type=int, default=40, help="training passes of the RNN")
    p.add_argument("--windows", type=int, default=4, help="rolling origins of the backtest")
    p.add_argument("--out", default="rnr-output", help="folder for the plots and the model file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = tasks.ice_cream(n_shops=args.shops, days=args.days, seed=args.seed)
    lengths = df.groupby("unique_id").size()
    print(f"ice-cream panel: {len(lengths)} shops, {len(df)} rows, {lengths.min()}-{lengths.max()} days each; "
          f"future covariate: temperature; static: size")
    model = RNNForecaster(horizon=14, season=7, cell="gru", hidden_size=32, epochs=args.epochs, lr=5e-3,
                          quantiles=(0.1, 0.9), chunk=128, batch_size=8, relative_to=None, random_state=args.seed)
    start = time.perf_counter()
    result = backtest(model, df, n_windows=args.windows, step=14, refit=False, m=7, lags=(7, 14, 28),
                      future=["temperature"], static=["size"])
    seconds = time.perf_counter() - start
    print(f"\nbacktest: {args.windows} windows of 14 days, the RNN fitted once and carried forward with update(); "
          f"{seconds:.0f} s in all\n")
    with pd.option_context("display.width", 120):
        print(result.table().to_string(float_format="{:.4f}".format))  # as rnr backtest and rnr evaluate print
    uids = sorted(result.last_forecast["unique_id"].unique())[:3]
    save_forecast_plots(out / "forecast.png", result.last_train, result.last_forecast, uids,
                        actual=result.last_test, last=8 * 7)
    ax = plot_error_by_horizon(result.error_by_horizon())
    ax.figure.savefig(out / "error_by_horizon.png", dpi=110)
    save(result.forecaster, out / "forecaster.safetensors")
    print(f"\nwrote {out / 'forecast.png'}, {out / 'error_by_horizon.png'} and {out / 'forecaster.safetensors'} "
          f"(rnr.load reads it back)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
