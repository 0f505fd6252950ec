#!/usr/bin/env bash
# The speed benchmarks on a CUDA machine, in under 5 minutes: the GPU tests (cuDNN agreement with the CPU paths),
# the kernel grid with cuDNN on both sides, and M4 Hourly trained on the GPU. Run from the repository root after
# `make test` has built .venv (on a GPU machine, install a CUDA build of torch into .venv first).
#
#     bash bench/gpu.sh [output folder]      # writes gpu-*.txt and kernels-gpu.json there (default rnr-output/)
set -euo pipefail
out=${1:-rnr-output}
mkdir -p "$out"
py=${PYTHON:-.venv/bin/python}
"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this script needs a GPU')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu-machine.txt"
"$py" -m pytest -q -p no:cacheprovider tests/core/test_gpu.py 2>&1 | tee "$out/gpu-tests.txt"
timeout 180 "$py" bench/kernels.py --device cuda --repeats 5 --only kernels --json "$out/kernels-gpu.json" \
    2>&1 | tee "$out/gpu-kernels.txt"
timeout 90 "$py" experiments/m4_hourly.py --device cuda --epochs 12 --no-baselines 2>&1 | tee "$out/gpu-m4.txt"
