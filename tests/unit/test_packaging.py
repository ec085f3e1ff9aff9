"""The distribution: one `titan` package with a console script and the promised extras.

`pip install titan` is the client and the CLI only; the server, what runs in
workspaces and clusters, and Dask for TitanCluster are extras.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import PathDistribution, entry_points
from pathlib import Path

import pytest

from tests.recording_server import RecordingServer

ROOT = Path(__file__).resolve().parents[2]


def test_console_script_runs_the_cli() -> None:
    (script,) = entry_points(group="console_scripts", name="titan")
    assert script.value == "service.cli:main"
    shown = subprocess.run(
        [sys.executable, "-m", "service.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "apply" in shown.stdout and "demo" in shown.stdout


@pytest.fixture(scope="module")
def requirements(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``Requires-Dist`` of the distribution this tree builds (not of what is installed)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("metadata")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("service", "workers"):
        (source / package).mkdir()
    code = "from setuptools import setup; setup()"
    built = subprocess.run(
        [sys.executable, "-c", code, "-q", "egg_info", "--egg-base", str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    return PathDistribution(out / "titan.egg-info").requires or []


def _names(requirements: list[str], extra: str | None) -> set[str]:
    """The package names required without an extra (None) or by ``extra``."""
    marker = None if extra is None else f'extra == "{extra}"'
    picked = set()
    for requirement in requirements:
        spec, _, condition = requirement.partition(";")
        if (marker is None and "extra ==" not in condition) or (
            marker is not None and marker in condition
        ):
            picked.add(re.split(r"[\[<>=!~ ]", spec.strip(), maxsplit=1)[0].lower())
    return picked


def test_a_plain_install_is_the_client_and_cli_only(requirements: list[str]) -> None:
    assert _names(requirements, None) == {"httpx", "typer", "rich"}
    assert {"fastapi", "uvicorn", "sqlalchemy", "alembic", "pydantic-settings"} <= _names(
        requirements, "server"
    )
    assert {"dask", "distributed", "jupyterlab", "xgboost-cpu", "bokeh", "ipywidgets"} <= _names(
        requirements, "workers"
    )
    assert _names(requirements, "dask") == {"distributed"}  # TitanCluster
    (everything,) = [r for r in requirements if r.startswith("titan[")]
    assert 'extra == "test"' in everything
    for extra in ("server", "workers", "dask", "postgres", "docker", "ray"):
        assert extra in everything.partition("]")[0], f"the test extra lacks {extra}"


def test_gpu_packages_are_only_in_the_gpu_extra(requirements: list[str]) -> None:
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


# What a laptop with `pip install titan` lacks: importing any of these fails there.
SERVER_AND_WORKER_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "pydantic_settings",
    "psutil",
    "cryptography",
    "prometheus_client",
    "websockets",
    "docker",
    "ray",
    "jupyterlab",
    "xgboost",
    "dask",
    "distributed",
    "tornado",
    "bokeh",
    "ipywidgets",
    "numpy",
)
SERVER_MODULES = (
    "service.app",
    "service.server",
    "service.config",
    "service.core",
    "service.database",
    "service.api",
    "service.backends",
    "service.engines",
    "service.monitoring",
    "service.recipes",
)

BLOCKER = """
import importlib.abc, json, sys
BLOCKED, SERVER = set(sys.argv[1].split()), tuple(sys.argv[2].split())

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED or name.startswith(SERVER):
            raise ImportError(f"{name} is not installed on this laptop", name=name)
        return None

sys.meta_path.insert(0, Blocker())
import service.cli, service.client
from service.cli import main
for argv in json.loads(sys.argv[3]):
    sys.argv = ["titan", *argv]
    try:
        main()
    except SystemExit as exit:
        assert not exit.code, (argv, exit.code)
try:
    from service.client import TitanCluster
except ImportError as exc:
    print("TitanCluster:", exc)
loaded = [m for m in sys.modules if m.partition(".")[0] in BLOCKED or m.startswith(SERVER)]
print("loaded:", json.dumps(sorted(loaded)))
"""


def test_the_cli_and_client_run_without_server_or_worker_packages() -> None:
    api = RecordingServer()
    api.answers[("POST", "/api/v1/images")] = (201, {"reference": "nvcr.io/x:1", "id": 7})
    api.answers[("GET", "/api/v1/usage")] = (200, {"days": []})
    options = ["--url", api.url, "--token", "t"]
    commands = [
        ["--help"],
        ["secret", "new-key"],
        [*options, "ls"],
        [*options, "image", "register", "nvcr.io/x:1"],
        [*options, "group", "ls"],
        [*options, "usage"],
        [*options, "audit", "--limit", "5"],
    ]
    try:
        ran = subprocess.run(
            [
                sys.executable,
                "-c",
                BLOCKER,
                " ".join(SERVER_AND_WORKER_PACKAGES),
                " ".join(SERVER_MODULES),
                json.dumps(commands),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    finally:
        api.close()
    assert ran.returncode == 0, ran.stderr
    assert "loaded: []" in ran.stdout, ran.stdout
    assert "TitanCluster needs" in ran.stdout and "pip install 'titan[dask]'" in ran.stdout
    assert re.search(r"^[A-Za-z0-9_-]{43}=$", ran.stdout, re.M), "no new key printed"
    sent = [(method, path) for method, path, _, _ in api.requests]
    assert sent == [
        ("GET", "/api/v1/resources"),
        ("POST", "/api/v1/images"),
        ("GET", "/api/v1/groups"),
        ("GET", "/api/v1/usage"),
        ("GET", "/api/v1/audit"),
    ]
    assert api.requests[1][3] == {
        "name": "nvcr.io/x",
        "tag": "1",
        "digest": None,
        "public": False,
        "owner": None,
    }
    assert api.requests[4][2] == {"limit": "5"}


def test_no_client_or_cli_module_imports_the_server() -> None:
    """Also lazily: only ``titan server`` itself imports the server, inside its command."""
    files = [*ROOT.glob("service/cli*.py"), *ROOT.glob("service/client/*.py")]
    files += [ROOT / "service" / n for n in ("image_reference.py", "secret_key.py", "demo.py")]
    forbidden = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", *SERVER_MODULES)
    found = []
    for path in files:
        tree = ast.parse(path.read_text())
        allowed = set()  # the nodes inside `def server` of cli.py
        for node in ast.walk(tree):
            if (
                path.name == "cli.py"
                and isinstance(node, ast.FunctionDef)
                and node.name == "server"
            ):
                allowed |= {id(n) for n in ast.walk(node)}
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if id(node) not in allowed and (
                    name in forbidden or name.startswith(tuple(f + "." for f in forbidden))
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert found == []
