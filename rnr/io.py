"""Model files: ``rnr.save(model, path)`` and ``rnr.load(path)``, one safetensors file, never pickle.

The file holds the weights as tensors and, in its header, JSON metadata::

    {"format": "rnr", "format_version": "1", "class": "ManyToOne", "config": {...constructor arguments...},
     "rnr_version": "0.1.0", "sha256": "..."}

``load`` rebuilds the model from ``class`` and ``config`` and loads the weights strictly. Loading never runs code
from the file: no pickle, no ``torch.load``; the metadata is checked against a schema (known keys, JSON types,
each constructor argument against its type hint) and the model is first built on PyTorch's ``meta`` device, which
allocates nothing, and compared with the file's tensors, so a forged size (``hidden_size=10**9``) is refused before
any memory is taken. Anything that does not fit (a missing, truncated or foreign file, a newer format, an unknown
class, key or argument, a wrong type, a shape that does not match) is a ``ValueError`` that names the file and
what is wrong. Writes are atomic: a crash never leaves half a file in place of a good one.

Objects that are more than an ``nn.Module`` (``RNNForecaster``: scalers, column roles, carried states) provide
``_to_file() -> (tensors, config)`` and ``_from_file(tensors, config)``.
"""
import dataclasses
import inspect
import json
import math
import re
import types
import typing
from pathlib import Path

import torch

from rnr import weights as _safefile
from rnr._version import __version__
from rnr.base import check_options
from rnr.core.rnn import RNN
from rnr.data.audio import Features
from rnr.forecast.forecaster import RNNForecaster
from rnr.forecast.net import ForecastNet
from rnr.forecast.panel import PanelColumns
from rnr.nn.topologies import TOPOLOGIES
from rnr.sequences.charlm import CharLM
from rnr.sequences.classifier import RNNClassifier
from rnr.sequences.seq2seq import Seq2Seq
from rnr.sequences.transcriber import Transcriber
from rnr.weights import DRY_RUN, load_weights  # noqa: F401 (load_weights: rnr.io's public name before the move)

FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"  # the model file in a folder written by the rnr command (rnr fit --out)


def _classes() -> dict:
    return {**TOPOLOGIES, "RNN": RNN, "RNNForecaster": RNNForecaster, "RNNClassifier": RNNClassifier,
            "CharLM": CharLM, "Seq2Seq": Seq2Seq, "Transcriber": Transcriber}


def _check_config_json(config: dict, cls_name: str) -> str:
    for key, value in config.items():
        if callable(value) and not isinstance(value, type):
            raise ValueError(
                f"cannot save {cls_name} with {key}={getattr(value, '__name__', value)!r}: a custom function is code, "
                f"and rnr files hold no code. Use a built-in name (e.g. nonlinearity='tanh'), or save "
                f"model.state_dict() with safetensors and rebuild the model yourself"
            )
    try:
        return json.dumps(config)
    except TypeError as e:
        raise ValueError(f"cannot save {cls_name}: its configuration is not plain data ({e})") from None


def save(model, path) -> Path:
    """Write ``model`` (an rnr topology, ``rnr.RNN``, ``RNNForecaster`` or ``RNNClassifier``) to ``path``."""
    classes = _classes()
    name = type(model).__name__
    if name not in classes or not isinstance(model, classes[name]):
        raise TypeError(f"model must be one of {sorted(classes)}, got {name}; for another nn.Module save its "
                        f"state_dict with safetensors.torch.save_file")
    if hasattr(model, "_to_file"):
        if getattr(model, "OPTIONS", None):
            check_options(model)  # what save writes, load reads back: a value set_params put there after fit too
        tensors, config = model._to_file()
    else:
        # only the constructor's arguments: a config may hold derived entries (OneToOne's bidirectional=False)
        known = _init_args(type(model))
        tensors, config = dict(model.state_dict()), {k: v for k, v in model.config.items() if k in known}
    metadata = {"format": "rnr", "format_version": str(FORMAT_VERSION), "class": name,
                "config": _check_config_json(config, name), "rnr_version": __version__}
    return _safefile.write(path, tensors, metadata)


def load(path, device="cpu", trust_unsigned: bool = False):
    """Rebuild the model written by ``rnr.save`` at ``path``, on ``device``, in eval mode.

    A file without the sha256 of its tensors that ``rnr.save`` writes is refused as damaged unless
    ``trust_unsigned=True``; weights of the wrong dtype, or NaN or inf in them, are refused always. ``path`` may
    also be a folder holding ``MODEL_FILE`` (the ``--out`` folder of ``rnr fit``)."""
    if Path(path).is_dir():
        if not (Path(path) / MODEL_FILE).is_file():
            raise FileNotFoundError(f"path {str(path)!r} is a folder without {MODEL_FILE}; pass a file written by "
                                    f"rnr.save, or a model folder written by rnr fit")
        path = Path(path) / MODEL_FILE
    tensors, meta = _safefile.read(path)
    where = repr(str(path))
    config = _check_metadata(meta, where)
    if "sha256" not in meta and not trust_unsigned:
        raise _safefile.DamagedFileError(
            f"{where} has no sha256 of its tensors, which every file rnr writes has: it was written or edited by "
            f"other means. Write the model again with rnr.save, or load it anyway with rnr.load(path, "
            f"trust_unsigned=True) if you know where it came from")
    classes = _classes()
    name = meta["class"]
    if name not in classes:
        raise ValueError(f"{where} holds a model of class {name!r}, which this rnr does not know; known classes: "
                         f"{sorted(classes)}")
    cls = classes[name]
    config = _upgrade(config)
    _check_config(cls, name, config, where, meta.get("rnr_version", "?"))
    token = DRY_RUN.set(True)
    try:  # sizes first: built on the meta device (no memory) and compared with the file's tensors
        with torch.device("meta"):
            _build(cls, tensors, config, "meta", where, name)
    finally:
        DRY_RUN.reset(token)
    return _build(cls, tensors, config, device, where, name)


META_KEYS = ("format", "format_version", "class", "config", "rnr_version", "sha256")
# keys of a model file's config that files written by earlier versions lack
OPTIONAL_KEYS = ("chosen", "static_categories", "members", "n_models")
# arguments renamed since files were first written: old name -> new name (estimators' "params")
RENAMED = {"seed": "random_state"}


def _upgrade(config: dict) -> dict:
    """An estimator file's config with arguments renamed since it was written given their new names."""
    params = config.get("params")
    if not isinstance(params, dict) or not set(RENAMED) & set(params):
        return config
    return {**config, "params": {RENAMED.get(k, k): v for k, v in params.items()}}


def _build(cls, tensors: dict, config: dict, device, where: str, name: str):
    try:
        if hasattr(cls, "_from_file"):
            if getattr(cls, "OPTIONS", None) and isinstance(config.get("params"), dict):
                known = cls._param_names()
                check_options(cls(**{k: v for k, v in config["params"].items() if k in known}))
            return cls._from_file(tensors, config, device=device)
        model = cls(**config)
        load_weights(model, tensors, where)
        return model.to(device).eval()
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError) as e:
        text = str(e) if not isinstance(e, KeyError) else f"no entry {e}"
        if where in text:
            raise
        raise ValueError(f"{where} holds a {name} that cannot be rebuilt ({type(e).__name__}: {text}); the file is "
                         f"damaged or was edited: write the model again with rnr.save") from None


def _check_metadata(meta: dict, where: str) -> dict:
    """The header's keys and values against the schema of META_KEYS; returns the parsed ``config`` object."""
    if meta.get("format") != "rnr":
        raise ValueError(f"{where} is a safetensors file but not an rnr model file (no 'format': 'rnr' in its "
                         f"metadata); load it with safetensors.torch.load_file")
    version = meta.get("format_version")
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]{1,9}", version):
        raise ValueError(f"{where} has damaged rnr metadata: format_version must be a whole number such as "
                         f"'{FORMAT_VERSION}', got {version!r}; write the model again with rnr.save")
    if int(version) > FORMAT_VERSION:
        raise ValueError(f"{where} has format_version {int(version)}, newer than this rnr reads ({FORMAT_VERSION}; "
                         f"written by rnr {meta.get('rnr_version', '?')}); upgrade rnr with pip install -U rnr")
    unknown = sorted(set(meta) - set(META_KEYS))
    missing = [k for k in ("class", "config") if k not in meta]
    if unknown or missing:
        raise ValueError(f"{where} has damaged rnr metadata: unknown keys {unknown}, missing keys {missing}; an rnr "
                         f"model file's metadata holds {list(META_KEYS)}. Write the model again with rnr.save")
    try:
        config = json.loads(meta["config"])
    except ValueError as e:
        raise ValueError(f"{where} has damaged rnr metadata: config is not JSON ({e}); write the model again with "
                         f"rnr.save") from None
    if not isinstance(config, dict):
        raise ValueError(f"{where} has damaged rnr metadata: config must be a JSON object of constructor arguments, "
                         f"got a JSON {_json_type(config)}; write the model again with rnr.save")
    return config


def _file_schema(name: str) -> dict:
    """For models with ``_from_file``: config key -> expected JSON type, or a class whose type hints the entries
    of that object must follow."""
    tokenizer, classes = _TokenizerState, _classes()
    return {
        "RNNForecaster": {"params": RNNForecaster, "net": ForecastNet, "scaler_kind": str | None, "ids": list,
                          "ids_dtype": "dtype", "columns": PanelColumns, "freq": str | int, "time_dtype": "dtype",
                          "missing": str, "history": list[dict], "chosen": dict,
                          "static_categories": dict, "members": list},
        "RNNClassifier": {"params": classes["RNNClassifier"], "classes": list, "classes_dtype": "dtype",
                          "n_features_in": int, "tokenizer": tokenizer | None, "chosen": dict,
                          "n_models": int},
        "CharLM": {"params": classes["CharLM"], "vocab": list[str], "start": str, "history": list[dict],
                   "chosen": dict},
        "Seq2Seq": {"params": classes["Seq2Seq"], "source_tokenizer": tokenizer, "target_tokenizer": tokenizer},
        "Transcriber": {"params": classes["Transcriber"], "tokens": list[str], "separator": str, "input_kind": str,
                        "n_features_in": int, "features": Features | None, "chosen": dict},
    }.get(name)


@dataclasses.dataclass
class _TokenizerState:  # rnr.data.text.Tokenizer.to_state()
    level: str
    lower: bool
    min_count: int
    max_size: int | None
    vocab: list[str]


_PLAIN = (list, dict, str, int, float, bool, type(None))
# hints that differ from what is stored: ForecastNet gets the list of seasonal periods
_HINT_OVERRIDES = {("ForecastNet", "season"): list[int] | int | None}
_DTYPE = re.compile(r"[<>|=]?(object|bool|u?int(8|16|32|64)|float(16|32|64)|datetime64\[(ns|us|ms|s)\]"
                    r"|[iufbO][0-9]{0,2}|U[0-9]{1,5})")


def _check_config(cls, name: str, config: dict, where: str, written_by: str) -> None:
    """Every key known, every required one present, every value of its declared type (JSON types)."""
    schema = _file_schema(name) if hasattr(cls, "_from_file") else None
    if schema is None:
        _check_args(cls, config, f"{where} configures {name} with", written_by)
        return
    _check_keys(config, schema, f"{where} configures {name} with", written_by,
                [k for k in schema if k not in OPTIONAL_KEYS])
    for key, kind in schema.items():
        if key not in config:  # an optional key of a file written before it existed
            continue
        value, what = config[key], f"{where}: config[{key!r}]"
        obj = next((k for k in typing.get_args(kind) or (kind,) if isinstance(k, type) and k not in _PLAIN), None)
        if obj is not None and not (value is None and _fits(None, kind)):  # an object of arguments
            kind = obj
            if not isinstance(value, dict):
                raise ValueError(f"{what} must be a JSON object of {kind.__name__} arguments, got a JSON "
                                 f"{_json_type(value)}; the file is damaged or was edited")
            _check_args(kind, value, f"{what} gives {kind.__name__}", written_by)
        elif kind == "dtype":
            if not isinstance(value, str) or not _DTYPE.fullmatch(value):
                raise ValueError(f"{what} must name a numpy dtype such as 'int64' or '<U8', got {value!r}; the file "
                                 f"is damaged or was edited")
        elif not _fits(value, kind):
            raise ValueError(f"{what} must be {_hint_name(kind)}, got {_json_type(value)} {_short(value)}; the file is "
                             f"damaged or was edited")


def _check_keys(given: dict, known, lead: str, written_by: str, required) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{lead} arguments {unknown} that this rnr does not take; it was written by rnr "
                         f"{written_by}: upgrade rnr to read it (known: {sorted(known)})")
    missing = [k for k in required if k not in given]
    if missing:
        raise ValueError(f"{lead} no {missing}; the file is damaged or was edited: write the model again with rnr.save")


def _check_args(kind, values: dict, lead: str, written_by: str) -> None:
    """``values`` against the arguments of ``kind`` (a class's constructor, or a dataclass's fields)."""
    if dataclasses.is_dataclass(kind):
        fields = dataclasses.fields(kind)
        names = [f.name for f in fields]
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        hints = typing.get_type_hints(kind)
    else:
        params = [p for p in inspect.signature(kind.__init__).parameters.values() if p.name != "self"]
        names = [p.name for p in params]
        required = [p.name for p in params if p.default is inspect.Parameter.empty]
        hints = typing.get_type_hints(kind.__init__)
    _check_keys(values, names, lead, written_by, required)
    for key, value in values.items():
        hint = _HINT_OVERRIDES.get((kind.__name__, key), hints.get(key))
        if hint is not None and not _fits(value, hint):
            raise ValueError(f"{lead} {key}={_short(value)}, but {key} must be {_hint_name(hint)}; the file is "
                             f"damaged or was edited: write the model again with rnr.save")


def _fits(value, hint) -> bool:
    """Whether a JSON value can stand for the type hint (JSON lists stand for tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if hint in (list, tuple) or origin in (list, tuple):
        return isinstance(value, list) and (not args or all(_fits(v, args[0]) for v in value))
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    return True  # a callable or a class: JSON cannot hold one, and the constructor has the last word


def _hint_name(hint) -> str:
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", list: "a list",
             tuple: "a list", dict: "an object", type(None): "null"}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) in (list, tuple):
        plural = {bool: "booleans", int: "integers", float: "numbers", str: "strings", dict: "objects"}
        return f"a list of {plural.get(typing.get_args(hint)[0], 'values')}" if typing.get_args(hint) else "a list"
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _json_type(value) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object",
            type(None): "null"}.get(type(value), type(value).__name__)


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _init_args(cls) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


