"""A real Titan server on 127.0.0.1:0 (uvicorn in a thread) with the local backend."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.backends.base import Backend
from service.backends.container_host import with_container_host
from service.client import Hub, ResourceRef, TitanClientError
from service.config import Settings
from service.server import listen, uvicorn_config
from tests.conftest import make_settings
from tests.fakes import FakeBackend


class RunningServer:
    """A live server: its URL, settings and the first admin token."""

    def __init__(self, settings: Settings, backend: Backend | None = None) -> None:
        settings = with_container_host(settings)  # as `titan server` does
        sock = listen("127.0.0.1", 0)
        port = sock.getsockname()[1]
        sockets = [sock]
        if settings.container_host:  # as `titan server` does: containers reach it there
            sockets.append(listen(settings.container_host, port))
        self.url = f"http://127.0.0.1:{port}"
        public = self.url
        if settings.host != "127.0.0.1":  # where other hosts (Slurm nodes) reach it
            sockets.append(listen(settings.host, port))
            public = f"http://{settings.host}:{port}"
        self.settings = settings.model_copy(update={"port": port, "public_url": public})
        self.log = logging.FileHandler(self.settings.data_dir.parent / "service.log")
        self.log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger("service").addHandler(self.log)
        logging.getLogger("service").setLevel(logging.INFO)
        app = create_app(self.settings, backend)
        config = uvicorn_config(app, self.settings, log_level="warning")  # as `titan server`
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": sockets})
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.token = self.settings.admin_token_file.read_text().strip()

    def hub(self, token: str | None = None) -> Hub:
        """A client with the admin token, or ``token``."""
        return Hub(self.url, self.token if token is None else token)

    def request(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        """A raw HTTP request with the admin token (or ``token``; "" for none)."""
        headers = kw.pop("headers", {})
        secret = self.token if token is None else token
        if secret:
            headers.setdefault("Authorization", f"Bearer {secret}")
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def stop(self) -> None:
        """Stop the server (its processes keep running, as after a crash)."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
        logging.getLogger("service").removeHandler(self.log)
        self.log.close()


ServerFactory = Callable[..., RunningServer]


@contextlib.contextmanager
def fake_backend_server(
    data_dir: Path, database_url: str | None = None, **overrides: Any
) -> Iterator[RunningServer]:
    """A real server whose backend is the in-memory fake (no process starts); stopped after."""
    server = RunningServer(make_settings(data_dir, database_url, **overrides), FakeBackend())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers on tmp_path; every resource is deleted and every server stopped after."""
    servers: list[RunningServer] = []

    def start(database_url: str | None = None, **overrides: Any) -> RunningServer:
        server = RunningServer(make_settings(tmp_path / "data", database_url, **overrides))
        servers.append(server)
        return server

    yield start
    try:
        live = [s for s in servers if s.thread.is_alive()]
        if live:
            hub = live[-1].hub()
            refs = [ResourceRef(i["type"], i["name"], i["owner"]) for i in hub.list()]
            for ref in refs:
                hub.delete(ref)
            for ref in refs:
                try:
                    hub.wait_gone(ref, timeout=60)
                except TitanClientError as exc:  # say where it got stuck
                    state = {**hub.get(ref), "history": hub.history(ref)}
                    raise AssertionError(f"{exc}: {json.dumps(state, indent=1)}") from exc
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def server(start_server: ServerFactory) -> RunningServer:
    """One server on SQLite."""
    return start_server()
