"""Run configurations for the ``rnr`` command: TOML files, ``--set key=value`` overrides, validation.

A configuration has two tables. ``[data]`` says where the data is and which column plays which role; ``[model]``
holds the estimator's arguments: those of ``rnr.RNNForecaster`` for ``forecast``, of ``rnr.RNNClassifier`` for
``classify``, of ``rnr.CharLM`` for ``text`` and of ``rnr.Transcriber`` for ``transcribe`` (without the run options,
which the command sets)::

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

Every message about a bad configuration names the key, the rule, the value and where it came from (``origins``: the
flag, the ``--set`` item, or the file and line, ``run.toml:3``); an unknown key is an error that offers the nearest
known one and lists them all. ``describe(task)`` is what ``rnr fit TASK --help-keys`` prints.
"""
import dataclasses
import difflib
import functools
import inspect
import re
import textwrap
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
from rnr.sequences.transcriber import Transcriber


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which key, why, and how to fix it."""


# [data] keys of each task: name -> (type, default, meaning)
FORECAST_DATA = {
    "path": (str, None, "the long-format panel: a CSV file, or a Parquet file or folder (read in groups)"),
    "max_rows": (int, 1_000_000, "Parquet: the most rows of series read into memory at a time"),
    "id": (str, "unique_id", "the column naming each series; several joined by commas ('agency,sku'); '' (or no "
                             "'unique_id' column) for a file of one series"),
    "time": (str, "ds", "the time column (dates or integers)"),
    "date_format": (str, None, "the time column's format, e.g. '%d/%m/%Y' or '%b-%y' (guessed when absent)"),
    "dayfirst": (bool, None, "dates like 01/02/1949 are day first (true) or month first (false)"),
    "thousands": (str, None, "the thousands separator of numbers written like 1,234 (e.g. ',')"),
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
TRANSCRIBE_DATA = {
    "path": (str, None, "a folder of WAV files (each transcript read from the file's name by data.name_pattern), or a "
                        "CSV of WAV paths and transcripts (data.path_column, data.text_column)"),
    "name_pattern": (str, "(?P<text>[^_]+)_", "a folder: the regular expression searched for in each file name, whose "
                                             "group text is the transcript (the default reads 3_george_12.wav as 3)"),
    "path_column": (str, "path", "a CSV: the column of WAV paths (relative to the CSV's folder, or absolute)"),
    "text_column": (str, "text", "a CSV: the column of transcripts"),
    "val_path": (str, None, "a folder or CSV like data.path to report on after each epoch (and stop early on)"),
}
# set by the rnr command itself, so not keys of [model]
_COMMAND_OWNED = set(RUN_OPTIONS)
# the keys that have a flag of their own: (table, key) -> the flag
FLAGS = {("data", "path"): "--data", ("data", "id"): "--id", ("data", "time"): "--time",
         ("data", "target"): "--target", ("data", "label"): "--label", ("data", "text"): "--text",
         ("data", "val_path"): "--val", ("model", "horizon"): "--horizon"}
REQUIRED = (("data", "path"), ("model", "horizon"))  # no default: validate says how to give them
ESTIMATORS = {"forecast": RNNForecaster, "classify": RNNClassifier, "text": CharLM, "transcribe": Transcriber}


def _model_keys(kind) -> dict:
    """[model] keys from a config dataclass or an estimator's constructor: name -> (type, default, meaning)."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        pairs = [(f.name, None if f.default is dataclasses.MISSING else f.default) for f in dataclasses.fields(kind)]
    else:
        hints = typing.get_type_hints(kind.__init__)
        pairs = [(p.name, None if p.default is p.empty else p.default)
                 for p in inspect.signature(kind.__init__).parameters.values() if p.name != "self"]
    meanings = _meanings(kind)
    return {name: (hints[name], default, meanings.get(name, "")) for name, default in pairs
            if name not in _COMMAND_OWNED}


@functools.lru_cache(maxsize=None)
def _meanings(kind) -> dict:
    """name -> what the argument means, in one line: the comment on its line of ``__init__`` (and the comment lines
    under it), else its entry in the class docstring's ``Args:`` section (``a, b: text`` gives both the text)."""
    out, name = {}, None
    try:
        source = inspect.getsource(kind.__init__)
    except (OSError, TypeError):  # no source (a frozen build): the docstring alone
        source = ""
    for line in source.splitlines():
        own, more = re.match(r"\s*(\w+)\s*:[^#]*#\s*(.*)", line), re.match(r"\s*#\s*(.*)", line)
        if own:
            name, out[own[1]] = own[1], own[2]
        elif more and name:
            out[name] += " " + more[1]
        else:
            name = None
    params = set(inspect.signature(kind.__init__).parameters)
    entries, lines = {}, []  # the Args section, one entry a line: "a, b (note): text"
    for line in inspect.cleandoc(kind.__doc__ or "").partition("Args:\n")[2].splitlines():
        if re.match(r" {4}\w", line):
            lines.append(line.strip())
        elif line.startswith(" " * 8) and lines:
            lines[-1] += " " + line.strip()
        else:
            break
    for line in lines:  # an entry may start inside another's text: "... read them. embedding_dropout: zeroes ..."
        for part in re.split(r"(?<=\.) (?=(\w+): )", line)[::2]:
            head = re.match(r"([\w, ]+?)(?: \([^)]*\))?: (.*)", part)
            names = [n.strip() for n in head[1].split(",")] if head else []
            if names and all(n in params for n in names):  # what a group shares is said before its first ';'
                entries.update({n: head[2] if len(names) == 1 else _first_clause(head[2]) for n in names})
    return {k: re.sub(r"``", "", v) for k, v in {**entries, **out}.items()}


def schema(task: str) -> dict:
    """{"data": keys, "model": keys} of a task: "forecast", "classify", "text" or "transcribe"."""

    data = {"forecast": FORECAST_DATA, "classify": CLASSIFY_DATA, "text": TEXT_DATA,
            "transcribe": TRANSCRIBE_DATA}[task]
    return {"data": data, "model": _model_keys(ESTIMATORS[task])}


def describe(task: str, width: int = 118) -> str:
    """Each [data] and [model] key of ``task`` with its default and meaning (``rnr fit TASK --help-keys``)."""
    keys, options = schema(task), getattr(ESTIMATORS[task], "OPTIONS", {})
    lines = [f"rnr fit {task}: the keys of a --config file's tables, or of --set TABLE.KEY=VALUE (the flag, where one "
             f"sets it too)"]
    for table, known in keys.items():
        lines.append(f"\n[{table}]" + (f"  (the arguments of rnr.{ESTIMATORS[task].__name__})" if table == "model"
                                       else ""))
        for key, (_, default, meaning) in known.items():
            shown = "(required)" if (table, key) in REQUIRED else _toml_value(default)
            flag = f" {FLAGS[table, key]}" if (table, key) in FLAGS else ""
            rule = options[key].rule() if table == "model" and key in options and options[key].kind != "any" else ""
            text = _first_sentence(meaning) + (f" [{rule}]" if rule else "")
            lines.append(textwrap.fill(text, width, initial_indent=f"  {key} = {shown}{flag}".ljust(34) + " ",
                                       subsequent_indent=" " * 37))
    return "\n".join(lines)


def _toml_value(value) -> str:
    """A default as it would be written in a TOML file; None (which TOML cannot write) as (none)."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _first_clause(text: str) -> str:
    """``text`` up to its first ``;`` outside parentheses."""
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == ";" and depth == 0:
            return text[:i]
    return text


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[a-z)])\. (?=[A-Z\w]+\b)", text, maxsplit=1)[0].strip().rstrip(".")


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


def key_lines(text: str) -> dict:
    """(table, key) -> the line (from 1) of a TOML text that sets it, and (table, None) -> the line that opens the
    table. tomllib gives no positions, so the text is scanned: ``[table]`` headers, ``key = value`` lines under them,
    dotted keys (``model.horizon = 3``) and inline tables (``model = {horizon = 3}``) at the top."""
    out, table = {}, None
    for n, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\s*([\w-]+|\"[^\"]*\"|'[^']*')\s*\]", line)
        if header:
            table = header[1].strip("\"'")
            out.setdefault((table, None), n)
            continue
        pair = re.match(r"\s*([\w\-\"'. ]+?)\s*=", line)
        if not pair:
            continue
        parts = [p.strip().strip("\"'") for p in pair[1].split(".")]
        if table is not None:
            out.setdefault((table, parts[0]), n)
        elif len(parts) > 1:
            out.setdefault((parts[0], parts[1]), n)
        else:  # a table written inline, or a value where a table belongs
            out.setdefault((parts[0], None), n)
            for key in re.findall(r"[{,]\s*([\w-]+)\s*=", line):
                out.setdefault((parts[0], key), n)
    return out


def file_origins(path) -> dict:
    """(table, key) -> ``"run.toml:3"``, where the TOML file ``path`` sets each key (and opens each table)."""
    lines = key_lines(Path(path).read_text(encoding="utf-8"))
    return {where: f"{path}:{n}" for where, n in lines.items()}


def set_origins(sets: list[str]) -> dict:
    """(table, key) -> ``"--set model.season=twelve"``, the item that sets it (the last one, as merge applies)."""
    return {tuple(parse_set(item)[0]): f"--set {item.strip()}" for item in sets}


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


def validate(config: dict, source: str = "the configuration", task: str = "forecast",
             origins: dict | None = None) -> dict:
    """Defaults filled in, types checked, unknown tables and keys refused. Returns {"data": {...}, "model": {...}}.

    ``origins``: (table, key) -> where its value came from (``"--horizon"``, ``"--set model.season=twelve"``,
    ``"run.toml:3"``; ``file_origins``, ``set_origins``), named in every message; keys without one are said to come
    from ``source``."""
    SCHEMA, origins = schema(task), origins or {}

    def where(table, key=None) -> str:
        origin = origins.get((table, key)) or next((o for (t, _), o in origins.items() if t == table and not key), None)
        return f"({origin})" if origin else f"(in {source})"

    unknown_tables = sorted(set(config) - set(SCHEMA))
    if unknown_tables:
        items = [f"{t!r} {where(t)}{_did_you_mean(t, SCHEMA)}" for t in unknown_tables]
        raise ConfigError(f"unknown table {_sentence('; '.join(items))} The tables are {sorted(SCHEMA)}")
    out = {}
    for table, keys in SCHEMA.items():
        given = config.get(table, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{table} {where(table)} must be a table ([{table}]), got {given!r}")
        unknown = sorted(set(given) - set(keys))
        if unknown:
            items = [f"'{table}.{k}' {where(table, k)}{_did_you_mean(k, keys, table, task)}" for k in unknown]
            raise ConfigError(f"unknown key {_sentence('; '.join(items))} The keys of [{table}] are {sorted(keys)}; "
                              f"rnr fit {task} --help-keys says what each means")
        out[table] = {}
        for key, (kind, default, _) in keys.items():
            value = given.get(key, default)
            out[table][key] = _check_type(value, kind, f"{table}.{key} {where(table, key)}")
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


def _sentence(text: str) -> str:
    return text if text.endswith("?") else text + "."


def _did_you_mean(name: str, known, table: str | None = None, task: str | None = None) -> str:
    """", did you mean 'model.hidden_size'?" for a mistyped key, or ", a key of rnr fit forecast" for another task's."""
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f", did you mean {(f'{table}.' if table else '') + close[0]!r}?"
    others = [t for t in ESTIMATORS if table and t != task and name in schema(t)[table]]
    return f", a key of rnr fit {' and '.join(others)}" if others else ""
