"""``rnr fit forecast``, ``predict``, ``evaluate``, ``backtest forecast`` and ``plot forecast``."""
import csv
import sys
import warnings
from pathlib import Path

import pandas as pd
from pandas.tseries.api import guess_datetime_format

from rnr import metrics
from rnr.cli.common import UsageError, config_from_args, load_task_model, show_progress, writable
from rnr.forecast.backtest import backtest as run_backtest
from rnr.forecast.defaults import season_of
from rnr.forecast.forecaster import RNNForecaster
from rnr.forecast.plots import save_forecast_plots, split_at_forecast


def _dates(values: pd.Series, time_col: str, path) -> pd.Series:
    """Dates from text. Times written with UTC offsets (one series crossing a daylight-saving change, or series in
    different time zones) are read as UTC times, on one regular grid, and the forecasts are dated in UTC (said on
    standard error)."""
    text = values.astype(str)
    if text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True).any():
        dates = pd.to_datetime(text, utc=True).dt.tz_convert(None)
        print(f"rnr: time column {time_col!r} of {str(path)!r} holds UTC offsets (e.g. {text.iloc[0]!r}); read as "
              f"UTC times, so daylight-saving changes and time zones leave no gaps; the forecasts are dated in UTC",
              file=sys.stderr)
        return dates
    return pd.to_datetime(values)


def _date_trouble(values: pd.Series, time_col: str, path, error) -> str:
    """Why a time column did not read as dates: the first value unlike the first rows' format, or pandas' reason."""
    text = values.astype(str)
    fmt = guess_datetime_format(text.iloc[0]) if len(text) else None
    if fmt is not None:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        bad = parsed.isna().to_numpy().nonzero()[0]
        if len(bad):
            i = int(bad[0])
            return (f"time column {time_col!r} of {str(path)!r}: row {i + 2} holds {text.iloc[i]!r}, not in the "
                    f"format of the first rows ({', '.join(repr(v) for v in text.iloc[:2])}, read as {fmt}); write "
                    f"every date of the column in one format (2021-01-31 is the safest), or pass the right column "
                    f"with --time")
    first = str(error).splitlines()[0]
    return (f"time column {time_col!r} of {str(path)!r} holds neither integers nor dates ({first}); pass the right "
            f"column with --time")


def read_panel_csv(path, id_col: str, time_col: str, flag: str = "--data") -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        what = "the future covariates" if flag == "--future" else "the panel"
        raise UsageError(f"data file {str(path)!r} does not exist; pass the CSV of {what} with {flag}")
    try:
        df = pd.read_csv(path)
    except UnicodeDecodeError:
        raise UsageError(f"data file {str(path)!r} is not UTF-8 text; save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UsageError(f"data file {str(path)!r} is not a readable CSV ({e}); check its separator and quoting") \
            from None
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise UsageError(f"data file {str(path)!r} names the column(s) {twice} more than once in its header "
                         f"{header}; give every column its own name")
    for role, col in (("--id", id_col), ("--time", time_col)):
        if col not in df.columns:
            raise UsageError(f"{role} column {col!r} is not in {str(path)!r}; its columns are {list(df.columns)}")
    if not pd.api.types.is_integer_dtype(df[time_col]):
        try:
            with warnings.catch_warnings():  # pandas' format-guessing notice; a failure gets the message below
                warnings.simplefilter("ignore", UserWarning)
                df[time_col] = _dates(df[time_col], time_col, path)
        except (ValueError, TypeError) as e:
            raise UsageError(_date_trouble(df[time_col], time_col, path, e)) from None
    return df


def fit(run_config: dict, options: dict):
    """The fitted RNNForecaster and what it was trained on."""
    data, model = run_config["data"], run_config["model"]
    path = Path(data["path"])
    if path.suffix.lower() == ".parquet" or path.is_dir():  # read a group of series at a time
        if data["fill_gaps"]:
            raise UsageError("data.fill_gaps=true applies to CSV data; a Parquet panel must have no gaps (fill them "
                             "when writing it)")
        forecaster = RNNForecaster(**model, **options).fit_parquet(
            path, id_col=data["id"], time_col=data["time"], target=data["target"], past=data["past"],
            future=data["future"], static=data["static"], freq=data["freq"], missing=data["missing"],
            max_rows=data["max_rows"])
        series = len(forecaster.panel_info_["ids"])
        return forecaster, {"series": series, "trained_on": f"{series} series from Parquet",
                            "chosen": _chosen(forecaster)}
    df = read_panel_csv(data["path"], data["id"], data["time"])
    forecaster = RNNForecaster(**model, **options)
    forecaster.fit(df, id_col=data["id"], time_col=data["time"], target=data["target"], past=data["past"],
                   future=data["future"], static=data["static"], freq=data["freq"], missing=data["missing"],
                   fill_gaps=data["fill_gaps"])
    series = int(df[data["id"]].nunique())
    return forecaster, {"rows": len(df), "series": series, "trained_on": f"{series} series, {len(df)} rows",
                        "chosen": _chosen(forecaster)}


def _chosen(forecaster) -> dict:
    """What the forecaster chose from the data, for info.json and rnr info (``rnr.forecast.defaults``)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in forecaster.chosen_.items()}


def _columns(info_dict: dict) -> tuple[str, str, str]:
    data = info_dict.get("data", {})
    return data.get("id", "unique_id"), data.get("time", "ds"), data.get("target", "y")


def _forecast(forecaster, info_dict: dict, future_path, h=None) -> pd.DataFrame:
    id_col, time_col, _ = _columns(info_dict)
    future = read_panel_csv(future_path, id_col, time_col, "--future") if future_path else None
    return forecaster.predict(h=h, future_df=future)


def predict(args, forecaster, info_dict) -> dict:
    if args.data:
        raise UsageError("--data applies to classify models; a forecaster forecasts from the end of the series it "
                         "was fitted on (give future covariates with --future)")
    if args.out:
        writable(args.out, "--out", reads={"the model": args.model, "--future": args.future})
    frame = _forecast(forecaster, info_dict, args.future, args.h)
    cols = forecaster.panel_info_["columns"]
    frame = frame.rename(columns={cols.id: "unique_id", cols.time: "ds"})
    if args.out:
        frame.to_csv(args.out, index=False)
        text = f"wrote {len(frame)} forecasts of {frame['unique_id'].nunique()} series to {args.out}"
    else:
        text = frame.to_csv(index=False).rstrip("\n")
    result = {"rows": len(frame), "series": int(frame["unique_id"].nunique()), "out": args.out, "_text": text}
    if args.json and not args.out:
        result["forecasts"] = frame.to_dict(orient="records")
    return result


def evaluate(args, forecaster, info_dict) -> dict:
    id_col, time_col, target = _columns(info_dict)
    actual = read_panel_csv(args.data, id_col, time_col)
    if target not in actual.columns:
        raise UsageError(f"--data {args.data!r} has no target column {target!r}; its columns are "
                         f"{list(actual.columns)}")
    steps = int(actual.groupby(id_col).size().max())
    frame = _forecast(forecaster, info_dict, args.future, min(steps, forecaster.config.horizon))
    cols = forecaster.panel_info_["columns"]
    both = frame.rename(columns={cols.id: id_col, cols.time: time_col}).merge(
        actual[[id_col, time_col, target]], on=[id_col, time_col], how="inner")
    if both.empty:
        raise UsageError(f"--data {args.data!r} has no row at the forecast times (the {len(frame)} steps after each "
                         f"series' end); pass the values that came after the training data")
    y, f = both[target].to_numpy(float), both["y_hat"].to_numpy(float)
    scores = {"mae": metrics.mae(y, f), "rmse": metrics.rmse(y, f), "smape": metrics.smape(y, f)}
    q = [c for c in both.columns if c.startswith("y_hat_q")]
    if len(q) >= 2:
        scores[f"coverage {q[0][7:]}-{q[-1][7:]}"] = metrics.coverage(y, both[q[0]], both[q[-1]])
    text = f"{len(both)} forecasts of {both[id_col].nunique()} series against {args.data}\n" + "\n".join(
        f"  {k}: {v:.4f}" for k, v in scores.items())
    return {**scores, "rows": len(both), "series": int(both[id_col].nunique()), "_text": text}


def backtest(args) -> dict:
    run_config = config_from_args(args, "forecast")
    data, model = run_config["data"], run_config["model"]
    if args.windows < 1:
        raise UsageError(f"--windows must be >= 1, got {args.windows}")
    if args.out:
        writable(args.out, "--out", reads={"--data": data["path"], "--config": args.config})
    df = read_panel_csv(data["path"], data["id"], data["time"])
    season = model.get("season")
    if season == "auto":  # what the forecaster will choose from this data (rnr.forecast.defaults)
        season = season_of(df, data["id"], data["time"], data["freq"])
    m = args.m or season or 1
    result = run_backtest(RNNForecaster(**model), df, n_windows=args.windows, m=m, id_col=data["id"],
                          time_col=data["time"], target=data["target"], future=data["future"], static=data["static"],
                          progress=show_progress(args))
    table = result.table()
    if args.out:
        result.scores.to_csv(args.out, index=False)
    return {"table": table.reset_index().to_dict(orient="records"), "windows": args.windows, "m": m,
            "out": args.out, "_text": table.to_string(float_format="{:.4f}".format)}


def plot(args) -> dict:
    """``rnr plot forecast``: a PNG with, for each chosen series, its last steps and the forecast (with interval).

    Rows of --data at the forecast times (after the model's training data) are drawn dotted, as what happened."""

    forecaster, info_dict = load_task_model(args.model, "plot forecast", (RNNForecaster,))
    if not args.data:
        raise UsageError("rnr plot forecast needs --data, the CSV of the history the model was fitted on")
    if args.last < 1:
        raise UsageError(f"--last must be >= 1 (history steps to draw), got {args.last}")
    id_col, time_col, target = _columns(info_dict)
    history = read_panel_csv(args.data, id_col, time_col)
    if target not in history.columns:
        raise UsageError(f"--data {args.data!r} has no target column {target!r}; its columns are "
                         f"{list(history.columns)}")
    frame = _forecast(forecaster, info_dict, args.future)
    cols = forecaster.panel_info_["columns"]
    frame = frame.rename(columns={cols.id: id_col, cols.time: time_col})
    known = list(pd.unique(frame[id_col]))
    if args.series:
        by_text = {str(k): k for k in known}
        wanted = [s.strip() for s in args.series.split(",") if s.strip()]
        missing = [s for s in wanted if s not in by_text]
        if missing:
            raise UsageError(f"--series {missing} are not series of the model; some of its ids: {known[:8]}")
        uids = [by_text[s] for s in wanted]
    else:
        uids = known[:4]
    out = writable(args.out, "--out", reads={"the model": args.model, "--data": args.data, "--future": args.future})
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UsageError(f"--out must name a .png, .pdf or .svg file, got {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    history, actual = split_at_forecast(history, frame, id_col, time_col)
    save_forecast_plots(out, history, frame, uids, actual=actual, last=args.last, id_col=id_col, time_col=time_col,
                        target=target)
    against = f", against {len(actual)} actual values from --data" if actual is not None else ""
    return {"out": str(out), "series": [str(u) for u in uids], "actual_rows": 0 if actual is None else len(actual),
            "_text": f"wrote {out} ({len(uids)} series{against})"}
