"""The distribution: one `titan` package with a console script and the promised extras."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution, entry_points


def test_console_script_runs_the_cli() -> None:
    (script,) = entry_points(group="console_scripts", name="titan")
    assert script.value == "service.cli:main"
    shown = subprocess.run(
        [sys.executable, "-m", "service.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "apply" in shown.stdout and "demo" in shown.stdout


def test_gpu_packages_are_only_in_the_gpu_extra() -> None:
    requirements = distribution("titan").requires or []
    gpu = [r for r in requirements if 'extra == "gpu"' in r]
    assert any(r.startswith("dask-cuda") for r in gpu)
    assert any(r.startswith("cupy-cuda12x") for r in gpu)
    base = [r.split(";")[0] for r in requirements if "extra ==" not in r]
    assert not [r for r in base if r.startswith(("dask-cuda", "cupy", "nvidia"))]


def test_the_server_never_imports_gpu_libraries() -> None:
    code = (
        "import sys, service.app, service.cli, workers.entrypoint;"
        "print(sorted(m for m in ('dask_cuda', 'cupy', 'pynvml') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]", loaded.stderr
