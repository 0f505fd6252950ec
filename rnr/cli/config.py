"""Run configurations for the ``rnr`` command: TOML files, ``--set key=value`` overrides, validation.

A configuration has two tables. ``[data]`` says where the data is and which column plays which role; ``[model]``
holds the estimator's arguments: those of ``rnr.RNNForecaster`` for ``forecast``, of ``rnr.RNNClassifier`` for
``classify`` and of ``rnr.CharLM`` for ``text`` (without the run options, which the command sets)::

    [data]
    path = "sales.csv"
    id = "store"
    time = "date"
    target = "units"
    future = ["price"]

    [model]
    horizon = 28
    cell = "lstm"
    quantiles = [0.1, 0.9]

Every message about a bad configuration names the key, the rule, the value and where it came from; an unknown key
is an error that lists the known ones.
"""
import dataclasses
import inspect
import types
import typing
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from rnr.base import RUN_OPTIONS
from rnr.forecast.forecaster import RNNForecaster
from rnr.sequences.charlm import CharLM
from rnr.sequences.classifier import RNNClassifier


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which key, why, and how to fix it."""


# [data] keys of each task: name -> (type, default, meaning)
FORECAST_DATA = {
    "path": (str, None, "the long-format panel: a CSV file, or a Parquet file or folder (read in groups)"),
    "max_rows": (int, 1_000_000, "Parquet: the most rows of series read into memory at a time"),
    "id": (str, "unique_id", "the column naming each series"),
    "time": (str, "ds", "the time column (dates or integers)"),
    "target": (str, "y", "the column to forecast"),
    "past": (list, [], "covariates known only up to now"),
    "future": (list, [], "covariates known ahead (future_df must give them at prediction)"),
    "static": (list, [], "per-series columns, constant within a series"),
    "freq": (str, None, "the panel's frequency, e.g. 'D' or 'h' (inferred when absent)"),
    "missing": (str, "error", "missing targets: 'error', 'mask', 'ffill' or 'interpolate'"),
    "fill_gaps": (bool, False, "insert the steps missing from each series' grid as missing targets (CSV only)"),
}
CLASSIFY_DATA = {
    "path": (str, None, "a CSV/TSV of labelled texts or of long-format sequences, or a UEA .ts file"),
    "label": (str, "label", "the column of labels"),
    "text": (str, None, "the column of texts (text classification)"),
    "id": (str, None, "the column naming each sequence (long format: one row per step)"),
    "time": (str, None, "the column ordering the steps of a sequence (default: the file's order)"),
    "features": (list, [], "the feature columns of each step (default: every other numeric column)"),
    "val_path": (str, None, "a file like path to report on after each epoch"),
}
TEXT_DATA = {
    "path": (str, None, "the UTF-8 text file to learn from"),
    "val_path": (str, None, "a UTF-8 text file to report bits per character on after each epoch"),
}
# set by the rnr command itself, so not keys of [model]
_COMMAND_OWNED = set(RUN_OPTIONS)


def _model_keys(kind) -> dict:
    """[model] keys from a config dataclass or an estimator's constructor: name -> (type, default, meaning)."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        pairs = [(f.name, None if f.default is dataclasses.MISSING else f.default) for f in dataclasses.fields(kind)]
    else:
        hints = typing.get_type_hints(kind.__init__)
        pairs = [(p.name, None if p.default is p.empty else p.default)
                 for p in inspect.signature(kind.__init__).parameters.values() if p.name != "self"]
    return {name: (hints[name], default, "") for name, default in pairs if name not in _COMMAND_OWNED}


def schema(task: str) -> dict:
    """{"data": keys, "model": keys} of a task: "forecast", "classify" or "text"."""

    data = {"forecast": FORECAST_DATA, "classify": CLASSIFY_DATA, "text": TEXT_DATA}[task]
    model = {"forecast": RNNForecaster, "classify": RNNClassifier, "text": CharLM}[task]
    return {"data": data, "model": _model_keys(model)}


SCHEMA = schema("forecast")


def load_toml(path) -> dict:
    """The tables of a TOML file, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass the path of a TOML file, e.g. "
                          f"--config run.toml")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {e}; fix the line it names") from None


def parse_set(item: str) -> tuple[list[str], object]:
    """``"model.hidden_size=64"`` -> (["model", "hidden_size"], 64). Values are read as TOML values (numbers,
    booleans, ``[lists]``, ``"strings"``); anything else is a plain string."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes key=value, got {item!r}; e.g. --set model.hidden_size=64")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip().split("."), value


def merge(config: dict, sets: list[str]) -> dict:
    """``config`` with each ``--set`` applied in order (a new dict)."""
    out = {table: dict(values) if isinstance(values, dict) else values for table, values in config.items()}
    for item in sets:
        parts, value = parse_set(item)
        if len(parts) != 2:
            raise ConfigError(f"--set key must be table.key with table one of {sorted(SCHEMA)}, got "
                              f"{'.'.join(parts)!r}; e.g. --set model.horizon=28")
        out.setdefault(parts[0], {})[parts[1]] = value
    return out


def _check_type(value, kind, where: str):
    """value converted to ``kind`` (a type hint), or a ConfigError naming ``where``."""
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):  # the first option the value fits, e.g. 24 or "auto"
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        errors = []
        for option in options:
            try:
                return _check_type(value, option, where)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", tuple: "a list",
                 list: "a list"}
        raise ConfigError(f"{where} must be {' or '.join(names.get(o, str(o)) for o in options)}, got {value!r}")
    if kind is tuple or kind is list or origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}; write e.g. [0.1, 0.9]")
        return tuple(value) if (kind is tuple or origin is tuple) else list(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}; write e.g. 28")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}; write e.g. 0.003")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}; write it in quotes")
        return value
    return value


def validate(config: dict, source: str = "the configuration", task: str = "forecast") -> dict:
    """Defaults filled in, types checked, unknown tables and keys refused. Returns {"data": {...}, "model": {...}}."""
    SCHEMA = schema(task)
    unknown_tables = sorted(set(config) - set(SCHEMA))
    if unknown_tables:
        raise ConfigError(f"{source} has unknown table(s) {unknown_tables}; known tables: {sorted(SCHEMA)}")
    out = {}
    for table, keys in SCHEMA.items():
        given = config.get(table, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{source}: {table} must be a table ([{table}]), got {given!r}")
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise ConfigError(f"{source} has unknown key(s) {[f'{table}.{k}' for k in unknown]}; known keys of "
                              f"[{table}]: {sorted(keys)}")
        out[table] = {}
        for key, (kind, default, _) in keys.items():
            value = given.get(key, default)
            out[table][key] = _check_type(value, kind, f"{table}.{key} in {source}")
    if task == "forecast" and out["model"]["horizon"] is None:
        raise ConfigError(f"{source} does not set model.horizon, the number of steps to forecast; pass --horizon N "
                          f"or --set model.horizon=N")
    if out["data"]["path"] is None:
        raise ConfigError(f"{source} does not set data.path, the file to learn from; pass --data FILE")
    if task == "classify" and out["data"]["text"] and out["data"]["id"]:
        raise ConfigError(f"{source} sets both data.text ({out['data']['text']!r}) and data.id "
                          f"({out['data']['id']!r}); a file holds either texts (--text COLUMN) or long-format "
                          f"sequences (--id COLUMN), not both")
    return out
