"""Fit a forecaster on a Parquet panel larger than memory and print the peak resident memory of the fitting process.

    python bench/stream.py                      # 50 million rows: 25,000 hourly series of 2,000 steps
    python bench/stream.py --rows 2000000       # a quick look

The panel is generated once into --folder (sorted by id, row groups of 500 series, about 0.4 GB on disk at 50M
rows); the fit runs in a fresh process, so its peak resident set (ru_maxrss) counts only the fit: the scan, the
groups read back ``--max-rows`` rows at a time, training, and each series' final state.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def generate(folder: Path, rows: int, length: int, seed: int = 0) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"panel-{rows}.parquet"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    series = rows // length
    rng = np.random.default_rng(seed)
    per_group = 500
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("unique_id", pa.int64()), ("ds", pa.int64()), ("y", pa.float32())])
    with pq.ParquetWriter(tmp, schema) as writer:
        for lo in range(0, series, per_group):
            n = min(per_group, series - lo)
            t = np.tile(np.arange(length), n)
            level = np.repeat(rng.uniform(10, 1000, n), length)
            y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24)) + rng.normal(0, 1, n * length) * np.sqrt(level)
            writer.write_table(pa.table({"unique_id": np.repeat(np.arange(lo, lo + n), length), "ds": t,
                                         "y": y.astype(np.float32)}, schema=schema))
    tmp.rename(path)
    return path


def fit(path: str, max_rows: int, threads: int) -> dict:
    import torch

    import rnr

    torch.set_num_threads(threads)
    start = time.perf_counter()
    f = rnr.RNNForecaster(horizon=8, season=24, hidden_size=16, head_size=16, epochs=1, batch_size=256, chunk=500,
                          progress=sys.stderr.isatty()).fit_parquet(path, max_rows=max_rows)
    fit_s = time.perf_counter() - start
    pred = f.predict()
    return {"series": int(pred.unique_id.nunique()), "forecasts": len(pred), "fit_seconds": round(fit_s, 1),
            "train_loss": f.history_[-1]["train_loss"],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--length", type=int, default=2000, help="steps per series")
    parser.add_argument("--max-rows", type=int, default=1_000_000, help="rows of series in memory at a time")
    parser.add_argument("--folder", default="/tmp/rnr-stream")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--fit", help=argparse.SUPPRESS)  # the child process: fit this file, print JSON
    args = parser.parse_args()
    if args.fit:
        print(json.dumps(fit(args.fit, args.max_rows, args.threads)))
        return
    start = time.perf_counter()
    path = generate(Path(args.folder), args.rows, args.length)
    print(f"panel: {path} ({path.stat().st_size / 2**20:.0f} MiB, {args.rows:,} rows, {args.rows // args.length:,} "
          f"series; ready in {time.perf_counter() - start:.0f} s)")
    child = subprocess.run([sys.executable, __file__, "--fit", str(path), "--max-rows", str(args.max_rows),
                            "--threads", str(args.threads)], capture_output=True, text=True)
    if child.returncode:
        sys.exit(child.stderr)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, torch {torch.__version__}, threads {args.threads}")
    print(f"fit: {result['series']:,} series, 1 epoch in {result['fit_seconds']} s, train loss "
          f"{result['train_loss']:.4f}; {result['forecasts']:,} forecasts")
    print(f"peak resident memory of the fitting process: {result['peak_rss_mib']:,} MiB "
          f"({'under' if result['peak_rss_mib'] < 2048 else 'OVER'} the 2 GiB goal)")


if __name__ == "__main__":
    main()
