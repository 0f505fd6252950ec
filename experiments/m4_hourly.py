"""M4 Hourly: rnr's RNN against the classical baselines, scored with the M4 definitions.

Trains on Hourly-train.csv (414 series, 700-960 points), forecasts 48 steps, scores against Hourly-test.csv:
sMAPE, MASE (m = 24, scaled on the in-sample seasonal differences) and OWA against Naive2 (sMAPE 18.383,
MASE 2.395). The M4 results for Hourly: Naive2 OWA 1.000, seasonal naive 0.627, the organisers' RNN 1.036,
ES-RNN (winner) 0.440, best hourly entry 0.410.

    python experiments/m4_hourly.py                   # defaults below; prints one table
    python experiments/m4_hourly.py --seeds 3 --epochs 30
"""
import argparse
import json
import platform
import sys
import time

import numpy as np
import pandas as pd
import torch

from rnr.data.datasets import load_m4
from rnr.forecast.baselines import LaggedRidge, Naive2, SeasonalNaive
from rnr.forecast.forecaster import RNNForecaster
from rnr.metrics import evaluate_panel, owa

NAIVE2 = (18.383, 2.395)  # M4's official Naive2 sMAPE and MASE on Hourly


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=1, help="models in the ensemble (median of their forecasts)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--cell", default="gru")
    p.add_argument("--strategy", default="direct")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--scaler", default="standard")
    p.add_argument("--loss", default="mae")
    p.add_argument("--relative-to", default="seasonal_naive", help="forecast relative to: none, last, seasonal_naive")
    p.add_argument("--head", type=int, default=128, help="hidden width of the direct decoder MLP")
    p.add_argument("--base-input", action="store_true", help="the head also reads the base values it corrects")
    p.add_argument("--extra-seasons", type=int, nargs="*", default=[], help="more periods as phase inputs")
    p.add_argument("--device", default="cpu", help="where to train: cpu, cuda or auto")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--json", help="also write the table here")
    args = p.parse_args(argv)
    loaded = load_m4("Hourly")
    if loaded is None:
        print("M4 data not found: set RNR_DATA or place it at ../shared/data/m4", file=sys.stderr)
        return 2
    train, test, ids = loaded
    df = pd.concat([pd.DataFrame({"unique_id": i, "ds": np.arange(len(y)), "y": y}) for i, y in zip(ids, train)])
    rows = []
    start = time.perf_counter()
    forecasts = []
    for seed in range(args.seeds):
        f = RNNForecaster(48, season=24, epochs=args.epochs, hidden_size=args.hidden, cell=args.cell,
                          strategy=args.strategy, lr=args.lr, chunk=args.chunk, batch_size=args.batch,
                          scaler=args.scaler, loss=args.loss, random_state=seed, head_size=args.head,
                          base_input=args.base_input,
                          extra_seasons=tuple(args.extra_seasons), device=args.device,
                          relative_to=None if args.relative_to == "none" else args.relative_to)
        f.fit(df)
        pred = f.predict()
        forecasts.append(np.stack([g["y_hat"].to_numpy() for _, g in pred.groupby("unique_id", sort=False)]))
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s, last train loss {f.history_[-1]['train_loss']:.4f}",
              flush=True)
    order = {uid: k for k, uid in enumerate(pd.unique(pred["unique_id"]))}
    rnn = np.median(np.stack(forecasts), axis=0)
    rnn = [rnn[order[i]] for i in ids]
    rows.append((f"rnr {args.cell} x{args.seeds}", rnn, time.perf_counter() - start))
    if not args.no_baselines:
        for name, model in [("seasonal naive", SeasonalNaive(24)), ("naive2", Naive2(24)),
                            ("lagged ridge", LaggedRidge(lags=[24, 48, 96, 168, 336]))]:
            s = time.perf_counter()
            model.fit(train, val_horizon=48) if name == "lagged ridge" else model.fit(train)
            rows.append((name, model.predict(48), time.perf_counter() - s))
    print(f"\nM4 Hourly, 414 series, horizon 48 | {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, trained on {args.device}")
    print(f"{'model':<20} {'sMAPE':>7} {'MASE':>7} {'OWA':>7} {'seconds':>8}")
    table = []
    for name, fc, secs in rows:
        s = evaluate_panel(test, fc, train, m=24)
        o = owa(s["smape"], s["mase"], *NAIVE2)
        table.append({"model": name, "smape": s["smape"], "mase": s["mase"], "owa": o, "seconds": secs})
        print(f"{name:<20} {s['smape']:>7.3f} {s['mase']:>7.3f} {o:>7.3f} {secs:>8.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "table": table}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
