"""The ``rnr`` command: its parsers, the dispatch, ``rnr fit`` and ``rnr info``.

The commands of each task live in ``rnr.cli.forecast`` (forecast), ``rnr.cli.sequences`` (classify, text, export)
and ``rnr.cli.transcribe`` (transcribe); what they share (model folders, output paths, configuration) in
``rnr.cli.common``.

Exit codes: 0 success, 2 a usage, configuration or input error (the message names the argument, the rule, the value
and the fix), 1 any other failure, 130 a Ctrl-C (during ``rnr fit``: after the model trained so far was saved).
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path

from rnr._version import __version__
from rnr.cli import config as cfg
from rnr.cli import folder
from rnr.cli import forecast as cli_forecast
from rnr.cli import sequences as cli_sequences
from rnr.cli import transcribe as cli_transcribe
from rnr.cli.common import (
    INFO_FILE,
    MODEL_FILE,
    TASKS,
    UsageError,
    config_from_args,
    epoch_lines,
    load_model,
    show_progress,
    writable,
)
from rnr.cli.demo import main as demo_main
from rnr.cli.tour import main as tour_main
from rnr.io import save
from rnr.training import distributed
from rnr.training.logs import graceful_stop

# parsers ----------------------------------------------------------------------------------------------------------
FIT_EXAMPLES = """examples:
  rnr fit forecast --data sales.csv --id store --time date --target units --horizon 28 --out model/
  rnr fit forecast --config run.toml --set model.cell=lstm --set model.epochs=5 --out model/
  rnr fit classify --data reviews.csv --text review --label sentiment --out clf/
  rnr fit classify --data gestures.csv --id gesture --time t --label kind --out clf/
  rnr fit classify --data JapaneseVowels_TRAIN.ts --out vowels/
  rnr fit text --data shakespeare.txt --set model.hidden_size=256 --out lm/
  rnr fit transcribe --data recordings/ --set data.name_pattern='(?P<text>[^_]+)_' --out asr/
  rnr fit transcribe --data utterances.csv --set data.path_column=file --set model.beam_width=8 --out asr/
  rnr fit forecast ... --out model/ --resume      (continue a run stopped by Ctrl-C)
  rnr fit forecast --help-keys     (every [data] and [model] key of a task: its default and what it means)"""
PREDICT_EXAMPLES = """examples:
  rnr predict model/ --out forecast.csv
  rnr predict model/ --future prices.csv --json
  rnr predict clf/ --data new_reviews.csv --out labels.csv
  rnr predict asr/ --data new_recordings/ --beam 8 --out transcripts.csv"""
EVALUATE_EXAMPLES = """examples:
  rnr evaluate model/ --data last_two_weeks.csv
  rnr evaluate clf/ --data test_reviews.csv
  rnr evaluate lm/ --data held_out.txt
  rnr evaluate asr/ --data test_recordings/ --json"""
BACKTEST_EXAMPLES = """examples:
  rnr backtest forecast --data sales.csv --horizon 14 --windows 3 --set model.season=7
  rnr backtest forecast --config run.toml --out scores.csv --json"""
GENERATE_EXAMPLES = """examples:
  rnr generate lm/ --prime "ROMEO:" --length 300 --temperature 0.8 --seed 1"""
PLOT_EXAMPLES = """examples:
  rnr plot forecast model/ --data sales.csv --out forecast.png
  rnr plot forecast model/ --data sales.csv --series s1,s4 --last 60 --out forecast.png
  rnr plot hidden lm/ --text "First Citizen: Before we proceed" --out view/
  rnr plot hidden lm/ --text-file speech.txt --units 3,17 --out view/
  rnr plot transcribe asr/ --audio 3_theo_0.wav --out heard.png"""
EXPORT_EXAMPLES = """examples:
  rnr export lm/ --onnx --out lm.onnx"""


def add_commands(sub) -> None:
    """Register the commands on an argparse subparsers object."""
    fit = _parser(sub, "fit", "train a model on a file and save it to a folder", FIT_EXAMPLES)
    fit.add_argument("task", choices=TASKS, help="forecast (a panel of time series), classify (labelled sequences or "
                                                  "texts), text (a character language model), transcribe (speech "
                                                  "to text: WAV files and their transcripts)")
    every = fit.add_argument_group("every task")  # one parser for three tasks: the groups say which flag is whose
    columns = fit.add_argument_group("rnr fit forecast and classify")
    forecast = fit.add_argument_group("rnr fit forecast only")
    _run_options(every, columns, forecast)
    forecast.add_argument("--nproc", type=int, help="train with N processes on this machine (torchrun, DDP; "
                                                    "model.batch_size is the global batch)")
    classify = fit.add_argument_group("rnr fit classify only")
    classify.add_argument("--label", help="the column of labels (data.label, default label)")
    classify.add_argument("--text", help="the column of texts (data.text)")
    fit.add_argument_group("rnr fit classify and text").add_argument(
        "--val", help="a file to report on after each epoch (data.val_path); rnr fit transcribe: a folder or CSV")
    every.add_argument("--out", required=True, help="the model folder to write")
    every.add_argument("--force", action="store_true", help="replace a model already in --out")
    every.add_argument("--resume", action="store_true", help="continue the run whose checkpoints are in --out")
    every.add_argument("--help-keys", action=HelpKeys)
    _common(fit)
    bt = _parser(sub, "backtest", "score a model and the baselines on rolling origins of a file", BACKTEST_EXAMPLES)
    bt.add_argument("task", choices=["forecast"], help="what to score: forecast")
    _run_options(bt)
    bt.add_argument("--windows", type=int, default=3, help="rolling origins, each one horizon long (default 3)")
    bt.add_argument("--m", type=int, help="seasonal period for MASE and the seasonal baselines (default: model.season)")
    bt.add_argument("--out", help="also write every model's score per window to this CSV")
    bt.add_argument("--help-keys", action=HelpKeys)
    _common(bt)
    ev = _parser(sub, "evaluate", "score a saved model on data it has not seen", EVALUATE_EXAMPLES)
    ev.add_argument("model", help="the model folder written by rnr fit")
    ev.add_argument("--data", required=True, help="forecast: the actual values of the forecast steps; classify: "
                                                  "labelled sequences; text: a text file; transcribe: a folder of "
                                                  "WAV files or a CSV of paths and transcripts")
    ev.add_argument("--future", help="forecast: a CSV of the future covariates, if the model has any")
    ev.add_argument("--beam", type=int, help="transcribe: the beam width of decoding (default: model.beam_width; 1 "
                                             "greedy)")
    _common(ev)
    pred = _parser(sub, "predict", "forecast, classify or transcribe with a saved model", PREDICT_EXAMPLES)
    pred.add_argument("model", help="the model folder written by rnr fit")
    pred.add_argument("--data", help="classify: the sequences or texts to label; transcribe: a WAV file, a folder of "
                                     "WAV files or a CSV with a column of WAV paths")
    pred.add_argument("--future", help="forecast: a CSV of the future covariates for the next steps, if any")
    pred.add_argument("--h", type=int, help="forecast: steps ahead (default: the horizon)")
    pred.add_argument("--beam", type=int, help="transcribe: the beam width of decoding (default: model.beam_width; 1 "
                                               "greedy)")
    pred.add_argument("--out", help="the CSV to write (default: print it)")
    _common(pred)
    plot = _parser(sub, "plot", "pictures of a model at work", PLOT_EXAMPLES)
    plot.add_argument("what", choices=["forecast", "hidden", "transcribe"],
                      help="forecast: history and forecast per series (PNG); hidden: the hidden state over a text "
                           "(heatmap, GIF, HTML); transcribe: a WAV file's spectrogram, token probabilities and "
                           "alignment (PNG)")
    plot.add_argument("model", help="the model folder written by rnr fit (or a model file written by rnr.save)")
    plot.add_argument("--data", help="forecast: the CSV of the history the model was fitted on")
    plot.add_argument("--future", help="forecast: a CSV of the future covariates, if the model has any")
    plot.add_argument("--series", help="forecast: comma-separated ids to draw (default: the first four)")
    plot.add_argument("--last", type=int, default=100, help="forecast: history steps to draw (default 100)")
    plot.add_argument("--text", help="hidden: the text to read")
    plot.add_argument("--text-file", help="hidden: a UTF-8 file holding the text to read")
    plot.add_argument("--units", help="hidden: comma-separated units for the HTML page (default: the most "
                                      "interpretable)")
    plot.add_argument("--k", type=int, default=4, help="hidden: how many interpretable units to show (default 4)")
    plot.add_argument("--audio", help="transcribe: the WAV file to transcribe")
    plot.add_argument("--out", required=True, help="forecast, transcribe: the PNG to write; hidden: the folder to "
                                                   "write heatmap.png, hidden.gif, hidden.html to")
    _common(plot)
    gen = _parser(sub, "generate", "write text with a character model", GENERATE_EXAMPLES)
    gen.add_argument("model", help="the model folder written by rnr fit text (or a CharLM file)")
    gen.add_argument("--length", type=int, default=500, help="characters to write (default 500)")
    gen.add_argument("--prime", help="the text to start from")
    gen.add_argument("--temperature", type=float, default=1.0, help="below 1 more conservative, 0 greedy")
    gen.add_argument("--top-k", type=int, help="draw among the k most likely characters only")
    gen.add_argument("--top-p", type=float, help="draw among the most likely characters holding this probability")
    gen.add_argument("--seed", type=int, help="the same seed writes the same text")
    gen.add_argument("--out", help="write the text to this file (default: print it)")
    _common(gen)
    exp = _parser(sub, "export", "write a model for other runtimes (ONNX, one step at a time)", EXPORT_EXAMPLES)
    exp.add_argument("model", help="the model folder written by rnr fit text (or a model file)")
    exp.add_argument("--onnx", action="store_true", required=True, help="write ONNX (the state as input and output)")
    exp.add_argument("--out", help="the file to write (default: model.onnx in the model folder)")
    _common(exp)
    info = _parser(sub, "info", "what a saved model is and what it was trained on", None)
    info.add_argument("model", help="the model folder written by rnr fit")
    _common(info)


def _parser(sub, name: str, help: str, examples: str | None):
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", epilog=examples,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _run_options(every, columns=None, forecast=None) -> None:
    """The flags of a run's configuration, on a parser or, for rnr fit, on the groups of the tasks they apply to."""
    columns, forecast = columns or every, forecast or every
    every.add_argument("--config", help="a TOML file with [data] and [model] tables")
    every.add_argument("--data", help="the file to learn from (data.path)")
    columns.add_argument("--id", help="the series or sequence column (data.id)")
    columns.add_argument("--time", help="the time column (data.time)")
    forecast.add_argument("--target", help="the column to forecast (data.target, default y)")
    forecast.add_argument("--horizon", type=int, help="steps to forecast (model.horizon)")
    every.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any key, e.g. --set model.cell=lstm (repeatable; the keys: --help-keys)")


class HelpKeys(argparse.Action):
    """``rnr fit TASK --help-keys``: print the task's [data] and [model] keys (every task's without one) and exit."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="list the task's [data] and [model] keys (for --config and --set) with their defaults "
                              "and meanings, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        task = getattr(namespace, "task", None)
        print("\n\n".join(cfg.describe(t) for t in ([task] if task else TASKS)))
        parser.exit()


def _common(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object of results")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


# the library's advice in the command's terms: one table for every message -------------------------------------
API_TO_FLAGS = (
    (r"\bpass fill_gaps=True\b", "pass --set data.fill_gaps=true"),
    (r"\bmissing='(\w+)', '(\w+)' or '(\w+)'", r"--set data.missing=\1, \2 or \3"),
    (r"\bpass missing='(\w+)'", r"pass --set data.missing=\1"),
    (r"\bmissing='(\w+)' or '(\w+)'", r"--set data.missing=\1 or \2"),
    (r"\bpass the right freq=", "pass the right --set data.freq="),
    (r"\bpass predict\(future_df=\.\.\.\)", "pass them with --future"),
    (r"\bcreate the model with unknown='map'", "fit the model with --set model.unknown=map"),
    (r"\bconvert it with pd\.to_numeric", "write it as plain numbers (for 1,234 pass --set data.thousands=',')"),
    (r"\bpass a smaller stride\b", "pass a smaller --set model.stride=N"),
)


def in_command_terms(message: str) -> str:
    """A library message with each API fix it offers (``fill_gaps=True``) replaced by the command's (``--set
    data.fill_gaps=true``)."""
    for pattern, flag in API_TO_FLAGS:
        message = re.sub(pattern, flag, message)
    return message


def attributed(message: str, origins: dict) -> str:
    """A library message about a setting the user gave (it starts with the argument: ``RNNForecaster: lr must ...``,
    ``season must ...``) with where it was given: ``... (model.lr came from run.toml:3)``; ``origins`` as
    ``config_from_args`` leaves them in ``args.origins``."""
    first = re.match(r"(?:[A-Z]\w*: )?(\w+)\b", message)
    for table in ("model", "data"):
        if first and (table, first[1]) in origins:
            return f"{message} ({table}.{first[1]} came from {origins[table, first[1]]})"
    return message


# dispatch ---------------------------------------------------------------------------------------------------------
def run(args) -> int:
    """Run a parsed command; returns the exit code."""
    plots = {"forecast": cli_forecast.plot, "hidden": cli_sequences.plot_hidden, "transcribe": cli_transcribe.plot}
    commands = {"fit": fit, "predict": by_task(cli_forecast.predict, cli_sequences.predict, cli_transcribe.predict),
                "evaluate": by_task(cli_forecast.evaluate, cli_sequences.evaluate, cli_transcribe.evaluate),
                "info": info, "backtest": cli_forecast.backtest, "generate": cli_sequences.generate,
                "plot": lambda a: plots[a.what](a), "export": cli_sequences.export}
    try:
        with epoch_lines(args):
            result = commands[args.command](args)
    except (UsageError, cfg.ConfigError, ValueError, TypeError, FileNotFoundError, IsADirectoryError,
            NotADirectoryError, PermissionError, KeyError, ImportError) as e:  # about the paths and data given
        message = attributed(in_command_terms(str(e)), getattr(args, "origins", {}))
        print(f"rnr {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnr {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # a failure, not an input error: say what and where
        print(f"rnr {args.command}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    text, code = result.pop("_text"), result.pop("_exit", 0)
    if args.json:
        print(json.dumps(result, default=str))
    elif not args.quiet:
        print(text)
    return code


def by_task(forecast, other, transcribe):
    """A command that reads a model folder and runs ``forecast`` for forecasters, ``transcribe`` for transcribers,
    ``other`` for the rest."""
    def command(args):
        model, info_dict = load_model(args.model)
        task = info_dict.get("task", "forecast")
        if args.beam is not None and task != "transcribe":
            raise UsageError(f"--beam applies to transcribe models (the beam width of CTC decoding); {args.model!r} "
                             f"holds a {task} model: leave out --beam")
        return {"forecast": forecast, "transcribe": transcribe}.get(task, other)(args, model, info_dict)

    return command


# model folders ----------------------------------------------------------------------------------------------------
def fit(args) -> dict:
    """``rnr fit TASK``: train inside ``graceful_stop`` (a first Ctrl-C stops after the step it is in) and save the
    model folder, also when stopped (exit code 130, and ``--resume`` continues)."""
    run_config = config_from_args(args, args.task)
    out = writable(args.out, "--out", folder=True)  # before training, so no run is lost to a bad path
    if args.nproc is not None:
        if args.nproc < 1:
            raise UsageError(f"--nproc must be >= 1, got {args.nproc}")
        if args.task != "forecast":
            raise UsageError(f"--nproc applies to rnr fit forecast; rnr fit {args.task} trains in one process")
        if args.nproc > 1 and distributed.world_from_env() == 1:
            return _launch(args, out)
    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:  # the first process holds the folder
        return _fit(args, run_config, out, None, rank)
    with folder.locked(out):
        identity = folder.begin(out, run_config, force=args.force, resume=args.resume)
        try:
            result = _fit(args, run_config, out, identity, rank)
        except BaseException:
            folder.rollback(out)
            raise
        folder.commit(out)
        return result


def _fit(args, run_config: dict, out: Path, identity: dict | None, rank: int) -> dict:
    trainer = {"forecast": cli_forecast.fit, "classify": cli_sequences.fit_classify,
               "text": cli_sequences.fit_text, "transcribe": cli_transcribe.fit}[args.task]
    options = dict(progress=show_progress(args), log_dir=str(out), checkpoint_dir=str(out / "checkpoints"),
                   resume=args.resume)
    start = time.perf_counter()
    with graceful_stop("stopping after this step and saving the model; Ctrl-C again to stop at once"):
        model, facts = trainer(run_config, options)
    seconds = time.perf_counter() - start
    if rank != 0:  # the first process writes the folder and reports
        args.quiet, args.json = True, False
        return {"_text": "", "_exit": 130 if getattr(model, "interrupted_", False) else 0}
    history = model.history_ if isinstance(model.history_, list) else model.history_.rows
    interrupted = bool(getattr(model, "interrupted_", False) or getattr(model.history_, "interrupted", False))
    out.mkdir(parents=True, exist_ok=True)
    save(model, out / MODEL_FILE)
    info_dict = {"task": args.task, "class": type(model).__name__, "data": run_config["data"],
                 "model": run_config["model"], **facts, "epochs_done": len(history),
                 "train_loss": history[-1]["train_loss"] if history else None, "interrupted": interrupted,
                 "fit_seconds": round(seconds, 3), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "run_id": identity["run_id"], "resumed": bool(args.resume)}
    (out / INFO_FILE).write_text(json.dumps(info_dict, indent=1, default=str), encoding="utf-8")
    text = f"fitted {model!r} ({facts['trained_on']}) in {seconds:.1f} s; saved to {out}/"
    stopped_member = getattr(model, "stopped_member_", None)
    if interrupted and stopped_member:  # a later network of an ensemble: the ones before it are complete
        text = (f"stopped by Ctrl-C while training network {stopped_member + 1} of the ensemble; saved the "
                f"{stopped_member} complete network(s) to {out}/ (rnr predict averages them); "
                f"`{_again(args, '--force')}` trains the whole ensemble")
    elif interrupted:  # the open epoch is in the checkpoint: --resume finishes it
        epochs = run_config["model"].get("epochs")
        of = f" of {epochs}" if isinstance(epochs, int) else ""
        reader = "rnr generate" if args.task == "text" else "rnr predict"
        text = (f"stopped by Ctrl-C after {len(history)}{of} epochs; saved the model trained so far to {out}/ "
                f"({reader} reads it); `{_again(args, '--resume')}` continues the run")
    return {**info_dict, "out": str(out), "_text": text, **({"_exit": 130} if interrupted else {})}


def _again(args, flag: str) -> str:
    """This rnr fit command as typed, with ``flag`` (--resume or --force) in place of either."""
    argv = [a for a in args.argv if a not in ("--resume", "--force")]
    return shlex.join(["rnr", *argv, flag])


def _launch(args, out: Path) -> dict:
    """``rnr fit ... --nproc N``: the same command in N processes started by torchrun (this machine only)."""
    argv, drop = [], False
    for a in args.argv:
        if drop:
            drop = False
        elif a == "--nproc":
            drop = True
        elif not a.startswith("--nproc="):
            argv.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}", "-m",
           "rnr", *argv]
    code = subprocess.call(cmd)
    if code not in (0, 130) or not (out / INFO_FILE).is_file():
        raise RuntimeError(f"torchrun exited with code {code}: see the messages above")
    info_dict = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    args.quiet, args.json = True, False  # the first process has already reported
    return {**info_dict, "processes": args.nproc, "_exit": code, "_text": ""}


def info(args) -> dict:
    model, info_dict = load_model(args.model)
    net = getattr(model, "net_", None) or getattr(model, "model_", None)
    params = sum(p.numel() for p in net.parameters()) if net is not None else 0
    result = {**info_dict, "model_repr": repr(model), "parameters": params}
    lines = [f"{args.model}: {result['model_repr']}", f"  task: {info_dict.get('task')}", f"  parameters: {params}"]
    if hasattr(model, "panel_info_"):
        result["series_known"] = len(model.panel_info_["ids"])
        lines.append(f"  series: {result['series_known']}")
    if hasattr(model, "classes_"):
        result["classes"] = model.classes_.tolist()
        lines.append(f"  classes: {result['classes']}")
    for key in ("data", "trained_on", "chosen", "epochs_done", "train_loss", "interrupted", "fit_seconds", "created"):
        if key in info_dict:
            lines.append(f"  {key}: {info_dict[key]}")
    result["_text"] = "\n".join(lines)
    return result


def main(argv: list[str] | None = None) -> int:
    """The ``rnr`` command; returns the exit code. Python warnings read ``rnr: warning: <message>``, and a reader
    that leaves early (``rnr predict m/ | head -3``) ends the command quietly."""
    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe is met here, not at exit
        return code
    except BrokenPipeError:
        try:  # what is still buffered goes nowhere, so Python's exit does not complain
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (a test's capture)
            pass
        return 141  # 128 + SIGPIPE, as a tool killed by the closed pipe would
    finally:
        warnings.formatwarning = previous


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as the command says it: its message, in the command's terms, without Python's source line."""
    kind = "" if category in (UserWarning, RuntimeWarning) else f"{category.__name__}: "
    return f"rnr: warning: {kind}{in_command_terms(str(message))}\n"


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="rnr",
        description="Recurrent neural networks for every kind of sequence.",
        epilog="examples:\n"
               "  rnr fit forecast --data sales.csv --id store --time date --target units --horizon 28 --out model/\n"
               "  rnr predict model/ --out forecast.csv\n"
               "  rnr info model/\n"
               "  rnr fit classify --data reviews.csv --text review --label sentiment --out clf/\n"
               "  rnr fit text --data shakespeare.txt --out lm/ && rnr generate lm/ --prime ROMEO:\n"
               "  rnr demo    backtest a forecaster on a generated sales panel against the baselines\n"
               "  rnr tour    train each topology on a small task and print a table\n"
               "exit codes: 0 success, 2 usage or input error, 1 failure",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    add_commands(sub)
    sub.add_parser("tour", help="train each topology on its small generated task and print a table")
    sub.add_parser("demo", help="backtest a forecaster on a generated sales panel (options: rnr demo --help)",
                   add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        return demo_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.version:
        print(__version__)
        return 0
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command in ("fit", "predict", "info", "plot", "backtest", "evaluate", "generate", "export"):
        return run(args)
    if args.command == "tour":
        tour_main()
        return 0
    parser.print_help()
    return 2
