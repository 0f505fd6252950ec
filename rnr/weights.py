"""Weights on disk, below every model: safetensors files written atomically and read back with a content digest
(never pickle), and ``load_weights``, which loads tensors into a module strictly.

A file holds tensors and a flat ``str -> str`` metadata header (safetensors' own format). ``write`` adds a
``sha256`` of every tensor's bytes (in sorted key order) to the header, writes to a temporary file in the same
folder, flushes it to disk and renames it over the target, so a crash leaves either the old file or the new one,
never half of one. ``read`` checks every size the header declares against the file's size before it reads the
tensors (so a forged header cannot make it allocate more than the file), then recomputes the digest, so truncation
and flipped bits are both caught.
"""
import contextvars
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from torch import nn

# set by rnr.load's first pass, which builds the model on the meta device: load_weights then compares shapes only
DRY_RUN = contextvars.ContextVar("rnr_weights_dry_run", default=False)


class DamagedFileError(ValueError):
    """A file that exists but cannot be trusted: truncated, corrupted, or not a safetensors file."""


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # reshape: 0-dim too
    return h.hexdigest()


def write(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write tensors and metadata to ``path`` atomically; returns the path. Nothing is written (and a file already
    at ``path`` is left as it was) when the path is a folder or its folder cannot be made."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a folder; pass a file path inside it, e.g. "
                                f"{str(path / 'model.safetensors')!r}")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise NotADirectoryError(f"cannot write {str(path)!r}: {str(blocker)!r} is a file, not a folder; pass a "
                                 f"path in a folder")
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return write_bytes(path, save_bytes(tensors, metadata={**metadata, "sha256": digest(tensors)}))


def write_bytes(path, blob: bytes) -> Path:
    """Write ``blob`` to ``path`` atomically: a temporary file in the same folder, flushed to disk, renamed over
    ``path``, the rename made durable. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # see leftovers
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a file the user reads like any other they write
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    except OSError:
        pass
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def leftovers(folder, pattern: str = "*") -> list[Path]:
    """Temporary files in ``folder`` that a ``write`` of a file named like ``pattern`` (a glob) left behind when
    its process was killed before the rename; never read back as the file. Only the one writer of a folder should
    delete them: a ``write`` in progress has one open until its rename."""
    folder = Path(folder)
    return sorted(folder.glob(f".{pattern}.*.tmp")) if folder.is_dir() else []


def read(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a file written by ``write``; DamagedFileError if it cannot be trusted.

    Nothing larger than the file is ever allocated: the header's length and every tensor's declared shape, dtype
    and byte range are checked against the file's size before the tensors are read (``_check_header``)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a model file; pass the file in it (e.g. "
                                f"{str(path / 'model.safetensors')!r})")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        _refuse_pickle(path, head + f.read(1))
        header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
        _check_header(path, size, header_len)
        f.seek(8)
        header = f.read(header_len)
        try:
            entries = json.loads(header)
        except (ValueError, UnicodeDecodeError) as e:
            raise _damaged(path, size, f"its header is not JSON: {e}") from None
        _check_entries(path, size, header_len, entries)
        blob = head + header + f.read()
    try:
        tensors = load_bytes(blob)
    except (SafetensorError, ValueError, OverflowError) as e:
        raise _damaged(path, size, str(e)) from None
    metadata = entries.get("__metadata__") or {}
    expected = metadata.get("sha256")
    if expected is not None and digest(tensors) != expected:
        raise DamagedFileError(
            f"{str(path)!r} is damaged: its tensors do not match the sha256 written with them. Use an earlier "
            f"copy or write it again"
        )
    return tensors, metadata


# safetensors' own bound on the header (safetensors/src/tensor.rs MAX_HEADER_SIZE)
MAX_HEADER = 100_000_000
# bytes per element of each safetensors dtype name
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "C64": 8, "F64": 8, "I64": 8, "U64": 8}


def _damaged(path, size: int, why: str) -> DamagedFileError:
    return DamagedFileError(f"{str(path)!r} is not a readable safetensors file ({size} bytes; {why}); it may be "
                            f"truncated or not a model file at all. Use an earlier copy or write it again")


def _refuse_pickle(path, start: bytes) -> None:
    """safetensors: an 8-byte little-endian header length (its third byte is 0 below 64 KiB), then JSON; a pickle
    starts with 0x80, its protocol (2-5) and a non-zero opcode; torch.save writes a zip ("PK")."""
    pickle = start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") and start[2:3] != b"\x00"
    if start[8:9] != b"{" and (pickle or start[:2] == b"PK"):
        raise DamagedFileError(
            f"{str(path)!r} looks like a pickle or torch.save file; rnr never unpickles (it can run arbitrary "
            f"code). Load it with torch yourself if you trust it, then write it again with rnr.save"
        )


def _check_header(path, size: int, header_len: int) -> None:
    if header_len < 0:
        raise _damaged(path, size, "shorter than the 8-byte header length")
    if header_len > min(size - 8, MAX_HEADER):
        raise _damaged(path, size, f"it declares a header of {header_len} bytes, more than "
                                   f"{'the file holds' if header_len > size - 8 else f'the limit of {MAX_HEADER}'}")


def _check_entries(path, size: int, header_len: int, entries) -> None:
    """Every tensor's dtype, shape and byte range fit the file (computed with Python ints: no overflow)."""
    if not isinstance(entries, dict):
        raise _damaged(path, size, f"its header is a JSON {type(entries).__name__}, not an object")
    data = size - 8 - header_len  # bytes after the header
    for name, e in entries.items():
        if name == "__metadata__":
            if not isinstance(e, dict) or not all(isinstance(v, str) for v in e.values()):
                raise _damaged(path, size, "its __metadata__ is not a map of strings")
            continue
        ok = isinstance(e, dict) and e.get("dtype") in DTYPE_BYTES and isinstance(e.get("shape"), list) and \
            all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in e["shape"]) and \
            isinstance(e.get("data_offsets"), list) and len(e["data_offsets"]) == 2 and \
            all(isinstance(o, int) and not isinstance(o, bool) for o in e["data_offsets"])
        if not ok:
            raise _damaged(path, size, f"tensor {name!r} has a malformed entry {str(e)[:120]}")
        need = DTYPE_BYTES[e["dtype"]]
        for d in e["shape"]:
            need *= d
        begin, end = e["data_offsets"]
        if not 0 <= begin <= end <= data or end - begin != need:
            raise _damaged(path, size, f"tensor {name!r} declares shape {e['shape']} of {e['dtype']} ({need} bytes) "
                                       f"at bytes {begin}..{end}, but the file holds {data} bytes of tensor data")


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
    dtypes = [f"{k}: file {tensors[k].dtype} vs model {own[k].dtype}" for k in sorted(own)
              if tensors[k].dtype != own[k].dtype]
    if dtypes:  # load_state_dict would cast them silently (integer weights forecast constant garbage)
        raise ValueError(f"{where} holds tensors of the wrong dtype for its {type(model).__name__}: {dtypes[:5]}; "
                         f"the file is damaged or was edited: write the model again with rnr.save")
    if DRY_RUN.get():  # rnr.load's first pass: the model is on the meta device, there is nothing to copy
        return
    bad = [k for k in sorted(own) if tensors[k].is_floating_point() and not bool(torch.isfinite(tensors[k]).all())]
    if bad:
        raise ValueError(f"{where} holds NaN or inf in {bad[:5]}; a model with such weights forecasts nothing "
                         f"useful. Use a checkpoint from before training diverged, or train again")
    with torch.no_grad():
        model.load_state_dict(tensors, strict=True)
