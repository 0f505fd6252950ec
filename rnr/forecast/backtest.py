"""Rolling-origin backtests: the RNN and the classical baselines forecast the same windows, scored side by side.

Window w of ``n_windows`` cuts every series ``horizon + (n_windows - 1 - w) * step`` steps before its end: the
models see everything before the cut and forecast the next ``horizon`` steps (Tashman 2000, "Out-of-sample tests
of forecasting accuracy"). The RNN is refit at every window (``refit=True``) or fit once at the first window and
carried forward with ``update`` (``refit=False``). Scores follow M4: sMAPE, MASE with seasonal period ``m``, and
OWA against Naive2 on the same windows.
"""
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from rnr.core.checks import check_positive_int
from rnr.forecast.baselines import LaggedRidge, Naive, Naive2, SeasonalNaive
from rnr.forecast.forecaster import RNNForecaster
from rnr.metrics import coverage, mae, mase, owa, rmse, smape

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)  # the lagged baseline's penalties and scale floors, chosen with its
RIDGE_FLOORS = (0.0, 0.5, 1.0)  # lags on each window's last horizon of training values


@dataclass
class BacktestResult:
    scores: pd.DataFrame     # one row per (model, window): mae, rmse, smape, mase, owa, coverage, fit_seconds
    forecasts: pd.DataFrame  # id, step, window, model, y, y_hat
    forecaster: object = None        # the RNN as fitted (and updated) for the last window
    last_forecast: pd.DataFrame = None  # its forecast of the last window: id, ds, y_hat, y_hat_q..
    last_train: pd.DataFrame = None     # the rows it had seen
    last_test: pd.DataFrame = None      # what happened in the last window

    def table(self) -> pd.DataFrame:
        """Scores averaged over windows, one row per model, best OWA first."""
        cols = [c for c in ["mae", "rmse", "smape", "mase", "owa", "coverage", "fit_seconds"] if c in self.scores]
        return self.scores.groupby("model")[cols].mean().sort_values("owa")

    def error_by_horizon(self) -> pd.DataFrame:
        """Mean absolute error at each step ahead, one column per model."""
        f = self.forecasts.assign(error=(self.forecasts["y"] - self.forecasts["y_hat"]).abs())
        return f.pivot_table(index="step", columns="model", values="error", aggfunc="mean")


def _split(df: pd.DataFrame, id_col: str, time_col: str, cut: int, horizon: int):
    """Per series: rows before the cut (``cut`` steps before the end) and the ``horizon`` rows after it."""
    df = df.sort_values([id_col, time_col], kind="stable")
    pos_from_end = df.groupby(id_col, sort=False).cumcount(ascending=False)  # 0 at each series' last row
    train = df[pos_from_end >= cut]
    test = df[(pos_from_end < cut) & (pos_from_end >= cut - horizon)]
    return train, test


def backtest(forecaster, df: pd.DataFrame, n_windows: int = 3, step: int | None = None, refit: bool = True,
             m: int = 1, lags=(1, 2, 3, 7, 14, 28), id_col: str = "unique_id", time_col: str = "ds",
             target: str = "y", future=(), static=(), baselines: bool = True,
             progress: bool | None = False) -> BacktestResult:
    """Score ``forecaster`` (an ``RNNForecaster``, unfitted) and the baselines on ``n_windows`` rolling origins.

    ``lags``: candidate numbers of lags for the lagged-variables baseline, chosen on the last ``horizon`` steps
    of each window's training data; with ``future`` covariates it regresses on their lags too. ``m``: seasonal
    period for MASE and the seasonal baselines. ``static``: per-series columns the RNN reads (the baselines
    cannot). ``progress``: a bar over the windows (None: only on a terminal).
    """
    if not isinstance(forecaster, RNNForecaster):
        raise TypeError(f"forecaster must be an RNNForecaster, got {type(forecaster).__name__}")
    H = forecaster.config.horizon
    check_positive_int(n_windows, "n_windows")
    step = H if step is None else check_positive_int(step, "step")
    for col in (id_col, time_col, target, *future, *static):
        if col not in df.columns:
            raise ValueError(f"df must have the column {col!r}; it has {list(df.columns)}")
    df = df.sort_values([id_col, time_col], kind="stable").reset_index(drop=True)
    longest = int(df.groupby(id_col).size().max()) if len(df) else 0
    need = H + (n_windows - 1) * step + max(H, m) + 1  # the windows, then enough history to fit and scale MASE
    if longest < need:
        raise ValueError(f"n_windows={n_windows} windows of horizon {H} (step {step}) with m={m} need a series of at "
                         f"least {need} steps, but the longest in df has {longest}; use fewer windows, a shorter "
                         f"horizon, or longer series")
    flat = _flat_series(df, id_col, target, m, [H + (n_windows - 1 - w) * step for w in range(n_windows)])
    if flat:  # found before any fitting: said once, and those series are left out of MASE (and OWA's MASE)
        warnings.warn(f"MASE is undefined for {len(flat)} series whose training values repeat exactly with period "
                      f"m={m} (mean absolute seasonal difference 0) in some window: {_names(flat)}; their MASE is "
                      f"left out of the mean (the other metrics keep them)", UserWarning, stacklevel=2)
    rows, frames, fitted, prev_cut = [], [], None, None
    bar = tqdm(range(n_windows), desc="backtest windows", unit="window", leave=False,
               disable=None if progress is None else not progress)
    for w in bar:
        cut = H + (n_windows - 1 - w) * step
        train, test = _split(df, id_col, time_col, cut, H)
        sizes = train.groupby(id_col, sort=False).size()
        keep = sizes.index[sizes > max(H, m)]  # series with enough history to forecast and to scale MASE
        train, test = train[train[id_col].isin(keep)], test[test[id_col].isin(keep)]
        histories = [g[target].to_numpy(np.float64) for _, g in train.groupby(id_col, sort=True)]
        actuals = [g[target].to_numpy(np.float64) for _, g in test.groupby(id_col, sort=True)]
        ids = sorted(keep)
        future_df = test[[id_col, time_col, *future]] if future else None
        start = time.perf_counter()
        if refit or fitted is None:
            fitted = type(forecaster)(**forecaster.get_params()).fit(train, id_col=id_col, time_col=time_col,
                                                                   target=target, future=list(future),
                                                                   static=list(static))
        else:
            # the rows since the last cut
            _, new = _split(df[df[id_col].isin(keep)], id_col, time_col, prev_cut, prev_cut - cut)
            fitted.update(new)
        pred = fitted.predict(future_df=future_df).sort_values([id_col, time_col], kind="stable")
        fit_s = time.perf_counter() - start
        bar.set_postfix(fit_s=f"{fit_s:.1f}")
        prev_cut = cut
        pred = pred[pred[id_col].isin(keep)]
        models = {"rnr": ([g["y_hat"].to_numpy() for _, g in pred.groupby(id_col, sort=True)], fit_s)}
        qcols = sorted(c for c in pred.columns if c.startswith("y_hat_q"))
        if baselines:
            past = [g[list(future)].to_numpy(np.float64) for _, g in train.groupby(id_col, sort=True)]
            ahead = [g[list(future)].to_numpy(np.float64) for _, g in test.groupby(id_col, sort=True)]
            cov = dict(past=past) if future else {}
            for name, model in [("naive", Naive()), ("seasonal_naive", SeasonalNaive(m)), ("naive2", Naive2(m)),
                                ("lagged_ridge", LaggedRidge(lags=list(lags), alpha=RIDGE_ALPHAS, floor=RIDGE_FLOORS,
                                                             covariates=bool(future), m=m))]:
                start = time.perf_counter()
                if name == "lagged_ridge":
                    model.fit(histories, val_horizon=H, **cov)
                    fc = model.predict(H, future=ahead if future else None)
                else:
                    fc = model.fit(histories).predict(H)
                models[name] = (fc, time.perf_counter() - start)
        n2 = models.get("naive2")
        n2_scores = _scores(actuals, n2[0], histories, m) if n2 else None
        for name, (fc, secs) in models.items():
            s = _scores(actuals, fc, histories, m)
            row = {"model": name, "window": w, **s, "fit_seconds": secs}
            if n2_scores and np.isfinite(s["mase"]) and n2_scores["mase"] > 0:
                row["owa"] = owa(s["smape"], s["mase"], n2_scores["smape"], n2_scores["mase"])
            elif n2_scores:
                row["owa"] = float("nan")  # MASE undefined for every series of the window
            if name == "rnr" and len(qcols) >= 2:
                lo = np.concatenate([g[qcols[0]].to_numpy() for _, g in pred.groupby(id_col, sort=True)])
                hi = np.concatenate([g[qcols[-1]].to_numpy() for _, g in pred.groupby(id_col, sort=True)])
                row["coverage"] = coverage(np.concatenate(actuals), lo, hi)
            rows.append(row)
            frames.append(pd.DataFrame({
                id_col: np.repeat(ids, H), "step": np.tile(np.arange(1, H + 1), len(ids)), "window": w,
                "model": name, "y": np.concatenate(actuals), "y_hat": np.concatenate(fc)}))
    return BacktestResult(pd.DataFrame(rows), pd.concat(frames, ignore_index=True), fitted, pred, train, test)


def _scores(actuals, forecasts, histories, m: int) -> dict:
    """M4 averaging: each metric per series, then the mean over series; a series whose MASE is undefined (a
    training part that repeats exactly with period m) is left out of MASE's mean (``_flat_series`` warned)."""
    per = [(mae(a, f), rmse(a, f), smape(a, f), _mase_or_nan(a, f, h, m))
           for a, f, h in zip(actuals, forecasts, histories)]
    arr = np.array(per)
    scores = dict(zip(["mae", "rmse", "smape"], arr[:, :3].mean(0).tolist()))
    defined = arr[:, 3][np.isfinite(arr[:, 3])]
    scores["mase"] = float(defined.mean()) if len(defined) else float("nan")
    return scores


def _mase_or_nan(y, f, insample, m: int) -> float:
    h = np.asarray(insample, np.float64)
    if h.size > m and not np.any(h[m:] != h[:-m]):
        return float("nan")
    return mase(y, f, h, m)


def _flat_series(df: pd.DataFrame, id_col: str, target: str, m: int, cuts: list[int]) -> list:
    """The series whose training part repeats exactly with period m at some cut: MASE divides by zero there."""
    flat = []
    for uid, g in df.groupby(id_col, sort=True):
        y = g[target].to_numpy(np.float64)
        for cut in cuts:
            h = y[: max(len(y) - cut, 0)]
            if h.size > m and not np.any(h[m:] != h[:-m]):
                flat.append(uid)
                break
    return flat


def _names(ids: list, k: int = 8) -> str:
    shown = ", ".join(str(i) for i in ids[:k])
    return shown + (f" and {len(ids) - k} more" if len(ids) > k else "")
