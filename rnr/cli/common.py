"""What every command of ``rnr`` shares: the usage error, model folders, output paths, progress and the run's
configuration from ``--config``, the flags and ``--set``.

A fitted model is a folder: ``model.safetensors`` (``rnr.save``: weights, scalers, vocabulary, each series'
state), ``info.json`` (the task, the run's configuration, what it was trained on), ``metrics.csv`` (one row per
epoch) and ``checkpoints/`` (for ``--resume``).
"""
import json
import logging
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from rnr.cli import config as cfg
from rnr.io import MODEL_FILE, load

INFO_FILE = "info.json"
TASKS = ("forecast", "classify", "text", "transcribe")
TASK_OF_CLASS = {"RNNForecaster": "forecast", "CharLM": "text", "Transcriber": "transcribe"}  # others: classify


class UsageError(ValueError):
    """Bad input from the command line; exit code 2."""


def show_progress(args) -> bool:
    """Progress bars go to a terminal only, and never with --quiet or --json."""
    return not (args.quiet or args.json) and sys.stderr.isatty()


@contextmanager
def epoch_lines(args):
    """Inside the block, where no progress bar shows (the output is not a terminal) and not --quiet, the lines of the
    training loop (the ``rnr.training`` logger) go to standard error: the threads of each run, ``rnr fit: threads: 1
    (chosen: ...)``, and each epoch's, ``rnr fit: epoch 3/60: train_loss 0.1234; 12.3 s``."""
    if args.quiet or show_progress(args):
        yield
        return
    logger, handler = logging.getLogger("rnr.training"), logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"rnr {args.command}: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextmanager
def removed_on_failure(path):
    """Inside the block, a failure removes the folders that the block made at ``path`` and above it (those that did
    not exist before), with what was written in them; never a folder that existed."""
    path = Path(path)
    new = [p for p in (path, *path.parents) if not p.exists() and not p.is_symlink()]
    try:
        yield
    except BaseException:
        if new and new[-1].is_dir() and not new[-1].is_symlink():
            shutil.rmtree(new[-1], ignore_errors=True)  # the topmost folder made here: all of it is this run's
        raise


def config_from_args(args, task: str) -> dict:
    """The run's {"data", "model"} configuration: the --config file, then the flags, then each --set. Where each key
    came from (``args.origins``: the file and line, the flag or the --set item) is named in every message about it."""
    config = cfg.load_toml(args.config) if args.config else {}
    origins = cfg.file_origins(args.config) if args.config else {}
    source = f"--config {args.config}" if args.config else "the command line"
    keys = cfg.schema(task)
    for (table, key), flag in cfg.FLAGS.items():
        value = getattr(args, flag[2:], None)
        if value is None:
            continue
        if key not in keys[table]:
            raise UsageError(f"{flag} does not apply to rnr fit {task}; it applies to "
                             f"{[t for t in TASKS if key in cfg.schema(t)[table]]}")
        config.setdefault(table, {})[key] = value
        origins[table, key] = flag
    merged = cfg.merge(config, args.set)
    args.origins = {**origins, **cfg.set_origins(args.set)}
    return cfg.validate(merged, source, task, args.origins)


# what rnr fit writes into a model folder; no other command writes over them
MODEL_FOLDER_FILES = (MODEL_FILE, INFO_FILE, "metrics.csv")


def writable(path, flag: str, folder: bool = False, reads: dict | None = None) -> Path:
    """``path``, the value of ``flag``, checked before any work: a folder to write into (``folder=True``) or a file
    to write. A file's missing folders are made; a folder itself is made when the command writes it.

    ``reads``: what the command reads, ``{"--data": path, "the model": folder or file, ...}``. The output may be
    none of those files, nor a file that rnr fit wrote into a model folder read (``MODEL_FOLDER_FILES``, anything
    under ``checkpoints/``); symbolic links are followed, so a link to one of them is refused too."""
    path = Path(path)
    if reads:
        _not_an_input(path, flag, reads)
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {str(path)!r} is a file, but {flag} names the folder to write to; pass a folder")
    if not folder and path.is_dir():
        raise UsageError(f"{flag} {str(path)!r} is a folder; pass a file path, e.g. {str(path / 'out.csv')!r}")
    above = path if folder else path.parent
    blocker = next((p for p in (above, *above.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UsageError(f"{flag} {str(path)!r} cannot be written: {str(blocker)!r} is a file, not a folder; pass a "
                         f"path in a folder")
    existing = next(p for p in (above, *above.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {str(path)!r} cannot be written: no permission to write in {str(existing)!r}; pass "
                         f"a path in a folder you can write to")
    if not folder:
        above.mkdir(parents=True, exist_ok=True)
    return path


def _not_an_input(path: Path, flag: str, reads: dict) -> None:
    target = path.resolve()
    for what, given in reads.items():
        if not given:
            continue
        source = Path(given).resolve()
        if source.is_dir():  # a model folder: the files rnr fit wrote there
            own = [source / name for name in MODEL_FOLDER_FILES]
            if target in own or source / "checkpoints" in target.parents or target == source / "checkpoints":
                raise UsageError(f"{flag} {str(path)!r} is {target.name!r} of the model folder {str(given)!r} "
                                 f"({what}); writing there would destroy the model. Pass a path outside it, or "
                                 f"another name, e.g. {str(source / 'out.csv')!r}")
        elif target == source:
            raise UsageError(f"{flag} {str(path)!r} is the file that {what} reads ({str(given)!r}); writing there "
                             f"would replace it. Pass another path")


def load_model(path):
    """(model, info) from a model folder written by ``rnr fit``, or from a model file written by ``rnr.save``."""
    path = Path(path)
    if path.is_file():
        model = load(path)
        return model, {"task": TASK_OF_CLASS.get(type(model).__name__, "classify")}
    if not path.exists():
        raise UsageError(f"{str(path)!r} does not exist; pass the --out folder of rnr fit (or a file written by "
                         f"rnr.save)")
    if not (path / MODEL_FILE).is_file():
        raise UsageError(f"{str(path)!r} is not a model folder (no {MODEL_FILE} in it); pass the --out folder of "
                         f"rnr fit")
    info_dict = {}
    if (path / INFO_FILE).is_file():
        try:
            info_dict = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{str(path / INFO_FILE)!r} is damaged ({e}); fit the model again") from None
        if not isinstance(info_dict, dict):
            raise UsageError(f"{str(path / INFO_FILE)!r} must hold a JSON object, got {type(info_dict).__name__}")
    model = load(path / MODEL_FILE)
    task = TASK_OF_CLASS.get(type(model).__name__, "classify")
    info_dict.setdefault("task", task)
    where = str(path / INFO_FILE)
    if info_dict["task"] != task:
        raise UsageError(f"{where!r} says the task is {info_dict['task']!r}, but {MODEL_FILE} holds a "
                         f"{type(model).__name__} ({task!r}); the folder was edited or mixed: fit the model again, or "
                         f"set \"task\": {task!r} there")
    for key in ("data", "model"):
        if key in info_dict and not isinstance(info_dict[key], dict):
            raise UsageError(f"{where!r} must hold an object under {key!r} (the run's {key} settings), got "
                             f"{info_dict[key]!r}; the file was edited: fit the model again")
    return model, info_dict


def load_task_model(path, command: str, classes: tuple):
    model, info_dict = load_model(path)
    if not isinstance(model, classes):
        names = " or ".join(c.__name__ for c in classes)
        raise UsageError(f"rnr {command} reads {names} models; {str(path)!r} holds a {type(model).__name__}")
    return model, info_dict
