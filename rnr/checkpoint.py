"""Training checkpoints shared by every training loop of rnr.

A checkpoint is one safetensors file, ``ckpt-{step:09d}.safetensors``, written atomically with a sha256 of its
tensors (``rnr._safefile``): the model's weights (``model.*``), the optimizer's tensors (``optim.{i}.{name}``), any
extra tensors of the loop (e.g. ``rng``, ``best.*``), and one JSON header holding everything else (the position in
the run, the history, the optimizer's and scheduler's scalars). The newest ``keep`` files are kept; ``latest``
skips a damaged newest file with a warning and returns the one before it.
"""
import json
import warnings
from pathlib import Path

import torch
from torch import Tensor

from rnr import _safefile

FORMAT = "rnr-checkpoint"


def files(folder) -> list[Path]:
    folder = Path(folder)
    return sorted(folder.glob("ckpt-*.safetensors")) if folder.is_dir() else []


def write(folder, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict,
          tensors: dict[str, Tensor] | None = None, keep: int = 2) -> Path:
    """Write a checkpoint of ``model``, ``opt``, the JSON-able ``state`` and extra ``tensors``; returns its path."""
    out = {f"model.{k}": v for k, v in model.state_dict().items()}
    out.update(tensors or {})
    opt_state = opt.state_dict()
    scalars = {}
    for idx, st in opt_state["state"].items():
        for key, v in st.items():
            if isinstance(v, Tensor):
                out[f"optim.{idx}.{key}"] = v
            else:
                scalars[f"{idx}.{key}"] = v
    state = {**state, "param_groups": opt_state["param_groups"], "optim_scalars": scalars}
    path = _safefile.write(Path(folder) / f"ckpt-{step:09d}.safetensors", out,
                           {"format": FORMAT, "state": json.dumps(state)})
    for old in files(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def latest(folder, stacklevel: int = 3) -> tuple[dict, dict, Path] | None:
    """(tensors, state, path) of the newest checkpoint that reads back whole, or None when there is none."""
    for path in reversed(files(folder)):
        try:
            tensors, meta = _safefile.read(path)
            if meta.get("format") != FORMAT:
                raise ValueError(f"format is {meta.get('format')!r}, not {FORMAT!r}")
            state = json.loads(meta["state"])
        except (ValueError, KeyError) as e:
            warnings.warn(f"checkpoint {str(path)!r} is damaged ({e}); trying the one before it", stacklevel=stacklevel)
            continue
        return tensors, state, path
    return None


def restore(model: torch.nn.Module, opt: torch.optim.Optimizer, tensors: dict, state: dict, where: str,
            device="cpu") -> None:
    """Load the weights and the optimizer's state written by ``write``."""
    from rnr.io import load_weights

    load_weights(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, where)
    opt_state: dict = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = v.to(device)
    for key, v in state["optim_scalars"].items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
