#!/usr/bin/env bash
# The speed benchmarks on a CUDA machine, in under 5 minutes: the GPU tests (cuDNN agreement with the CPU paths),
# the kernel grid with cuDNN on both sides, and M4 Hourly trained on the GPU. Run from the repository root after
# `make test` has built .venv (on a GPU machine, install a CUDA build of torch into .venv first).
#
#     bash bench/gpu.sh [output folder]      # writes gpu-*.txt and kernels-gpu.json there (default rnr-output/)
set -euo pipefail
out=${1:-rnr-output}
py=${PYTHON:-.venv/bin/python}
# a CPU-only machine has nothing to measure here: say so and succeed (exit 3 is torch's answer "no CUDA device";
# any other failure, torch missing say, stops the script with its own error)
found=0
"$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)" || found=$?
if [ "$found" -eq 3 ]; then
    echo "bench/gpu.sh: no GPU here (torch sees no CUDA device); nothing to measure, run it on a CUDA machine"
    exit 0
elif [ "$found" -ne 0 ]; then
    exit "$found"
fi
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu-machine.txt"
"$py" -m pytest -q -p no:cacheprovider tests/core/test_gpu.py 2>&1 | tee "$out/gpu-tests.txt"
timeout 180 "$py" bench/kernels.py --device cuda --repeats 5 --only kernels --json "$out/kernels-gpu.json" \
    2>&1 | tee "$out/gpu-kernels.txt"
timeout 90 "$py" experiments/m4_hourly.py --device cuda --epochs 12 --no-baselines 2>&1 | tee "$out/gpu-m4.txt"
