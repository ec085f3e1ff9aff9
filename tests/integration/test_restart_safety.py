"""Kill -9 the control plane at awkward moments; on restart everything converges.

The server runs as a real ``titan server`` subprocess here, so SIGKILL gives it
no chance to clean up; its processes live on in their own sessions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from distributed import Client

from service.client import Hub, ResourceRef, TitanClientError

pytestmark = pytest.mark.slow


class ServerProcess:
    """``titan server`` on a fixed port and data directory, killable with SIGKILL."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.data_dir = data_dir
        self.env = env or {}
        with socket.socket() as probe:
            probe.bind((host, 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TITAN_")}
        env.update(
            TITAN_DATA_DIR=str(self.data_dir),
            TITAN_PORT=str(self.port),
            TITAN_HOST=self.url.removeprefix("http://").rsplit(":", 1)[0],
            TITAN_RESYNC_SECONDS="0.5",
            TITAN_BACKOFF_BASE_SECONDS="0.5",
            **self.env,
        )
        log = open(self.data_dir.parent / "server.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "server"], env=env, stdout=log, stderr=log
        )
        log.close()
        hub = Hub(self.url, "")
        deadline = time.monotonic() + 60
        while not hub.healthy():
            assert self.process.poll() is None, "server exited while starting"
            assert time.monotonic() < deadline, "server did not answer"
            time.sleep(0.1)
        return Hub(self.url, (self.data_dir / "admin-token").read_text().strip())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@contextlib.contextmanager
def running_server_process(
    data_dir: Path, env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[ServerProcess]:
    """A ``titan server`` subprocess on ``host``; what it runs is deleted and it is stopped
    after."""
    data_dir.mkdir()
    server = ServerProcess(data_dir, env, host)
    yield server
    if server.process is not None and server.process.poll() is None:
        hub = Hub(server.url, (server.data_dir / "admin-token").read_text().strip())
        refs = [ResourceRef(i["type"], i["name"], i["owner"]) for i in hub.list()]
        for ref in refs:
            hub.delete(ref)
        for ref in refs:
            hub.wait_gone(ref, timeout=60)
    server.stop()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server_process(tmp_path / "data") as server:
        yield server


def titan_processes(data_dir: Path) -> dict[str, list[int]]:
    """Live entrypoint processes under ``data_dir``, by ``<resource id>/<process name>``."""
    found: dict[str, list[int]] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if "workers.entrypoint" not in (proc.info["cmdline"] or []):
                continue
            folder = Path(proc.cwd())
            exit_file = Path(proc.environ().get("TITAN_EXIT_FILE", ""))
        except psutil.Error:
            continue
        if str(exit_file).startswith(str(data_dir)) or str(folder).startswith(str(data_dir)):
            key = f"{exit_file.parent.parent.name}/{exit_file.parent.name.rsplit('-', 1)[0]}"
            found.setdefault(key, []).append(int(proc.info["pid"]))
    return found


def test_kill_9_then_a_worker_dies_then_restart(server_process: ServerProcess) -> None:
    hub = server_process.start()
    hub.apply({"type": "cluster", "name": "c", "spec": {"n_workers": 2}})
    running = hub.wait("cluster/c", {"running"}, generation=1, timeout=120)
    before = titan_processes(server_process.data_dir)
    assert len(before) == 3 and all(len(p) == 1 for p in before.values())
    server_process.kill()
    worker = next(pids[0] for key, pids in before.items() if key.endswith("/worker-1"))
    os.killpg(worker, signal.SIGKILL)
    hub = server_process.start()

    def converged() -> bool:
        now = titan_processes(server_process.data_dir)
        return (
            hub.get("cluster/c")["status"] == "running"
            and len(now) == 3
            and all(len(p) == 1 for p in now.values())
            and now != before
        )

    _eventually(converged, 60)
    after = titan_processes(server_process.data_dir)
    scheduler = [key for key in after if key.endswith("/scheduler")]
    assert after[scheduler[0]] == before[scheduler[0]]  # adopted, not restarted
    assert hub.get("cluster/c")["endpoints"]["scheduler"] == running["endpoints"]["scheduler"]
    with Client(
        running["endpoints"]["scheduler"], security=hub.cluster_security("cluster/c"), timeout="30s"
    ) as client:
        client.wait_for_workers(2, timeout=60)
        assert client.submit(sum, [1, 2]).result() == 3


def test_kill_9_during_concurrent_applies(server_process: ServerProcess) -> None:
    hub = server_process.start()
    recipes = [
        {"type": "job", "name": f"j{i}", "spec": {"command": f"sleep 300 # {i}"}} for i in range(20)
    ]

    def apply(recipe: dict[str, object]) -> None:
        with contextlib.suppress(TitanClientError):  # the server died under it: re-applied below
            hub.apply(recipe)

    threads = [threading.Thread(target=apply, args=(r,)) for r in recipes]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    server_process.kill()
    for thread in threads:
        thread.join()
    hub = server_process.start()
    for recipe in recipes:  # a client retries what may not have been recorded
        hub.apply(recipe)

    def converged() -> bool:
        states = [item["status"] for item in hub.list()]
        return len(states) == 20 and set(states) == {"running"}

    _eventually(converged, 120)
    live = titan_processes(server_process.data_dir)
    assert len(live) == 20, live
    assert all(len(pids) == 1 for pids in live.values()), "a process was duplicated"


def _eventually(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "did not converge in time"
        time.sleep(0.25)
