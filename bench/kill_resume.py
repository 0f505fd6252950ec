"""Crash safety of the training core: SIGKILL a training run at random moments, resume it each time, and check
that the final weights are bitwise those of a run that was never interrupted.

Two runs (``--model``), both on the one training core (``rnr.training.core``), both with a checkpoint write after
every step (``checkpoint_every=1``), one thread and fixed seeds, so the child is deterministic:
``fit``: ``rnr.fit`` of a 2-layer LSTM ``ManyToOne`` with dropout (so the RNG state matters) on generated ragged
sums, shuffled batches, a cosine LR schedule and validation each epoch; ``charlm``: a ``CharLM`` (LSTM, dropout)
on generated sentences, its streams' state carried from chunk to chunk (so the carried state must be in each
checkpoint), a cosine LR over the updates and validation each epoch.

Each life of the run is a child process started with ``resume=True`` (the first finds no checkpoint and starts
fresh). The parent draws a step at random (uniform over the first 1.6 r / (k + 1) of the r steps left after the one
this life resumed from, k the kills still to come: the kills spread over the run, and it always has steps left to
finish), waits until the child reaches it, waits a further random time of up to one step's average (from the
reference run) and sends SIGKILL. A kill can land in a step, in the epoch-end validation, or in a checkpoint write.
To land in writes often, the child (only the child, only here) slows ``rnr.weights.write`` down: it writes the
temporary file in two halves with a pause between them, then pauses again before the rename (``--slow-write``
seconds in all), so a kill can leave a half-written or a whole but never-renamed temporary file behind. The next
life must ignore it, resume from the newest checkpoint that was renamed into place, and its next write removes it.

The child reports where it is by rewriting a small status file (``os.pwrite``, one record); after the kill the
parent reads the record the process died with. Each kill is checked: the next life resumed from the last
checkpoint whose rename had completed. After the last kill, one more life runs to the end; its weights and its
history's losses are compared bitwise with the reference run's.

    python bench/kill_resume.py                    # 20 kills, children forked from this (already imported) process
    python bench/kill_resume.py --start spawn      # each child a fresh interpreter (slower: ~4 s to import torch)
    python bench/kill_resume.py --quick --kills 3  # the small version tests/training/test_faults.py runs
    python bench/kill_resume.py --model charlm     # the character language model
"""
import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# numba's GNU OpenMP pool (its default here) aborts a process forked after it ran; its workqueue pool forks safely
os.environ.setdefault("NUMBA_THREADING_LAYER", "forksafe")

import torch  # noqa: E402

import rnr  # noqa: E402
from rnr import weights as _safefile  # noqa: E402
from rnr.data import tasks  # noqa: E402
from rnr.training import checkpoint  # noqa: E402
from rnr.training import core as core_module  # noqa: E402

STATUS_BYTES = 512


# ---------------------------------------------------------------- the child: one life of the training run


def task(quick: bool, seed: int, kind: str = "fit"):
    """(model, train, val, settings) of the run; the same in every life."""
    if kind == "charlm":
        text = "\n".join(tasks.toy_sentences(120 if quick else 300, seed=seed + 1))
        val = "\n".join(tasks.toy_sentences(20, seed=seed + 2))
        settings = dict(hidden_size=24, embedding_dim=8, dropout=0.2, seq_len=16, batch_size=8, lr=3e-3,
                        epochs=3 if quick else 6, random_state=seed, progress=False, checkpoint_every=1)
        return rnr.CharLM(**settings), text, val, settings
    n, epochs = (32, 6) if quick else (64, 20)
    train = tasks.ragged_sums(n, max_len=12, seed=seed + 1)
    val = tasks.ragged_sums(16, max_len=12, seed=seed + 2)
    torch.manual_seed(seed)
    model = rnr.ManyToOne(1, 1, cell="lstm", hidden_size=32, num_layers=2, dropout=0.2)
    settings = dict(epochs=epochs, batch_size=8, lr=3e-3, lr_schedule="cosine", seed=seed, progress=False,
                    checkpoint_every=1)
    return model, train, val, settings


def train_once(kind: str, model, train, val, settings: dict, **run) -> tuple[dict, dict]:
    """Train (or resume) the run; returns (its weights, its history: train_loss and val_loss per epoch)."""
    if kind == "charlm":
        lm = rnr.CharLM(**{**settings, **run}).fit(train, val)
        return dict(lm.net_.state_dict()), {"steps": lm.history_["steps"][-1],
                                            "train_loss": lm.history_["train_loss"],
                                            "val_loss": lm.history_["val_nats"]}
    history = rnr.fit(model, train, val, **{**settings, **run})
    return dict(model.state_dict()), {"steps": history["steps"][-1], "train_loss": history["train_loss"],
                                      "val_loss": history["val_loss"]}


class Status:
    """One JSON record at the start of a file, rewritten in place: what the child is doing now."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.record = {"phase": "start", "step": 0, "from": None, "renamed": None, "damaged": 0}

    def set(self, **changes):
        self.record.update(changes)
        blob = json.dumps(self.record).encode()
        os.pwrite(self.fd, blob.ljust(STATUS_BYTES), 0)  # one write syscall: a kill sees the old or the new record

    @staticmethod
    def read(path) -> dict:
        """The record; {} before the first. A read racing the child's write can see half of each (Linux reads of
        a file do not wait for its writes), so read until two reads agree and parse."""
        for _ in range(10_000):
            first, second = (Path(path).read_bytes()[:STATUS_BYTES] for _ in range(2))
            if first == second:
                try:
                    return json.loads(first.decode().strip() or "{}")
                except ValueError:
                    pass
        raise ValueError(f"the status file {str(path)!r} does not hold a record: {first[:80]!r}")


def instrument(status: Status, slow: float) -> None:
    """Report the phase of the run to ``status``, and slow checkpoint writes by ``slow`` seconds (bench only)."""
    trainer = core_module.TrainingCore
    train_step, end_epoch, write, latest = trainer._batch, trainer._end_epoch, checkpoint.write, checkpoint.latest

    def step(self, batch):
        status.set(phase="step", step=self.step + 1)
        return train_step(self, batch)

    def validate(self):
        status.set(phase="val")
        return end_epoch(self)

    def checkpoint_write(folder, step, *args, **kwargs):
        status.set(phase="write", step=step)
        path = write(folder, step, *args, **kwargs)
        status.set(phase="written")
        return path

    def checkpoint_latest(folder, *args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            found = latest(folder, *args, **kwargs)
        status.set(phase="resumed", step=0 if found is None else found[1]["step"],
                   damaged=sum("is damaged" in str(w.message) for w in caught),
                   **{"from": 0 if found is None else found[1]["step"]})
        return found

    class SlowFile:  # the temporary file, written in two halves with a pause between
        def __init__(self, f):
            self.f = f

        def write(self, blob):
            half = len(blob) // 2
            self.f.write(blob[:half])
            self.f.flush()
            status.set(phase="temp-half")
            time.sleep(slow / 2)
            return half + self.f.write(blob[half:])

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    class SlowOS:  # stands in for ``os`` inside rnr.weights only
        def __getattr__(self, name):
            return getattr(os, name)

        def fdopen(self, *args, **kwargs):
            return SlowFile(os.fdopen(*args, **kwargs))

        def replace(self, src, dst):
            status.set(phase="temp-whole")  # written and fsynced, not yet renamed
            time.sleep(slow / 2)
            os.replace(src, dst)
            status.set(phase="renamed", renamed=int(Path(dst).name[5:-12]))

    trainer._batch, trainer._end_epoch = step, validate
    checkpoint.write, checkpoint.latest = checkpoint_write, checkpoint_latest
    _safefile.os = SlowOS()


def child(spec: dict) -> None:
    torch.set_num_threads(1)
    status = Status(spec["status"])
    instrument(status, spec["slow"])
    model, train, val, settings = task(spec["quick"], spec["seed"], spec["model"])
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resumed cosine schedule warns about the order of its calls
        weights, history = train_once(spec["model"], model, train, val, settings, checkpoint_dir=spec["ckpt"],
                                      resume=True)
    seconds = time.perf_counter() - began
    _safefile.os = os  # the weights themselves, written at full speed
    _safefile.write(spec["out"], weights, {})
    Path(spec["out"] + ".json").write_text(json.dumps({"seconds": seconds, **history}))
    status.set(phase="done")


# ---------------------------------------------------------------- the parent


class Life:
    """One child process: forked from this process (fast) or a fresh interpreter (``spawn``)."""

    def __init__(self, spec: dict, start: str):
        self.proc, self.pid = None, None
        if start == "spawn":
            self.proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)])
            return
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                child(spec)
                code = 0
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        self.pid, self.code = pid, None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code is None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
        else:
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        if self.proc is not None:
            return self.proc.wait()
        if self.code is None:
            self.code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.code


TRAINING = ("step", "val", "write", "temp-half", "temp-whole", "renamed", "written")


def wait_until(life: Life, status_path, step: int, timeout: float = 120.0) -> bool:
    """True once the child is training at ``step`` or later; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = Status.read(status_path)
        if record.get("phase") in TRAINING and record["step"] >= step:
            return True
        if not life.alive():
            return False
        time.sleep(0.001)
    raise TimeoutError(f"the child did not reach step {step} within {timeout} s")


def landed(record: dict) -> tuple[str, bool]:
    """(where the kill landed, in words; whether inside a checkpoint write)."""
    phase, step = record["phase"], record["step"]
    words = {"step": f"step {step}",
             "val": "epoch-end validation",
             "write": f"write {step} (serializing)",
             "temp-half": f"write {step} (temp half written)",
             "temp-whole": f"write {step} (temp whole, not renamed)",
             "renamed": f"write {step} (renamed, pruning)",
             "written": f"after write {step}",
             "resumed": "resuming"}
    return words.get(phase, phase), phase in ("write", "temp-half", "temp-whole", "renamed")


def run(args) -> bool:
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kill_resume-"))
    spec = dict(quick=args.quick, seed=args.seed, slow=args.slow_write, model=args.model)
    model, train, _, settings = task(args.quick, args.seed, args.model)
    if args.model == "charlm":
        per_epoch = -(-(len(train) - 1) // settings["batch_size"] // settings["seq_len"])
    else:
        per_epoch = -(-len(train[0]) // settings["batch_size"])
    print(f"kill-resume: {model!r}, {settings['epochs']} epochs x {per_epoch} steps, checkpoint_every=1, "
          f"slow write {1000 * args.slow_write:.0f} ms, children by {args.start}, seed {args.seed}")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{platform.platform()}")

    if args.start == "fork":  # the first fit in a process loads lazy modules and compiles kernels (seconds)
        with tempfile.TemporaryDirectory() as scratch:
            warm, warm_train, warm_val, warm_settings = task(args.quick, args.seed, args.model)
            train_once(args.model, warm, warm_train, warm_val, {**warm_settings, "epochs": 1}, checkpoint_dir=scratch)

    def life(name: str) -> tuple[Life, dict]:
        s = {**spec, "ckpt": str(work / name), "status": str(work / f"{name}.status"), "out": str(work / f"{name}.out")}
        Path(s["status"]).write_bytes(b"")
        return Life(s, args.start), s

    # the reference: never interrupted (with the same slow writes, so its time is the killed runs' time)
    ref, ref_spec = life("reference")
    if ref.wait() != 0:
        raise SystemExit("the reference run failed")
    reference = json.loads(Path(ref_spec["out"] + ".json").read_text())
    t = reference["seconds"]
    print(f"reference run: {reference['steps']} steps in {t:.2f} s (of which about "
          f"{reference['steps'] * args.slow_write:.2f} s slowed writes)\n")

    print("at: seconds after the life's first step began; from: the step this life resumed from; resumes: the step "
          "the next one resumed from, checked against the last checkpoint renamed into place before the kill; temp: "
          "temporary files the kill left\n")
    print(f"{'kill':>4}  {'at (s)':>7}  {'landed in':<36}  {'from':>5}  {'resumes':>7}  {'temp':>4}  check")
    kills = ok = in_write = 0
    kinds: dict[str, int] = {}
    row, expected = None, None  # the last kill's row, printed once the next life shows where it resumed
    folder = work / "killed"

    def check(record: dict) -> None:  # the next life resumed from the last checkpoint renamed before the kill
        nonlocal ok
        good = record["from"] == expected and record["damaged"] == 0
        ok += good
        print(row + ("  ok" if good else f"  FAILED: resumed from {record['from']}, not {expected}; "
                                         f"{record['damaged']} damaged checkpoints"))

    steps, per_step = reference["steps"], t / reference["steps"]
    for k in range(1, args.kills + 1):
        proc, s = life("killed")
        if not wait_until(proc, s["status"], 1):
            print(f"{k:>4}  the run ended before the kill (exit {proc.wait()})")
            break
        began = time.perf_counter()
        record = Status.read(s["status"])
        this_from = record["from"]
        if row is not None:
            check(record)
        # a random step in the first 0.8 / (kills to come + 1) of what is left (two steps always stay), then a
        # random moment within about one step and its checkpoint write
        span = max(steps - this_from - 2, 0) / (args.kills - k + 2)
        target = this_from + 1 + int(rng.uniform(0, 1.6) * span)
        if wait_until(proc, s["status"], target):
            time.sleep(rng.uniform(0, per_step))
        if not proc.alive():
            print(f"{k:>4}  the run ended before the kill")
            break
        delay = time.perf_counter() - began
        proc.kill()
        proc.wait()
        kills += 1
        record = Status.read(s["status"])
        where, writing = landed(record)
        in_write += writing
        kind = record["phase"] if writing else "step"
        kinds[kind] = kinds.get(kind, 0) + 1
        # the next life must resume from the newest checkpoint on disk; the status file can lag a rename that
        # completed just before the kill, so it only bounds that from below
        on_disk = [int(p.name[5:-12]) for p in checkpoint.files(folder)]
        expected = max(on_disk) if on_disk else this_from
        if record["renamed"] is not None and expected < record["renamed"]:
            print(f"{k:>4}  FAILED: checkpoint {record['renamed']} was renamed into place but is not on disk")
            break
        temps = len(_safefile.leftovers(folder, "ckpt-*.safetensors"))
        row = f"{k:>4}  {delay:7.3f}  {where:<36}  {this_from:>5}  {expected:>7}  {temps:>4}"
    final, s = life("killed")
    code = final.wait()
    record = Status.read(s["status"])
    if row is not None and record.get("from") is not None:
        check(record)
    if code != 0:
        raise SystemExit("the final run failed")
    got = json.loads(Path(s["out"] + ".json").read_text())
    print(f"\nfinal run: resumed from step {record['from']}, finished at step {got['steps']}")

    want_w, _ = _safefile.read(ref_spec["out"])
    got_w, _ = _safefile.read(s["out"])
    same = want_w.keys() == got_w.keys() and all(torch.equal(want_w[k], got_w[k]) for k in want_w)
    same_history = got["train_loss"] == reference["train_loss"] and got["val_loss"] == reference["val_loss"]
    left = [p.name for p in _safefile.leftovers(folder, "ckpt-*.safetensors")]
    print(f"kills inside a checkpoint write: {in_write}/{kills} ({kinds.get('temp-half', 0)} with the temp file "
          f"half written, {kinds.get('temp-whole', 0)} whole but not renamed, {kinds.get('write', 0)} serializing, "
          f"{kinds.get('renamed', 0)} pruning after the rename); the rest in steps or validation")
    print(f"checkpoints left: {[p.name for p in checkpoint.files(folder)]}; temporary files left: {left}")
    print(f"history (train_loss, val_loss per epoch) identical to the reference: {same_history}")
    print(f"{ok}/{args.kills} resumed, final weights bitwise identical: {same}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"files kept in {work}")
    return ok == args.kills and same and same_history and not left


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=["fit", "charlm"], default="fit",
                   help="the run: rnr.fit of a ManyToOne (default) or a CharLM")
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs before the last life runs to the end (20)")
    p.add_argument("--seed", type=int, default=0, help="seeds the run (data, weights, shuffling) and the kill times")
    p.add_argument("--quick", action="store_true", help="a smaller run (6 epochs of 4 steps)")
    p.add_argument("--slow-write", type=float, default=0.02, help="seconds each checkpoint write pauses (0.02)")
    p.add_argument("--start", choices=["fork", "spawn"], default="fork" if hasattr(os, "fork") else "spawn",
                   help="fork children from this process (fast) or spawn fresh interpreters")
    p.add_argument("--keep", action="store_true", help="keep the checkpoints and outputs (their folder is printed)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    if args.kills < 1:
        p.error(f"--kills must be >= 1, got {args.kills}")
    return 0 if run(args) else 1


if __name__ == "__main__":
    sys.exit(main())
