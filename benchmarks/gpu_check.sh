#!/usr/bin/env bash
# Titan's GPU check, in one go, on a machine with an NVIDIA GPU (see gpu_check.py):
# NVML telemetry, dask cuda worker pinned by UUID, XGBoost device="cuda" vs CPU hist,
# a CuPy task, the sampler's overhead. Prints a table; logs go to $OUT (or a temp dir).
#
# On a machine with network: pip install -e '.[gpu]' && pip uninstall -y xgboost-cpu &&
# pip install xgboost, then run this. On a machine without: carry wheels in .whl/
# (benchmarks/gpu_wheels.sh downloads them here) and they are installed to /tmp/site.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$(mktemp -d /tmp/titan-gpu-check.XXXX)}
mkdir -p "$out"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
  export PATH=/tmp/site/bin:$PATH
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,uuid,driver_version,memory.total --format=csv || true
  python3 -m workers.telemetry --once || true
  timeout 540 python3 benchmarks/gpu_check.py --out "$out" "$@"
} 2>&1 | tee "$out/gpu_check.log"
