"""``rnr fit forecast``, ``predict``, ``evaluate``, ``backtest forecast`` and ``plot forecast``."""
import csv
import re
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


NO_ID = "unique_id"  # the id column given to a file of one series (no id column; --id "")
SEPARATOR = "/"  # several id columns name a series by their values joined with it: Agency_01/SKU_01
_DAY_MONTH = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})$")  # 01/02/1949: month or day first?


def id_columns(spec: str, columns, path) -> list[str]:
    """The id column(s) that ``data.id`` names in a file with ``columns``: none ("", or the default 'unique_id'
    where the file has no such column: one series), one, or several ("agency,sku")."""
    if spec == "":
        if NO_ID in columns:
            raise UsageError(f"--id '' reads {str(path)!r} as one series, but it has a column {NO_ID!r} (the default "
                             f"--id): leave out --id '' to read its series, or rename that column")
        return []
    if spec in columns:
        return [spec]
    if spec == NO_ID:  # the default, and no such column: one series
        return []
    parts = [p.strip() for p in re.split(r"[,/]", spec)]
    if len(parts) > 1 and all(p in columns for p in parts):
        return parts
    absent = [p for p in parts if p not in columns]
    raise UsageError(f"--id column {absent[0] if len(parts) > 1 else spec!r} is not in {str(path)!r}; its columns "
                     f"are {list(columns)}; pass the column that names each series (several joined by commas: --id "
                     f"agency,sku), or --id '' for a file that holds one series")


def id_key(spec: str) -> str:
    """The column that holds the model's series ids for ``data.id``: the column itself, 'agency/sku' for several
    (values joined by SEPARATOR), 'unique_id' for one series."""
    parts = [p.strip() for p in re.split(r"[,/]", spec)] if spec else []
    return SEPARATOR.join(parts) if len(parts) > 1 else (spec or NO_ID)


def user_frame(frame: pd.DataFrame, spec: str) -> pd.DataFrame:
    """A frame of the model's ids (``id_key``) in the user's own id columns: split back into several, or dropped
    for a file of one series."""
    key = id_key(spec)
    parts = [p.strip() for p in re.split(r"[,/]", spec)] if spec else []
    if len(parts) > 1 and key in frame.columns:
        split = frame[key].astype(str).str.split(SEPARATOR, n=len(parts) - 1, expand=True)
        split.columns = parts
        return pd.concat([split, frame.drop(columns=key)], axis=1)
    if not spec and key in frame.columns:
        return frame.drop(columns=key)
    return frame


def _dates(values: pd.Series, time_col: str, path, date_format=None, dayfirst=None) -> pd.Series:
    """Dates from text, in the format ``date_format`` when given. Without it: 1949M01 (monthly) and 1949Q1
    (quarterly) as written by statistical offices; times with UTC offsets (one series crossing a daylight-saving
    change, or series in different time zones) read as UTC on one regular grid (said on standard error); dates whose
    day and month could be swapped (01/02/1949) and two-digit years (Jan-49) refused unless the format says how."""
    text = values.astype(str).str.strip()
    where = f"time column {time_col!r} of {str(path)!r}"
    if date_format:
        try:
            dates = pd.to_datetime(text, format=date_format)
        except (ValueError, TypeError) as e:
            raise UsageError(f"{where} does not follow data.date_format {date_format!r} ({str(e).splitlines()[0]}); "
                             f"pass the format of its values, e.g. --set data.date_format='%d/%m/%Y'") from None
        if "%y" in date_format and (dates > pd.Timestamp.now()).any():  # a two-digit year read into the future
            late = dates > pd.Timestamp.now()
            dates = dates.where(~late, dates - pd.DateOffset(years=100))
            print(f"rnr: {where}: two-digit years after this year read as the century before (e.g. "
                  f"{text[late].iloc[0]!r} as {dates[late].iloc[0]:%Y-%m-%d})", file=sys.stderr)
        return dates
    if text.str.fullmatch(r"\d{4}M\d{1,2}").all():
        return pd.to_datetime(text.str.replace("M", "-", regex=False), format="%Y-%m")
    if text.str.fullmatch(r"\d{4}-?Q[1-4]").all():
        return pd.PeriodIndex(text.str.replace("-", "", regex=False), freq="Q").to_timestamp().to_series(
            index=values.index)
    if text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True).any():
        dates = pd.to_datetime(text, utc=True).dt.tz_convert(None)
        print(f"rnr: {where} holds UTC offsets (e.g. {text.iloc[0]!r}); read as UTC times, so daylight-saving "
              f"changes and time zones leave no gaps; the forecasts are dated in UTC", file=sys.stderr)
        return dates
    swapped = text.str.extract(_DAY_MONTH)
    if len(text) and swapped.notna().all().all():
        first, second = swapped[0].astype(int), swapped[1].astype(int)
        if dayfirst is None and first.max() <= 12 and second.max() <= 12:
            shown = "; ".join(f"{v!r}: {pd.to_datetime(v, dayfirst=False):%Y-%m-%d} month first, "
                              f"{pd.to_datetime(v, dayfirst=True):%Y-%m-%d} day first" for v in text.iloc[:3])
            raise UsageError(f"{where} holds dates whose day and month could be either way round (every one of the "
                             f"first two numbers is at most 12): {shown}; pass --set data.dayfirst=true or false, or "
                             f"--set data.date_format='%d/%m/%Y'")
        dayfirst = bool(first.max() > 12) if dayfirst is None else dayfirst
        return pd.to_datetime(text, dayfirst=dayfirst)
    dates = pd.to_datetime(text, errors="coerce") if len(text) else None
    if len(text) and dates.notna().all() and not text.str.contains(r"\d{4}", regex=True).any():  # no 4-digit year
        fmt = guess_datetime_format(text.iloc[0]) or "%b-%y"
        shown = ", ".join(f"{v!r} read as {d:%Y-%m-%d}" if pd.notna(d) else repr(v)
                          for v, d in zip(text.iloc[:3], dates.iloc[:3]))
        raise UsageError(f"{where} holds two-digit years ({shown}): 49 could be 1949 or 2049; write four-digit "
                         f"years, or pass the format, e.g. --set data.date_format='{fmt}' (years after this one are "
                         f"then read as the century before)")
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
                    f"every date of the column in one format (2021-01-31 is the safest), or pass the right "
                    f"column with --time")
    first = str(error).splitlines()[0]
    return (f"time column {time_col!r} of {str(path)!r} holds neither integers nor dates ({first}, e.g. "
            f"{text.iloc[0]!r}); pass its format with --set data.date_format (e.g. '%Y-%m-%d'), or pass the right "
            f"column with --time")


def read_panel_csv(path, id_col: str, time_col: str, flag: str = "--data", reading: dict | None = None) -> pd.DataFrame:
    """The long-format CSV at ``path``, its series named in the column ``id_key(id_col)`` and its times read as
    ``reading`` (data.date_format, data.dayfirst, data.thousands) says."""
    reading = reading or {}
    path = Path(path)
    if not path.is_file():
        what = "the future covariates" if flag == "--future" else "the panel"
        raise UsageError(f"data file {str(path)!r} does not exist; pass the CSV of {what} with {flag}")
    try:
        df = pd.read_csv(path, thousands=reading.get("thousands"))
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
    if time_col not in df.columns:
        raise UsageError(f"--time column {time_col!r} is not in {str(path)!r}; its columns are {list(df.columns)}")
    ids, key = id_columns(id_col, df.columns, path), id_key(id_col)
    df.attrs["id_columns"] = ids  # the file's own: none for one series
    if not ids:  # one series, named after its target wherever it is read (training, future or actual values)
        df.insert(0, key, reading.get("target") or "series")
    elif len(ids) > 1:
        text = df[ids].astype(str)
        holds = [c for c in ids if text[c].str.contains(SEPARATOR, regex=False).any()]
        if holds:
            raise UsageError(f"--id {id_col!r}: each series is named by its id values joined with {SEPARATOR!r}, but "
                             f"column {holds[0]!r} holds it; replace {SEPARATOR!r} in those values")
        df.insert(0, key, text.agg(SEPARATOR.join, axis=1))
    if not pd.api.types.is_integer_dtype(df[time_col]):
        try:
            with warnings.catch_warnings():  # pandas' format-guessing notice; a failure gets the message below
                warnings.simplefilter("ignore", UserWarning)
                df[time_col] = _dates(df[time_col], time_col, path, reading.get("date_format"),
                                      reading.get("dayfirst"))
        except UsageError:
            raise
        except (ValueError, TypeError) as e:
            raise UsageError(_date_trouble(df[time_col], time_col, path, e)) from None
    return df


def _numeric(df: pd.DataFrame, columns, path) -> None:
    """Refuse numbers written with a thousands separator ('1,234'), naming the option that reads them."""
    for col in columns:
        if col in df.columns and not pd.api.types.is_numeric_dtype(df[col]):
            text = df[col].dropna().astype(str)
            grouped = text[text.str.fullmatch(r"-?\d{1,3}([,. ']\d{3})+([.,]\d+)?")]
            if len(grouped):
                sep = re.search(r"\d([,. '])\d{3}", grouped.iloc[0]).group(1)
                raise UsageError(f"column {col!r} of {str(path)!r} holds numbers with a thousands separator (e.g. "
                                 f"{grouped.iloc[0]!r}); pass --set data.thousands='{sep}' to read them")


def _summary(df: pd.DataFrame, key: str, time_col: str, freq) -> str:
    """What was read, in one line: series, rows, the date range and the frequency."""
    series = int(df[key].nunique())
    span = f"{df[time_col].min()} to {df[time_col].max()}"
    if pd.api.types.is_datetime64_any_dtype(df[time_col]):
        first, last = df[time_col].min(), df[time_col].max()
        fmt = "%Y-%m-%d" if (df[time_col].dt.normalize() == df[time_col]).all() else "%Y-%m-%d %H:%M"
        span = f"{first:{fmt}} to {last:{fmt}}"
    return f"{series} series, {len(df)} rows, {span}, frequency {freq}"


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
    df = read_panel_csv(data["path"], data["id"], data["time"], reading=data)
    _numeric(df, [data["target"], *data["past"], *data["future"]], data["path"])
    if not df.attrs["id_columns"] and data["id"]:
        data["id"] = ""  # a file of one series: recorded so that predict writes no id column
    key = id_key(data["id"])
    forecaster = RNNForecaster(**model, **options)
    forecaster.fit(df, id_col=key, time_col=data["time"], target=data["target"], past=data["past"],
                   future=data["future"], static=data["static"], freq=data["freq"], missing=data["missing"],
                   fill_gaps=data["fill_gaps"])
    read = _summary(df, key, data["time"], forecaster.panel_info_["freq"])
    return forecaster, {"rows": len(df), "series": int(df[key].nunique()), "trained_on": read,
                        "chosen": _chosen(forecaster)}


def _chosen(forecaster) -> dict:
    """What the forecaster chose from the data, for info.json and rnr info (``rnr.forecast.defaults``)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in forecaster.chosen_.items()}


def _columns(info_dict: dict) -> tuple[str, str, str]:
    """The model's id column (``id_key``: several id columns joined), time and target columns."""
    data = info_dict.get("data", {})
    return id_key(data.get("id", NO_ID)), data.get("time", "ds"), data.get("target", "y")


def _forecast(forecaster, info_dict: dict, future_path, h=None, future=None) -> pd.DataFrame:
    """Forecasts, with the future covariates of ``future_path`` (or the frame ``future``), in the model's ids."""
    data = info_dict.get("data", {})
    id_col, time_col, _ = _columns(info_dict)
    if future_path:
        future = read_panel_csv(future_path, data.get("id", NO_ID), time_col, "--future", reading=data)
    frame = forecaster.predict(h=h, future_df=future)
    cols = forecaster.panel_info_["columns"]
    return frame.rename(columns={cols.id: id_col, cols.time: time_col})


def predict(args, forecaster, info_dict) -> dict:
    if args.data:
        raise UsageError("--data applies to classify models; a forecaster forecasts from the end of the series it "
                         "was fitted on (give future covariates with --future)")
    if args.out:
        writable(args.out, "--out", reads={"the model": args.model, "--future": args.future})
    frame = _forecast(forecaster, info_dict, args.future, args.h)
    series = int(frame[_columns(info_dict)[0]].nunique())
    frame = user_frame(frame, info_dict.get("data", {}).get("id", NO_ID))  # in the user's own columns
    if args.out:
        frame.to_csv(args.out, index=False)
        text = f"wrote {len(frame)} forecasts of {series} series to {args.out}"
    else:
        text = frame.to_csv(index=False).rstrip("\n")
    result = {"rows": len(frame), "series": series, "out": args.out, "_text": text}
    if args.json and not args.out:
        result["forecasts"] = frame.to_dict(orient="records")
    return result


def evaluate(args, forecaster, info_dict) -> dict:
    data = info_dict.get("data", {})
    id_col, time_col, target = _columns(info_dict)
    actual = read_panel_csv(args.data, data.get("id", NO_ID), time_col, reading=data)
    if target not in actual.columns:
        raise UsageError(f"--data {args.data!r} has no target column {target!r}; its columns are "
                         f"{list(actual.columns)}")
    _numeric(actual, [target], args.data)
    steps = int(actual.groupby(id_col).size().max())
    future = None
    wanted = list(forecaster.panel_info_["columns"].future)
    if wanted and not args.future and all(c in actual.columns for c in wanted):
        future = actual  # the covariates at the forecast times come with the actual values
    frame = _forecast(forecaster, info_dict, args.future, min(steps, forecaster.config.horizon), future=future)
    both = frame.merge(actual[[id_col, time_col, target]], on=[id_col, time_col], how="inner")
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
    df = read_panel_csv(data["path"], data["id"], data["time"], reading=data)
    _numeric(df, [data["target"], *data["past"], *data["future"]], data["path"])
    key = id_key(data["id"] if df.attrs["id_columns"] else "")
    season = model.get("season")
    if season == "auto":  # what the forecaster will choose from this data (rnr.forecast.defaults)
        season = season_of(df, key, data["time"], data["freq"])
    m = args.m or season or 1
    result = run_backtest(RNNForecaster(**model), df, n_windows=args.windows, m=m, id_col=key,
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
    history = read_panel_csv(args.data, id_col, time_col, reading=info_dict.get("data", {}))
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
