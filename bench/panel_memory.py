"""Peak memory of fitting a forecaster on a generated panel (default 10,000 series x 1,000 steps = 10M rows).

Training samples are series indices into contiguous arrays, so memory should grow with the data (rows x columns),
not with windows x lags. For scale, the script prints what a lag matrix of the same panel would take.

    python bench/panel_memory.py                      # 10,000 x 1,000, one epoch
    python bench/panel_memory.py --series 1000 --steps 500
"""
import argparse
import platform
import resource
import sys
import time

import numpy as np
import pandas as pd
import torch

from rnr.forecast import RNNForecaster


def rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=1_000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lags", type=int, default=168, help="for the lag-matrix comparison only")
    args = p.parse_args(argv)
    start = time.perf_counter()
    base = rss_mib()
    rng = np.random.default_rng(0)
    S, T = args.series, args.steps
    t = np.arange(T)
    y = (rng.uniform(10, 100, (S, 1)) * (1 + 0.3 * np.sin(2 * np.pi * t / 24)) + rng.normal(0, 1, (S, T)))
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(S), T), "ds": np.tile(t, S),
                       "y": y.reshape(-1).astype(np.float32)})
    del y
    frame_mib = df.memory_usage(deep=True).sum() / 2**20
    after_frame = rss_mib()
    f = RNNForecaster(horizon=24, season=24, hidden_size=args.hidden, epochs=args.epochs, batch_size=256, chunk=250)
    fit_start = time.perf_counter()
    f.fit(df)
    fit_s = time.perf_counter() - fit_start
    peak = rss_mib()
    lag_gib = S * (T - args.lags) * (args.lags + 1) * 4 / 2**30
    print(f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"python {platform.python_version()}")
    print(f"panel: {S} series x {T} steps = {S * T:,} rows; DataFrame {frame_mib:.0f} MiB")
    print(f"peak RSS: {base:.0f} MiB at start, {after_frame:.0f} MiB with the frame, {peak:.0f} MiB after fit "
          f"({args.epochs} epoch(s), {fit_s:.0f} s; {time.perf_counter() - start:.0f} s in all)")
    print(f"a float32 lag matrix with L={args.lags} for the same panel would take {lag_gib:.1f} GiB on its own")
    return 0


if __name__ == "__main__":
    sys.exit(main())
