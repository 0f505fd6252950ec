"""How much a second busy process slows an rnr training run: torch's default threads against rnr's choice.

Two ``CharLM`` models train on the text of docs/*.md, a small one (LSTM 32, batch 16) and a medium one (LSTM 256,
batch 64), each for a window of ``--seconds`` (``max_minutes``) four times: alone and beside a busy process, each
with the old behaviour (torch's default count of threads: ``RNR_THREADS`` set to it) and the new (nothing set: rnr
chooses from the free cores and the work per step, ``rnr.core.threads``). The busy process is another Python
spinning a torch product on one thread, started and killed by this script. Speed is optimizer updates per second
of training (the history's updates over its seconds); a slowdown is the speed alone over the speed beside the busy
process. A process that takes one of C cores should slow a run by about C / (C - 1) (2x on 2 cores for a run that
used both, 1x for one that used one), not by an order of magnitude.

    python bench/contention.py                 # about 5 minutes on 2 cores (30 s a window)
    python bench/contention.py --seconds 10    # under 2 minutes

Run it on an otherwise quiet machine, with OMP_NUM_THREADS unset (it would fix torch's count for both sides).
"""
import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numba
import torch

import rnr
from rnr.core import threads
from rnr.sequences.charlm import CharNet

ROOT = Path(__file__).resolve().parents[1]
MODELS = {  # name -> CharLM settings
    "small": dict(hidden_size=32, embedding_dim=16, batch_size=16, seq_len=64),
    "medium": dict(hidden_size=256, embedding_dim=64, batch_size=64, seq_len=64),
}
SPIN = """import torch
torch.set_num_threads(1)
a = torch.randn(256, 256)
print("spinning", flush=True)
while True:
    a = torch.tanh(a @ a)
"""


def train(text: str, settings: dict, seconds: float, old: bool) -> tuple[float, int, str]:
    """Updates per second of one CharLM run of ``seconds``, its threads and why."""
    if old:
        os.environ[threads.ENV] = str(threads.TORCH_DEFAULT)  # what torch does when nobody chooses
    else:
        os.environ.pop(threads.ENV, None)
    lm = rnr.CharLM(**settings, dropout=0.0, max_minutes=seconds / 60, progress=False).fit(text)
    h = lm.history_
    spent = sum(r["seconds"] for r in h.rows)
    return h.rows[-1]["updates"] / spent, h.threads, h.threads_reason


def machine() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    cpu = names[0] if names else platform.processor()
    cpus, quota = threads.usable_cores()
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    return (f"{cpu}; {os.cpu_count()} CPUs, {len(cpus)} usable{f' (quota {quota:g})' if quota else ''}; torch "
            f"{torch.__version__} (default threads {threads.TORCH_DEFAULT}), numba {numba.__version__}, Python "
            f"{platform.python_version()}; load average {' '.join(load)} at the start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="training time of each measured run")
    args = p.parse_args()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", threads.ENV):
        if os.environ.pop(name, None) is not None and name != threads.ENV:
            print(f"note: {name} was set when torch started, so it fixes torch's count for both sides")
    text = "\n".join(f.read_text(encoding="utf-8") for f in sorted((ROOT / "docs").glob("*.md")))
    print(machine(), flush=True)
    for settings in MODELS.values():  # compile and warm up once, outside the windows
        train(text[:20_000], settings, 2.0, old=False)
    results = {}
    for name, settings in MODELS.items():
        for old in (True, False):
            results[name, "alone", old] = train(text, settings, args.seconds, old)
            print(f"{name:<7} alone  {'old' if old else 'new'}: {results[name, 'alone', old][0]:8.2f} updates/s on "
                  f"{results[name, 'alone', old][1]} threads ({results[name, 'alone', old][2]})", flush=True)
    spinner = subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
    try:
        if not spinner.stdout.readline():  # it prints once it is spinning
            raise RuntimeError("the busy process did not start")
        time.sleep(1.0)
        for name, settings in MODELS.items():
            for old in (True, False):
                results[name, "busy", old] = train(text, settings, args.seconds, old)
                r = results[name, "busy", old]
                print(f"{name:<7} busy   {'old' if old else 'new'}: {r[0]:8.2f} updates/s on {r[1]} threads "
                      f"({r[2]})", flush=True)
    finally:
        spinner.kill()
        spinner.wait()
    print("\n| model | work a step | alone: old | alone: new | beside a busy process: old | beside a busy process: "
          "new | new / old, busy |")
    print("|---|---|---|---|---|---|---|")
    for name, settings in MODELS.items():
        work = threads.step_work(_net(text, settings), settings["batch_size"])
        cells = []
        for where, old in (("alone", True), ("alone", False), ("busy", True), ("busy", False)):
            speed, n, _ = results[name, where, old]
            slow = "" if where == "alone" else f", {results[name, 'alone', old][0] / speed:.2f}x slower"
            cells.append(f"{speed:.1f}/s, {n} thr{slow}")
        ratio = results[name, "busy", False][0] / results[name, "busy", True][0]
        print(f"| {name} (LSTM {settings['hidden_size']}, batch {settings['batch_size']}) | {work / 1e6:.2g}M | "
              + " | ".join(cells) + f" | {ratio:.2f} |")


def _net(text: str, settings: dict):
    """The network a CharLM with ``settings`` trains on ``text`` (for its work per step)."""
    return CharNet(len(set(text)), settings["embedding_dim"], settings["hidden_size"], 1, "lstm", 0.0)


if __name__ == "__main__":
    main()
