"""Run the API server: bind first (port 0 picks a free port), then serve."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket

import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.backends.container_host import with_container_host
from service.config import Settings

log = logging.getLogger(__name__)


def listen(host: str, port: int) -> socket.socket:
    """A bound socket for the API on ``host:port`` (0: any free port)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it small responses on a kept-alive
    # connection wait ~40 ms for a delayed ACK (uvicorn sets it only on sockets it binds).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def uvicorn_config(app: FastAPI, settings: Settings, log_level: str = "info") -> uvicorn.Config:
    """How uvicorn serves ``app``, the same for ``titan server`` and the tests.

    Forwarded headers (``X-Forwarded-For``/``-Proto``) are believed only from
    the proxies in ``settings.trusted_proxies``; with none named (the default)
    every request's client is its connection's peer, whatever headers it sends.
    (uvicorn alone would believe them from 127.0.0.1, where every local client is.)
    """
    trusted = list(settings.trusted_proxies)
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
    )


def serve(settings: Settings) -> None:
    """Serve the API until interrupted; records the URL in ``<data_dir>/server.json``.

    With ``container_host`` set (or found from the engine, for the docker backend),
    the API also listens there (same port), for processes in containers.
    """
    settings = with_container_host(settings)
    sock = listen(settings.host, settings.port)
    port = sock.getsockname()[1]
    sockets = [sock]
    if settings.container_host and settings.container_host != settings.host:
        sockets.append(listen(settings.container_host, port))
    settings = settings.model_copy(update={"port": port})
    url = f"http://{settings.host}:{port}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    record = settings.data_dir / "server.json"
    record.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn_config(create_app(settings), settings)
    log.info("Titan listening on %s; web console: %s/ (sign in with a token)", url, url)
    try:
        uvicorn.Server(config).run(sockets=sockets)
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(record.read_text()).get("pid") == os.getpid():
                record.unlink()
