"""Peak resident memory of ``RNNForecaster.fit`` on a generated panel with covariates, against the raw data.

The panel: S series x T hourly steps (default 10,000 x 1,000 = 10M rows) with a target ``y``, two covariates known
ahead (``price``, ``holiday``, passed as ``future``) and one known only up to now (``visits``, ``past``), all
float32, integer ids and datetime64[ns] times. The goal (the speed issue) is a peak of at most 3x the raw data.

"Raw data" is the bytes of the long table as stored: 4 float32 columns + an int32 id + a datetime64[ns] time,
28 bytes a row. For scale, the script also computes (never allocates) a float32 lag matrix of L lags of the
target and the 3 covariates over every window with a full history: S x (T - L) rows x L x 4 columns.

Each input form runs in its own fresh process, so one's peak cannot leak into another's:

- ``frame``: a pandas DataFrame, ``fit(df, past=[...], future=[...])``, as most users call it;
- ``panel``: the most compact form, a ``Panel`` built straight from the contiguous arrays (no frame, no
  validation), ``fit_panel(panel)``.

Peaks come from ``getrusage(RUSAGE_SELF).ru_maxrss``. For the per-stage breakdown the kernel's high-water mark is
reset at the start of each stage (``/proc/self/clear_refs``), so ``ru_maxrss`` at its end is that stage's own
peak; the process peak is the largest of them. The stages inside ``fit`` are marked by wrapping the forecaster's
own methods (``fit_panel``, ``_arrays``, ``_train``, ``_remember``) on the instance; nothing else changes.
``_arrays`` copies nothing (``SeriesArrays`` keeps the panel's arrays and each batch scales the rows it reads), and
the last stage, from ``_remember`` to the end of ``fit``, also holds the fits of the run's other networks (``bases``:
a second network for hourly data, relative to the seasonal naive).

Training adds a working set that grows with ``batch_size x chunk`` (the head's activations at every step of a
chunk), not with the number of series: ~250 MiB at the defaults here (256 x 250, as in bench/panel_memory.py,
which this script replaces; about 4x faster than the forecaster's own batch_size=32, which needs ~8x less).
numba's first compilation of the time loop adds a fixed ~150 MiB (``--warm`` moves it into the baseline). glibc
keeps freed blocks below its adaptive mmap threshold (up to 32 MiB) in the heap, so RSS can stay high after
training; ``MALLOC_MMAP_THRESHOLD_=1048576`` in the environment (passed on to the measured processes) shows the
peak without that.

    nice -n 10 python bench/memory.py                      # 10,000 x 1,000, one epoch, both input forms
    python bench/memory.py --series 1000 --steps 500 --variant panel --warm
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

# numpy, pandas, torch and rnr are imported in the measured child processes only: this parent stays small, and
# a child's ru_maxrss starts from its parent's (Linux carries the high-water mark across exec).

COLUMNS = ("y", "price", "holiday", "visits")  # target, future, future, past: all float32
ROW_BYTES = 4 * len(COLUMNS) + 4 + 8  # + int32 id + datetime64[ns] time
MIB = 2**20


def maxrss_mib() -> float:
    """Peak resident memory since the last reset of the high-water mark (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Resident memory now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


class Stages:
    """Per stage: peak RSS within it, RSS at its end and seconds. ``start(name)`` ends the stage before."""

    def __init__(self):
        self.rows, self.name = [], None
        try:
            open("/proc/self/clear_refs", "w").close()
            self.resets = True
        except OSError:
            self.resets = False  # peaks are then cumulative: each stage shows the peak so far

    def start(self, name: str) -> None:
        self.stop()
        if self.resets:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # the high-water mark drops to the current RSS
        self.name, self.t0 = name, time.perf_counter()

    def stop(self) -> None:
        if self.name is not None:
            self.rows.append({"stage": self.name, "peak": maxrss_mib(), "end": rss_mib(),
                              "seconds": time.perf_counter() - self.t0})
        self.name = None

    def peak(self, first: str | None = None) -> float:
        """The largest peak over the stages from ``first`` (all if None) to the last."""
        names = [r["stage"] for r in self.rows]
        rows = self.rows[names.index(first):] if first else self.rows
        return max(r["peak"] for r in rows)


def marked(stages: Stages, name: str, method):
    """``method`` that first starts the stage ``name``."""
    def run(*args, **kwargs):
        stages.start(name)
        return method(*args, **kwargs)
    return run


def generate(S: int, T: int, seed: int = 0, block: int = 500) -> dict:
    """The panel as contiguous 1-D columns (N = S*T rows), filled block by block so temporaries stay small.

    y follows a daily cycle around a per-series level, falls with price and rises on holidays; price has a weekly
    cycle (known ahead, like a planned price); holiday is 1 on every hour of a random 4% of days; visits
    (known only up to now) lead y a little.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    N = S * T
    cols = {name: np.empty(N, np.float32) for name in COLUMNS}
    t = np.arange(T)
    daily = (1 + 0.3 * np.sin(2 * np.pi * t / 24)).astype(np.float32)  # (T,)
    weekly = (1 + 0.05 * np.sin(2 * np.pi * t / 168)).astype(np.float32)
    holiday = np.repeat(rng.random(-(-T // 24)) < 0.04, 24)[:T].astype(np.float32)  # (T,), whole days
    for s0 in range(0, S, block):
        n = min(block, S - s0)
        rows = slice(s0 * T, (s0 + n) * T)
        level = rng.uniform(10, 100, (n, 1)).astype(np.float32)  # (n, 1)
        base = rng.uniform(1, 10, (n, 1)).astype(np.float32)
        price = base * weekly * (1 + 0.02 * rng.standard_normal((n, T), dtype=np.float32))  # (n, T)
        y = level * daily * (1.2 - 0.2 * price / base) + 5 * holiday + rng.standard_normal((n, T), dtype=np.float32)
        cols["y"][rows] = y.reshape(-1)
        cols["price"][rows] = price.reshape(-1)
        cols["holiday"][rows] = np.broadcast_to(holiday, (n, T)).reshape(-1)
        visits = 0.1 * np.roll(y, -1, axis=1) + rng.standard_normal((n, T), dtype=np.float32)  # y's next step, noisy
        cols["visits"][rows] = visits.reshape(-1)
    cols["unique_id"] = np.repeat(np.arange(S, dtype=np.int32), T)
    cols["ds"] = np.tile(np.datetime64("2020-01-01T00", "ns") + np.arange(T).astype("timedelta64[h]"), S)
    return cols


def as_panel(cols: dict, S: int, T: int):
    """The columns as a ``Panel`` directly: the arrays themselves (the two future columns stacked), no checks."""
    import numpy as np

    from rnr.forecast.panel import Panel, PanelColumns

    future = np.column_stack([cols.pop("price"), cols.pop("holiday")])  # (N, 2)
    offsets = np.arange(0, S * T + 1, T, dtype=np.int64)  # series s is rows s*T:(s+1)*T
    return Panel(np.arange(S, dtype=np.int32), offsets, cols["ds"], cols["y"][:, None], cols["visits"][:, None],
                 future, np.zeros((S, 0), np.float32), {}, "h",
                 PanelColumns("unique_id", "ds", ("y",), ("visits",), ("price", "holiday")))


def measure(variant: str, args) -> dict:
    """Run in a fresh process: generate the panel, fit once, and return the measurements."""
    import numpy as np
    import pandas as pd
    import torch

    from rnr.forecast.forecaster import RNNForecaster

    def forecaster(batch_size):
        return RNNForecaster(horizon=args.horizon, season=24, hidden_size=args.hidden, epochs=args.epochs,
                             batch_size=batch_size, chunk=args.chunk)

    if args.warm:  # numba compiles the time loop on first use: a fixed cost, here moved into the baseline
        forecaster(4).fit_panel(as_panel(generate(8, 2 * args.horizon + 2), 8, 2 * args.horizon + 2))
    baseline = maxrss_mib()  # the interpreter with numpy, pandas, torch and rnr (and the compiled loop if warm)
    stages = Stages()
    stages.start("generate columns")
    cols = generate(args.series, args.steps)
    raw = sum(a.nbytes for a in cols.values()) / MIB
    f = forecaster(args.batch_size)
    f.fit_panel = marked(stages, "scalers (fit_panel)", f.fit_panel)
    f._arrays = marked(stages, "arrays (_arrays)", f._arrays)
    f._train = marked(stages, "net + training (_train)", f._train)
    f._remember = marked(stages, "final states (_remember)", f._remember)
    if variant == "frame":
        stages.start("build DataFrame")
        df = pd.DataFrame(cols, copy=False)  # the columns themselves, not copies
        del cols
        stored = df.memory_usage(deep=True).sum() / MIB
        stages.start("Panel.from_frame (fit)")
        fit_start = time.perf_counter()
        f.fit(df, future=["price", "holiday"], past=["visits"], freq="h")
        first = "Panel.from_frame (fit)"
    else:
        stages.start("build Panel")
        panel = as_panel(cols, args.series, args.steps)
        del cols
        stored = sum(a.nbytes for a in (panel.ids, panel.offsets, panel.time, panel.y, panel.past,
                                        panel.future)) / MIB
        fit_start = time.perf_counter()
        f.fit_panel(panel)  # starts its own stage
        first = "scalers (fit_panel)"
    fit_s = time.perf_counter() - fit_start
    stages.stop()
    return {"variant": variant, "baseline": baseline, "raw": raw, "stored": stored, "fit_peak": stages.peak(first),
            "process_peak": max(baseline, stages.peak()), "fit_s": fit_s, "stages": stages.rows,
            "resets": stages.resets, "loss": f.history_[-1]["train_loss"], "torch": torch.__version__,
            "threads": torch.get_num_threads(), "numpy": np.__version__, "pandas": pd.__version__}


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) / 2**20
    return (f"{cpu}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores usable, {total:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def report(args, results: list[dict]) -> None:
    S, T, L = args.series, args.steps, args.lags
    N = S * T
    raw = N * ROW_BYTES / MIB
    lag = S * max(T - L, 0) * L * len(COLUMNS) * 4 / MIB  # computed, never allocated
    r0 = results[0]
    print(machine())
    print(f"torch {r0['torch']} ({r0['threads']} threads), numpy {r0['numpy']}, pandas {r0['pandas']}")
    print(f"panel: {S:,} series x {T:,} hourly steps = {N:,} rows; y + future price, holiday + past visits")
    print(f"fit: RNNForecaster(horizon={args.horizon}, season=24, cell='gru', hidden_size={args.hidden}, "
          f"batch_size={args.batch_size}, chunk={args.chunk}), {args.epochs} epoch(s)"
          + (", numba warmed up before the baseline" if args.warm else ""))
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    if malloc:
        print(f"glibc malloc settings: {malloc}")
    print(f"raw data = {len(COLUMNS)} float32 columns + int32 id + datetime64[ns] time = {ROW_BYTES} B/row x {N:,} "
          f"rows = {raw:,.0f} MiB")
    print(f"lag matrix = {S:,} x ({T:,} - {L}) windows x {L} lags x {len(COLUMNS)} columns x 4 B = {lag:,.0f} MiB "
          f"({lag / raw:.0f}x raw; computed, not allocated)")
    print()
    rows = [("input as stored (MiB)", lambda r: f"{r['stored']:,.0f}"),
            ("baseline RSS: torch + rnr imported (MiB)", lambda r: f"{r['baseline']:,.0f}"),
            ("peak RSS during fit (MiB)", lambda r: f"{r['fit_peak']:,.0f}"),
            ("peak RSS of the process (MiB)", lambda r: f"{r['process_peak']:,.0f}"),
            ("peak - baseline (MiB)", lambda r: f"{r['fit_peak'] - r['baseline']:,.0f}"),
            ("peak / raw   [the issue's goal: <= 3]", lambda r: f"{r['fit_peak'] / raw:.2f}"),
            ("(peak - baseline) / raw", lambda r: f"{(r['fit_peak'] - r['baseline']) / raw:.2f}"),
            ("peak / lag matrix", lambda r: f"{r['fit_peak'] / lag:.3f}" if lag else "-"),
            ("fit seconds", lambda r: f"{r['fit_s']:.0f}"),
            ("train loss", lambda r: f"{r['loss']:.4f}")]
    head = [f"{r['variant']:>10}" for r in results]
    print(f"{'':42}" + "".join(head))
    for label, cell in rows:
        print(f"{label:42}" + "".join(f"{cell(r):>10}" for r in results))
    for r in results:
        print(f"\nstages, input form '{r['variant']}' (MiB; peak within the stage"
              f"{'' if r['resets'] else ', cumulative: clear_refs unavailable'}):")
        print(f"  {'stage':32}{'peak':>8}{'at end':>8}{'peak-base':>10}{'seconds':>9}")
        for s in r["stages"]:
            print(f"  {s['stage']:32}{s['peak']:>8,.0f}{s['end']:>8,.0f}{s['peak'] - r['baseline']:>10,.0f}"
                  f"{s['seconds']:>9.1f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=1_000)
    p.add_argument("--variant", choices=("frame", "panel", "both"), default="both",
                   help="input form: a pandas DataFrame, a Panel built from arrays, or each in its own process")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=256, help="series per batch (training memory grows with it)")
    p.add_argument("--chunk", type=int, default=250, help="steps per truncated-BPTT chunk")
    p.add_argument("--lags", type=int, default=168, help="for the lag-matrix comparison only")
    p.add_argument("--warm", action="store_true",
                   help="fit a tiny panel before the baseline, so numba's one-off compilation is not counted")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one measurement, JSON to stdout
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.variant, args)))
        return 0
    results = []
    for variant in ("frame", "panel") if args.variant == "both" else (args.variant,):
        same = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("variant", "warm", "child")]
        cmd = [sys.executable, __file__, *same, f"--variant={variant}", "--child"] + ["--warm"] * args.warm
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if done.returncode:
            print(f"the '{variant}' measurement failed (exit {done.returncode}); see its messages above",
                  file=sys.stderr)
            return done.returncode
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
