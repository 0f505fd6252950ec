"""The scripts of bench/ that must behave on any machine (each one's timing is measured by running it, not here)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the whole GPU benchmark")
def test_gpu_sh_says_there_is_no_gpu_and_succeeds_on_a_cpu_only_machine(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    called = tmp_path / "nvidia-smi-called"
    (fake / "nvidia-smi").write_text(f"#!/bin/sh\ntouch {called}\n")
    (fake / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PYTHON": sys.executable, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    out = tmp_path / "out"
    done = subprocess.run(["bash", "bench/gpu.sh", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "bench/gpu.sh: no GPU here (torch sees no CUDA device)" in done.stdout
    assert not called.exists() and not out.exists()  # stopped before nvidia-smi and before any output folder


def test_gpu_sh_still_fails_when_python_cannot_run_torch(tmp_path):
    env = {**os.environ, "PYTHON": "false"}  # exits 1: not the "no CUDA device" answer
    done = subprocess.run(["bash", "bench/gpu.sh", str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "no GPU" not in done.stdout
