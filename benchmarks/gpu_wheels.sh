#!/usr/bin/env bash
# Download, on a machine with network, the wheels benchmarks/gpu_check.sh needs on a GPU
# machine without network whose Python 3.12 already has NumPy, pandas, CuPy, numba,
# nvidia-ml-py, psutil, httpx, rich and typer (the device machines' image). Into .whl/
# (add `/.whl/` to .git/info/exclude and carry it). The XGBoost CUDA wheel is ~55 MiB,
# so with --xgboost only it and the Dask packages are fetched (a second, separate run
# of gpu_check.sh), to stay under a 64 MiB carry limit.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
fetch() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl "$@"
}
dask=(dask distributed dask-cuda zict tblib partd locket sortedcontainers toolz cloudpickle
      msgpack tornado "importlib-metadata" zipp)
if [ "${1:-}" = "--xgboost" ]; then
  fetch "${dask[@]}" "xgboost>=2.1"
else
  fetch "${dask[@]}" fastapi starlette uvicorn h11 anyio sniffio pydantic pydantic-core \
    pydantic-settings python-dotenv annotated-types typing-inspection sqlalchemy greenlet \
    alembic mako websockets prometheus-client
fi
du -sh .whl
