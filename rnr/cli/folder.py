"""The model folder ``rnr fit --out`` writes: one writer at a time, never through a link, only over its own files,
and checkpoints that belong to one run.

- **Lock.** ``rnr fit`` holds ``out/.rnr-lock`` (made with O_EXCL, holding its process id) while it trains and
  writes; a second ``rnr fit`` on the same folder is refused while that process lives. A lock left by a process
  that died is taken over.
- **Links.** A file or folder rnr would write (``OWN``, ``checkpoints/``) that is a symbolic link is refused: rnr
  never writes through a link to a file outside the folder.
- **Ownership.** ``out/run.json`` is the run's identity: a run id, the data file's fingerprint (size and sha256) and
  the settings. A folder that holds files with rnr's names but no ``run.json`` holds the user's files: refused,
  with or without ``--force``. ``--force`` replaces only rnr's own files (``OWN``, ``checkpoints/ckpt-*``): they
  are set aside in ``.rnr-replaced/`` and deleted once the new run has saved its model, or put back if it fails
  (bad data, a NaN), so a failed run loses nothing already saved.
- **Resume.** ``--resume`` continues the run in ``run.json`` only when the data file's fingerprint and every
  setting but ``RESUMABLE`` are the same; otherwise the error names what differs. Checkpoints of an unfinished run
  are never taken over by a new run: without ``--resume`` or ``--force`` the folder is refused.
"""
import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from rnr.cli.common import INFO_FILE, MODEL_FILE, UsageError
from rnr.training import checkpoint

RUN_FILE, LOCK_FILE, CHECKPOINTS, REPLACED = "run.json", ".rnr-lock", "checkpoints", ".rnr-replaced"
OWN = (MODEL_FILE, INFO_FILE, "metrics.csv", RUN_FILE)  # the files rnr fit writes at the top of the folder
RESUMABLE = ("epochs", "max_minutes")  # settings a resumed run may change (recorded in info.json)


def fingerprint(path) -> dict | None:
    """Size and sha256 of a data file (None for no file)."""
    if not path or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": Path(path).stat().st_size, "sha256": digest.hexdigest()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextmanager
def locked(out: Path):
    """Hold the folder's lock while the block runs."""
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise UsageError(f"--out {str(out)!r} is in use by another rnr fit (process {pid}); wait for it to "
                                 f"end, or pass another folder") from None
            lock.unlink(missing_ok=True)  # left by a process that died
    else:
        raise UsageError(f"--out {str(out)!r}: cannot take its lock {str(lock)!r}; remove that file if no rnr fit "
                         f"runs there")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _check_links(out: Path) -> None:
    for name in (*OWN, CHECKPOINTS):
        path = out / name
        if path.is_symlink():
            raise UsageError(f"--out {str(out)!r}: {name!r} there is a symbolic link (to {os.readlink(path)!r}); rnr "
                             f"never writes through a link. Remove the link, or pass another folder")


def _settings(run_config: dict) -> dict:
    data = {k: v for k, v in run_config.get("data", {}).items() if k not in ("path", "val_path")}
    model = {k: v for k, v in run_config.get("model", {}).items() if k not in RESUMABLE}
    return {"data": data, "model": model}


def begin(out: Path, run_config: dict, force: bool, resume: bool) -> dict:
    """Check the folder for this run and return the run's identity (written to ``run.json``); with ``force``,
    first delete rnr's own files. Raises UsageError naming the fix."""
    _check_links(out)
    run_file = out / RUN_FILE
    ckpts = checkpoint.files(out / CHECKPOINTS)
    mine = run_file.is_file()
    foreign = [] if mine else [name for name in OWN if name != RUN_FILE and (out / name).exists()]
    if foreign:
        raise UsageError(f"--out {str(out)!r} holds {foreign}, which rnr did not write there (no {RUN_FILE}); rnr "
                         f"does not write over them, even with --force. Pass another folder, or move them")
    data = run_config.get("data", {})
    identity = {"run_id": uuid.uuid4().hex[:12], "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "data": fingerprint(data.get("path")), "val_data": fingerprint(data.get("val_path")),
                "settings": _settings(run_config)}
    identity = json.loads(json.dumps(identity, default=str))  # as run.json holds it (tuples as lists)
    if resume:
        if not mine or not ckpts:
            raise UsageError(f"--resume: --out {str(out)!r} has no checkpoint of a run to continue; drop --resume to "
                             f"start a new run there")
        old = json.loads(run_file.read_text(encoding="utf-8"))
        differs = _differences(old, identity)
        if differs:
            raise UsageError(f"--resume: this command differs from the run in {str(out)!r} (run "
                             f"{old.get('run_id')}, started {old.get('created')}): {'; '.join(differs)}. Resume "
                             f"with the same data and settings (only {list(RESUMABLE)} may change), or pass --force "
                             f"to start a new run there")
        identity = {**old, "resumed": time.strftime("%Y-%m-%dT%H:%M:%S")}
    elif force:  # set aside until the new run has saved its model (``commit``); put back if it fails (``rollback``)
        shutil.rmtree(out / REPLACED, ignore_errors=True)  # of a forced run that was killed
        (out / REPLACED / CHECKPOINTS).mkdir(parents=True)
        for name in OWN:
            if (out / name).exists():
                (out / name).rename(out / REPLACED / name)
        for path in ckpts:
            path.rename(out / REPLACED / CHECKPOINTS / path.name)
    elif ckpts or (out / MODEL_FILE).exists():
        what = "a model" if (out / MODEL_FILE).exists() else "the checkpoints of an unfinished run"
        raise UsageError(f"--out {str(out)!r} already holds {what}; pass --force to replace it, --resume to continue "
                         f"its run, or another folder")
    run_file.write_text(json.dumps(identity, indent=1, default=str), encoding="utf-8")
    return identity


def commit(out: Path) -> None:
    """The new run saved its model: what ``--force`` set aside goes."""
    shutil.rmtree(out / REPLACED, ignore_errors=True)


def rollback(out: Path) -> None:
    """The new run failed before saving a model: its files go, and what ``--force`` set aside comes back."""
    kept = out / REPLACED
    if not kept.is_dir():
        return
    for name in OWN:
        (out / name).unlink(missing_ok=True)
    for path in checkpoint.files(out / CHECKPOINTS):
        path.unlink(missing_ok=True)
    for path in kept.iterdir():
        if path.is_file():
            path.rename(out / path.name)
    for path in (kept / CHECKPOINTS).iterdir():
        path.rename(out / CHECKPOINTS / path.name)
    shutil.rmtree(kept, ignore_errors=True)


def _differences(old: dict, new: dict) -> list[str]:
    """What differs between two run identities, in words."""
    out = []
    for key, what in (("data", "--data"), ("val_data", "--val")):
        if old.get(key) != new.get(key):
            out.append(f"{what} is another file (its size or content changed)" if old.get(key) and new.get(key)
                       else f"{what} was {'given' if old.get(key) else 'not given'} then")
    for table in ("data", "model"):
        before, now = old["settings"].get(table, {}), new["settings"].get(table, {})
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                out.append(f"{table}.{key} was {before.get(key)!r}, now {now.get(key)!r}")
    return out
