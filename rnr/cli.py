"""The commands of ``rnr`` over saved models: ``fit forecast``, ``predict``, ``info`` and ``plot hidden``.

A model is a folder: ``model.safetensors`` (``rnr.save``: weights, scalers, each series' state) and ``info.json``
(what the model is and what it was trained on). Exit codes: 0 success, 2 a usage, configuration or input error
(the message names the argument, the rule, the value and the fix), 1 any other failure.
"""
import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from rnr import config as cfg

MODEL_FILE, INFO_FILE = "model.safetensors", "info.json"


class UsageError(ValueError):
    """Bad input from the command line; exit code 2."""


def add_commands(sub) -> None:
    """Register fit, predict and info on an argparse subparsers object."""
    fit = sub.add_parser("fit", help="train a model on a file and save it to a folder",
                         description="Train a model and save it to --out.", epilog=FIT_EXAMPLES,
                         formatter_class=_raw())
    fit.add_argument("task", choices=["forecast"], help="what to learn: forecast (a panel of time series)")
    _run_options(fit)
    fit.add_argument("--out", required=True, help="the model folder to write")
    fit.add_argument("--force", action="store_true", help="replace a model already in --out")
    _common(fit)
    bt = sub.add_parser("backtest", help="score a model and the baselines on rolling origins of a file",
                        epilog=BACKTEST_EXAMPLES, formatter_class=_raw())
    bt.add_argument("task", choices=["forecast"], help="what to score: forecast")
    _run_options(bt)
    bt.add_argument("--windows", type=int, default=3, help="rolling origins, each one horizon long (default 3)")
    bt.add_argument("--m", type=int, help="seasonal period for MASE and the seasonal baselines (default: model.season)")
    bt.add_argument("--out", help="also write every model's score per window to this CSV")
    _common(bt)
    ev = sub.add_parser("evaluate", help="score a saved model's forecasts against what happened",
                        epilog=EVALUATE_EXAMPLES, formatter_class=_raw())
    ev.add_argument("model", help="the model folder written by rnr fit")
    ev.add_argument("--data", required=True, help="a CSV of the actual values for the forecast steps")
    ev.add_argument("--future", help="a CSV of the future covariates, if the model has any")
    _common(ev)
    pred = sub.add_parser("predict", help="forecast with a saved model", epilog=PREDICT_EXAMPLES,
                          formatter_class=_raw())
    pred.add_argument("model", help="the model folder written by rnr fit")
    pred.add_argument("--future", help="a CSV of the future covariates for the next steps, if the model has any")
    pred.add_argument("--h", type=int, help="steps ahead (default: the horizon)")
    pred.add_argument("--out", help="the CSV to write (default: print it)")
    _common(pred)
    plot = sub.add_parser("plot", help="pictures of a model at work", epilog=PLOT_EXAMPLES, formatter_class=_raw())
    plot.add_argument("what", choices=["hidden"], help="hidden: the hidden state over a text (heatmap, GIF, HTML)")
    plot.add_argument("model", help="a character model file written by rnr.save (CharLM)")
    source = plot.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the text to read")
    source.add_argument("--text-file", help="a UTF-8 file holding the text to read")
    plot.add_argument("--units", help="comma-separated units for the HTML page (default: the most interpretable)")
    plot.add_argument("--k", type=int, default=4, help="how many interpretable units to show (default 4)")
    plot.add_argument("--out", required=True, help="the folder to write heatmap.png, hidden.gif, hidden.html to")
    _common(plot)
    gen = sub.add_parser("generate", help="write text with a character model", epilog=GENERATE_EXAMPLES,
                         formatter_class=_raw())
    gen.add_argument("model", help="a character model file written by rnr.save (CharLM)")
    gen.add_argument("--length", type=int, default=500, help="characters to write (default 500)")
    gen.add_argument("--prime", help="the text to start from")
    gen.add_argument("--temperature", type=float, default=1.0, help="below 1 more conservative, 0 greedy")
    gen.add_argument("--top-k", type=int, help="draw among the k most likely characters only")
    gen.add_argument("--top-p", type=float, help="draw among the most likely characters holding this probability")
    gen.add_argument("--seed", type=int, help="the same seed writes the same text")
    gen.add_argument("--out", help="write the text to this file (default: print it)")
    _common(gen)
    info = sub.add_parser("info", help="what a saved model is and what it was trained on")
    info.add_argument("model", help="the model folder written by rnr fit")
    _common(info)


FIT_EXAMPLES = """examples:
  rnr fit forecast --data sales.csv --id store --time date --target units --horizon 28 --out model/
  rnr fit forecast --config run.toml --set model.cell=lstm --set model.epochs=5 --out model/"""
PLOT_EXAMPLES = """examples:
  rnr plot hidden shakespeare.safetensors --text "First Citizen: Before we proceed" --out view/
  rnr plot hidden shakespeare.safetensors --text-file speech.txt --units 3,17 --out view/"""
BACKTEST_EXAMPLES = """examples:
  rnr backtest forecast --data sales.csv --horizon 14 --windows 3 --set model.season=7
  rnr backtest forecast --config run.toml --out scores.csv --json"""
EVALUATE_EXAMPLES = """examples:
  rnr evaluate model/ --data last_two_weeks.csv"""
GENERATE_EXAMPLES = """examples:
  rnr generate shakespeare.safetensors --prime "ROMEO:" --length 300 --temperature 0.8 --seed 1"""
PREDICT_EXAMPLES = """examples:
  rnr predict model/ --out forecast.csv
  rnr predict model/ --future prices.csv --json"""


def _raw():
    import argparse

    return argparse.RawDescriptionHelpFormatter


def _run_options(parser) -> None:
    parser.add_argument("--config", help="a TOML file with [data] and [model] tables")
    parser.add_argument("--data", help="the CSV file (data.path)")
    parser.add_argument("--id", help="the series column (data.id, default unique_id)")
    parser.add_argument("--time", help="the time column (data.time, default ds)")
    parser.add_argument("--target", help="the column to forecast (data.target, default y)")
    parser.add_argument("--horizon", type=int, help="steps to forecast (model.horizon)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any key, e.g. --set model.cell=lstm (repeatable)")


def _common(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object of results")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run(args) -> int:
    """Run a parsed command; returns the exit code."""
    try:
        commands = {"fit": fit_forecast, "predict": predict, "info": info, "plot": plot_hidden,
                    "backtest": backtest_forecast, "evaluate": evaluate, "generate": generate}
        result = commands[args.command](args)
    except (UsageError, cfg.ConfigError, ValueError, TypeError, FileNotFoundError, KeyError) as e:
        print(f"rnr {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnr {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # a failure, not an input error: say what and where
        print(f"rnr {args.command}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    text = result.pop("_text")
    if args.json:
        print(json.dumps(result, default=str))
    elif not args.quiet:
        print(text)
    return 0


def _config_from_args(args) -> dict:
    config = cfg.load_toml(args.config) if args.config else {}
    source = f"--config {args.config}" if args.config else "the command line"
    flags = {"data": {"path": args.data, "id": args.id, "time": args.time, "target": args.target},
             "model": {"horizon": args.horizon}}
    for table, values in flags.items():
        for key, value in values.items():
            if value is not None:
                config.setdefault(table, {})[key] = value
    return cfg.validate(cfg.merge(config, args.set), source)


def read_panel_csv(path, id_col: str, time_col: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"data file {str(path)!r} does not exist; pass the CSV of the panel with --data")
    try:
        df = pd.read_csv(path)
    except UnicodeDecodeError:
        raise UsageError(f"data file {str(path)!r} is not UTF-8 text; save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UsageError(f"data file {str(path)!r} is not a readable CSV ({e}); check its separator and quoting") \
            from None
    for role, col in (("--id", id_col), ("--time", time_col)):
        if col not in df.columns:
            raise UsageError(f"{role} column {col!r} is not in {str(path)!r}; its columns are {list(df.columns)}")
    if not pd.api.types.is_integer_dtype(df[time_col]):
        try:
            with warnings.catch_warnings():  # pandas' format-guessing notice; a failure gets the message below
                warnings.simplefilter("ignore", UserWarning)
                df[time_col] = pd.to_datetime(df[time_col])
        except (ValueError, TypeError) as e:
            raise UsageError(f"time column {time_col!r} of {str(path)!r} holds neither integers nor dates ({e}); "
                             f"pass the right column with --time") from None
    return df


def fit_forecast(args) -> dict:
    from rnr.forecast import RNNForecaster
    from rnr.io import save

    run_config = _config_from_args(args)
    data, model = run_config["data"], run_config["model"]
    out = Path(args.out)
    if (out / MODEL_FILE).exists() and not args.force:
        raise UsageError(f"--out {str(out)!r} already holds a model; pass --force to replace it, or another folder")
    df = read_panel_csv(data["path"], data["id"], data["time"])
    model["progress"] = not (args.quiet or args.json) and sys.stderr.isatty()
    forecaster = RNNForecaster(**model)
    start = time.perf_counter()
    forecaster.fit(df, id_col=data["id"], time_col=data["time"], target=data["target"], past=data["past"],
                   future=data["future"], static=data["static"], freq=data["freq"], missing=data["missing"])
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    save(forecaster, out / MODEL_FILE)
    info_dict = {"task": "forecast", "class": "RNNForecaster", "data": data, "model": model,
                 "rows": len(df), "series": int(df[data["id"]].nunique()),
                 "train_loss": forecaster.history_[-1]["train_loss"] if forecaster.history_ else None,
                 "fit_seconds": round(seconds, 3), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (out / INFO_FILE).write_text(json.dumps(info_dict, indent=1, default=str), encoding="utf-8")
    text = (f"fitted {forecaster!r} on {info_dict['series']} series ({len(df)} rows) in {seconds:.1f} s; "
            f"saved to {out}/")
    return {**info_dict, "out": str(out), "_text": text}


def _load_model(folder):
    from rnr.io import load

    folder = Path(folder)
    if not (folder / MODEL_FILE).is_file():
        raise UsageError(f"{str(folder)!r} is not a model folder (no {MODEL_FILE} in it); pass the --out folder "
                         f"of rnr fit")
    info_dict = {}
    if (folder / INFO_FILE).is_file():
        try:
            info_dict = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{str(folder / INFO_FILE)!r} is damaged ({e}); fit the model again") from None
        if not isinstance(info_dict, dict):
            raise UsageError(f"{str(folder / INFO_FILE)!r} must hold a JSON object, got {type(info_dict).__name__}")
    return load(folder / MODEL_FILE), info_dict


def predict(args) -> dict:
    forecaster, info_dict = _load_model(args.model)
    future = None
    if args.future:
        data = info_dict.get("data", {})
        future = read_panel_csv(args.future, data.get("id", "unique_id"), data.get("time", "ds"))
    frame = forecaster.predict(h=args.h, future_df=future)
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


def info(args) -> dict:
    forecaster, info_dict = _load_model(args.model)
    params = sum(p.numel() for p in forecaster.net_.parameters())
    result = {**info_dict, "model_repr": repr(forecaster), "parameters": params,
              "series_known": len(forecaster.panel_info_["ids"])}
    lines = [f"{args.model}: {result['model_repr']}", f"  parameters: {params}",
             f"  series: {result['series_known']}"]
    for key in ("data", "rows", "train_loss", "fit_seconds", "created"):
        if key in info_dict:
            lines.append(f"  {key}: {info_dict[key]}")
    result["_text"] = "\n".join(lines)
    return result


def _load_charlm(path, command: str):
    from rnr.charlm import CharLM
    from rnr.io import load

    if not Path(path).is_file():
        raise UsageError(f"model file {path!r} does not exist; pass a CharLM saved with rnr.save")
    model = load(path)
    if not isinstance(model, CharLM):
        raise UsageError(f"rnr {command} reads character models (CharLM); {path!r} holds a {type(model).__name__}")
    return model


def generate(args) -> dict:
    model = _load_charlm(args.model, "generate")
    if args.length < 1:
        raise UsageError(f"--length must be >= 1, got {args.length}")
    text = model.sample(length=args.length, prime=args.prime, temperature=args.temperature, top_k=args.top_k,
                        top_p=args.top_p, seed=args.seed)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return {"text": text, "length": len(text), "out": args.out,
            "_text": f"wrote {len(text)} characters to {args.out}" if args.out else text}


def plot_hidden(args) -> dict:
    from rnr.hidden import write_view

    model = _load_charlm(args.model, "plot hidden")
    if args.text_file:
        try:
            text = Path(args.text_file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--text-file {args.text_file!r} does not exist") from None
        except UnicodeDecodeError:
            raise UsageError(f"--text-file {args.text_file!r} is not UTF-8 text; save it as UTF-8") from None
    else:
        text = args.text
    units = None
    if args.units:
        try:
            units = [int(u) for u in args.units.split(",")]
        except ValueError:
            raise UsageError(f"--units must be comma-separated integers, got {args.units!r}; e.g. --units 3,17") \
                from None
        bad = [u for u in units if not 0 <= u < model.hidden_size]
        if bad:
            raise UsageError(f"--units must lie in [0, {model.hidden_size}) (the model's hidden units), got {bad}")
    paths = write_view(model, text, args.out, units=units, k=args.k)
    text_out = "wrote " + ", ".join(str(p) for p in paths.values())
    return {"files": {k: str(v) for k, v in paths.items()}, "characters": len(text), "_text": text_out}


def backtest_forecast(args) -> dict:
    from rnr.backtest import backtest
    from rnr.forecast import RNNForecaster

    run_config = _config_from_args(args)
    data, model = run_config["data"], run_config["model"]
    if args.windows < 1:
        raise UsageError(f"--windows must be >= 1, got {args.windows}")
    df = read_panel_csv(data["path"], data["id"], data["time"])
    model["progress"] = not (args.quiet or args.json) and sys.stderr.isatty()
    m = args.m or model.get("season") or 1
    result = backtest(RNNForecaster(**model), df, n_windows=args.windows, m=m, id_col=data["id"],
                      time_col=data["time"], target=data["target"], future=data["future"], static=data["static"])
    table = result.table()
    if args.out:
        result.scores.to_csv(args.out, index=False)
    return {"table": table.reset_index().to_dict(orient="records"), "windows": args.windows, "m": m,
            "out": args.out, "_text": table.to_string()}


def evaluate(args) -> dict:
    from rnr import metrics

    forecaster, info_dict = _load_model(args.model)
    data = info_dict.get("data", {})
    id_col, time_col, target = data.get("id", "unique_id"), data.get("time", "ds"), data.get("target", "y")
    actual = read_panel_csv(args.data, id_col, time_col)
    if target not in actual.columns:
        raise UsageError(f"--data {args.data!r} has no target column {target!r}; its columns are "
                         f"{list(actual.columns)}")
    future = read_panel_csv(args.future, id_col, time_col) if args.future else None
    steps = int(actual.groupby(id_col).size().max())
    frame = forecaster.predict(h=min(steps, forecaster.config.horizon), future_df=future)
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
