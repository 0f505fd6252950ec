"""Model files: ``rnr.save(model, path)`` and ``rnr.load(path)``, one safetensors file, never pickle.

The file holds the weights as tensors and, in its header, JSON metadata::

    {"format": "rnr", "format_version": "1", "class": "ManyToOne", "config": {...constructor arguments...},
     "rnr_version": "0.1.0", "sha256": "..."}

``load`` rebuilds the model from ``class`` and ``config`` and loads the weights strictly. Anything that does not
fit (a missing, truncated or foreign file, a newer format, an unknown class or argument, a shape that does not
match) is a clear error. Writes are atomic: a crash never leaves half a file in place of a good one.

Objects that are more than an ``nn.Module`` (``RNNForecaster``: scalers, column roles, carried states) provide
``_to_file() -> (tensors, config)`` and ``_from_file(tensors, config)``.
"""
import inspect
import json
from pathlib import Path

import torch
from torch import nn

from rnr import _safefile

FORMAT_VERSION = 1


def _classes() -> dict:
    from rnr.charlm import CharLM
    from rnr.estimators import RNNClassifier
    from rnr.seq2seq import Seq2Seq
    from rnr.forecast import RNNForecaster
    from rnr.rnn import RNN
    from rnr.topologies import TOPOLOGIES

    return {**TOPOLOGIES, "RNN": RNN, "RNNForecaster": RNNForecaster, "RNNClassifier": RNNClassifier,
            "CharLM": CharLM, "Seq2Seq": Seq2Seq}


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
        tensors, config = model._to_file()
    else:
        # only the constructor's arguments: a config may hold derived entries (OneToOne's bidirectional=False)
        known = _init_args(type(model))
        tensors, config = dict(model.state_dict()), {k: v for k, v in model.config.items() if k in known}
    metadata = {"format": "rnr", "format_version": str(FORMAT_VERSION), "class": name,
                "config": _check_config_json(config, name), "rnr_version": _version()}
    return _safefile.write(path, tensors, metadata)


def load(path, device="cpu"):
    """Rebuild the model written by ``rnr.save`` at ``path``, on ``device``, in eval mode."""
    tensors, meta = _safefile.read(path)
    where = repr(str(path))
    if meta.get("format") != "rnr":
        raise ValueError(f"{where} is a safetensors file but not an rnr model file (no 'format': 'rnr' in its "
                         f"metadata); load it with safetensors.torch.load_file")
    try:
        version = int(meta.get("format_version", "0"))
        config = json.loads(meta["config"])
    except (ValueError, KeyError) as e:
        raise ValueError(f"{where} has damaged rnr metadata ({type(e).__name__}: {e}); write the model again with "
                         f"rnr.save") from None
    if version > FORMAT_VERSION:
        raise ValueError(f"{where} has format_version {version}, newer than this rnr reads ({FORMAT_VERSION}; "
                         f"written by rnr {meta.get('rnr_version', '?')}); upgrade rnr with pip install -U rnr")
    classes = _classes()
    name = meta.get("class")
    if name not in classes:
        raise ValueError(f"{where} holds a model of class {name!r}, which this rnr does not know; known classes: "
                         f"{sorted(classes)}")
    cls = classes[name]
    if hasattr(cls, "_from_file"):
        return cls._from_file(tensors, config, device=device)
    known = _init_args(cls)
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{where} configures {name} with arguments {unknown} that this rnr does not take; it was "
                         f"written by rnr {meta.get('rnr_version', '?')}: upgrade rnr to read it")
    model = cls(**{k: v for k, v in config.items() if k in known})
    load_weights(model, tensors, where)
    return model.to(device).eval()


def _init_args(cls) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def load_weights(model: nn.Module, tensors: dict, where: str) -> None:
    """Load ``tensors`` into ``model`` strictly, with an error that names what does not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    wrong = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
             for k in sorted(set(own) & set(tensors)) if tensors[k].shape != own[k].shape]
    if missing or extra or wrong:
        raise ValueError(f"{where} does not fit its {type(model).__name__}: missing {missing[:5]}, unexpected "
                         f"{extra[:5]}, wrong shapes {wrong[:5]}; the file is damaged or was edited")
    with torch.no_grad():
        model.load_state_dict(tensors, strict=True)


def _version() -> str:
    from rnr import __version__

    return __version__
