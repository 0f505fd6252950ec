"""Training checkpoints shared by every training loop of rnr.

A checkpoint is one safetensors file, ``ckpt-{step:09d}.safetensors``, written atomically with a sha256 of its
tensors (``rnr.weights``): the model's weights (``model.*``), the optimizer's tensors (``optim.{i}.{name}``), any
extra tensors of the loop (e.g. ``rng``, ``best.*``), and one JSON header holding everything else (the position in
the run, the history, the optimizer's and scheduler's scalars). The newest ``keep`` files are kept; ``latest``
skips a damaged newest file with a warning and returns the one before it.

Crash safety: a process killed at any moment (SIGKILL, power loss after the fsync) leaves every ``ckpt-*`` file
whole, since each appears only by an atomic rename. A kill inside a write leaves at most a temporary file
(``.ckpt-*.safetensors.*.tmp``), which ``files`` and ``latest`` never read and the next ``write`` removes;
``bench/kill_resume.py`` kills a run 20 times and checks the resumed result is bitwise the uninterrupted one.
"""
import json
import re
import warnings
from pathlib import Path

import torch
from torch import Tensor

from rnr import weights as _safefile
from rnr.weights import load_weights

FORMAT = "rnr-checkpoint"
NAME = re.compile(r"ckpt-(\d+)\.safetensors")  # ckpt-{step:09d}.safetensors; more digits past 10**9 steps


def files(folder) -> list[Path]:
    """The checkpoints in ``folder``, oldest (lowest step) first; temporary files of unfinished writes are not."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := NAME.fullmatch(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


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
    for tmp in _safefile.leftovers(folder, "ckpt-*.safetensors"):  # of writes that a kill interrupted
        tmp.unlink(missing_ok=True)
    return path


def latest(folder, stacklevel: int = 3) -> tuple[dict, dict, Path] | None:
    """(tensors, state, path) of the newest checkpoint that reads back whole, or None when there is none."""
    for path in reversed(files(folder)):
        try:
            tensors, meta = _safefile.read(path)
            if meta.get("format") != FORMAT:
                raise ValueError(f"format is {meta.get('format')!r}, not {FORMAT!r}")
            state = json.loads(meta["state"])
        except (ValueError, KeyError, OSError) as e:  # DamagedFileError is a ValueError
            warnings.warn(f"checkpoint {str(path)!r} is damaged ({e}); trying the one before it", stacklevel=stacklevel)
            continue
        return tensors, state, path
    return None


def restore(model: torch.nn.Module, opt: torch.optim.Optimizer, tensors: dict, state: dict, where: str,
            device="cpu") -> None:
    """Load the weights and the optimizer's state written by ``write``."""
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
