#!/usr/bin/env bash
# The prepared GPU check for a session that is lent a device machine (one call, ~5 minutes):
#   run(command="bash benchmarks/gpu_check.sh", timeout_s=540)
# It uses the machine's own python3 and torch (no install: nothing can be fetched there), runs
# the CUDA tests, then the GPU benchmark (graphed and not), and leaves everything under $OUT.
# The tables go into docs/performance.md (GPU) and the closing note of the speed issue.
set -uo pipefail
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/rnnlab-gpu}"
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, numba; print('torch', torch.__version__, 'numba', numba.__version__)"
} 2>&1 | tee "$OUT/machine.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" \
  tests/test_dynamics.py tests/test_training.py -k "cuda" 2>&1 | tee "$OUT/cuda_tests.txt"
timeout 200 python3 benchmarks/train_speed.py --device cuda --repeats 7 2>&1 \
  | tee "$OUT/gpu_bench.txt"
timeout 120 python3 benchmarks/train_speed.py --device cuda --repeats 5 --no-graph 2>&1 \
  | tee "$OUT/gpu_bench_nograph.txt"
