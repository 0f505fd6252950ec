"""A killed run's checkpoints never take over a new run in the same folder (issue 16, item 1), through the command.

Run A (``rnr fit forecast`` on one panel, many epochs) is killed with SIGKILL once it has written a checkpoint of
step >= ``--a-steps``. Run B writes to the same ``--out`` with other data and ``--force``, and is killed after its
first checkpoint (a lower step than A's newest). ``--resume`` must then continue B, not A: ``run.json`` and the
resumed run's ``info.json`` carry B's run id and B's data fingerprint, and the resumed run starts from B's newest
checkpoint. Before the fix, B's checkpoints were pruned as soon as written (A's had higher step numbers) and the
resume continued A.

    python bench/kill_takeover.py
"""
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnr.cli.folder import fingerprint  # noqa: E402
from rnr.data import tasks  # noqa: E402
from rnr.training import checkpoint  # noqa: E402

SETTINGS = ["--horizon", "7", "--quiet", "--set", "model.epochs=400", "--set", "model.hidden_size=16",
            "--set", "model.head_size=16", "--set", "model.threads=1"]


def start(data: Path, out: Path, *extra) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rnr", "fit", "forecast", "--data", str(data), *SETTINGS, "--out", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def newest_step(out: Path) -> int:
    found = checkpoint.files(out / "checkpoints")
    return int(checkpoint.NAME.fullmatch(found[-1].name)[1]) if found else 0


def run_id(out: Path) -> str | None:
    try:
        return json.loads((out / "run.json").read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        return None


def kill_after(proc: subprocess.Popen, out: Path, steps: int, other_than: str | None = None,
               timeout: float = 300) -> int:
    """SIGKILL ``proc`` once its run (a run id other than ``other_than``) has a checkpoint of step >= ``steps`` in
    ``out``; returns the newest step then."""
    end = time.time() + timeout
    while run_id(out) in (None, other_than) or newest_step(out) < steps:
        if proc.poll() is not None or time.time() > end:
            raise RuntimeError(f"the run ended before step {steps}: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return newest_step(out)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tasks.ice_cream(n_shops=4, days=200, seed=0).to_csv(tmp / "a.csv", index=False)
        tasks.ice_cream(n_shops=4, days=200, seed=1).to_csv(tmp / "b.csv", index=False)
        out = tmp / "r"
        a_step = kill_after(start(tmp / "a.csv", out), out, steps=40)
        run_a = run_id(out)
        b_step = kill_after(start(tmp / "b.csv", out, "--force"), out, steps=1, other_than=run_a)
        run_b = run_id(out)
        steps_left = [int(checkpoint.NAME.fullmatch(p.name)[1]) for p in checkpoint.files(out / "checkpoints")]
        resumed = start(tmp / "b.csv", out, "--resume", "--set", "model.epochs=20")
        _, err = resumed.communicate()
        info = json.loads((out / "info.json").read_text())
        ok = (resumed.returncode == 0 and run_a != run_b and info["run_id"] == run_b
              and json.loads((out / "run.json").read_text())["data"] == fingerprint(tmp / "b.csv")
              and max(steps_left) == b_step < a_step)
        print(f"run A ({run_a}) killed at checkpoint step {a_step}; run B ({run_b}, --force, other data) killed at "
              f"step {b_step}; checkpoints left: steps {steps_left}; --resume exit {resumed.returncode}, continued "
              f"run {info['run_id']} to {info['epochs_done']} epochs: {'B, as it must' if ok else 'WRONG'}")
        if resumed.returncode:
            print(err[-2000:])
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
