"""Safetensors files written atomically and read back with a content digest; never pickle.

A file holds tensors and a flat ``str -> str`` metadata header (safetensors' own format). ``write`` adds a
``sha256`` of every tensor's bytes (in sorted key order) to the header, writes to a temporary file in the same
folder, flushes it to disk and renames it over the target, so a crash leaves either the old file or the new one,
never half of one. ``read`` recomputes the digest, so truncation and flipped bits are both caught.
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes


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
    """Write tensors and metadata to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    blob = save_bytes(tensors, metadata={**metadata, "sha256": digest(tensors)})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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


def read(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a file written by ``write``; DamagedFileError if it cannot be trusted."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    blob = path.read_bytes()
    # safetensors: an 8-byte little-endian header length (its third byte is 0 below 64 KiB), then JSON; a pickle
    # starts with 0x80, its protocol (2-5) and a non-zero opcode; torch.save writes a zip ("PK")
    pickle = blob[:1] == b"\x80" and blob[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") and blob[2:3] != b"\x00"
    if blob[8:9] != b"{" and (pickle or blob[:2] == b"PK"):
        raise DamagedFileError(
            f"{str(path)!r} looks like a pickle or torch.save file; rnr never unpickles (it can run arbitrary "
            f"code). Load it with torch yourself if you trust it, then write it again with rnr.save"
        )
    try:
        tensors = load_bytes(blob)
        header_len = int.from_bytes(blob[:8], "little")
        metadata = json.loads(blob[8 : 8 + header_len]).get("__metadata__", {})
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as e:
        raise DamagedFileError(
            f"{str(path)!r} is not a readable safetensors file ({len(blob)} bytes; {e}); it may be truncated or "
            f"not a model file at all. Use an earlier copy or write it again"
        ) from None
    expected = metadata.get("sha256")
    if expected is not None and digest(tensors) != expected:
        raise DamagedFileError(
            f"{str(path)!r} is damaged: its tensors do not match the sha256 written with them. Use an earlier "
            f"copy or write it again"
        )
    return tensors, metadata
