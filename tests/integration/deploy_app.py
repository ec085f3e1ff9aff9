"""A tiny HTTP app the deployment tests run as replicas (stdlib only).

``python deploy_app.py VERSION [--never-healthy] [--delay SECONDS]`` listens on
``$TITAN_BIND_HOST:$PORT`` and answers:

- ``GET /healthz``: 200 while healthy (500 with ``--never-healthy``, or after
  ``POST /sicken``);
- ``GET|POST /<anything>``: JSON ``{"version", "replica", "path", "query", "body",
  "user"}`` (``replica`` is ``$TITAN_PROCESS``'s name, else the pid);
- ``GET /cookie``: sets cookies (one named as the console's session);
- ``POST /exit``: the process exits with code 3.

``--delay`` waits that long before it listens (a slow start).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = sys.argv[1] if len(sys.argv) > 1 else "v1"
SICK = threading.Event()
if "--never-healthy" in sys.argv:
    SICK.set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart

    def _answer(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        path, _, query = self.path.partition("?")
        if path == "/healthz":
            self._answer(500 if SICK.is_set() else 200, {"healthy": not SICK.is_set()})
            return
        if path == "/sicken":
            SICK.set()
        if path == "/cookie":  # tries to sign the visitor in to the console
            self.send_response(200)
            self.send_header("Set-Cookie", "titan_session=planted; Path=/; HttpOnly")
            self.send_header("Set-Cookie", "app=1; Path=/")
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/exit":
            self._answer(200, {"exiting": True})
            self.wfile.flush()
            os._exit(3)
        self._answer(
            200,
            {
                "version": VERSION,
                "replica": os.environ.get("PORT", str(os.getpid())),
                "path": path,
                "query": query,
                "body": body,
                "method": self.command,
                "user": self.headers.get("X-Titan-User"),
                "authorization": self.headers.get("Authorization"),
                "cookie": self.headers.get("Cookie"),
            },
        )

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    if "--delay" in sys.argv:
        time.sleep(float(sys.argv[sys.argv.index("--delay") + 1]))
    host = os.environ.get("TITAN_BIND_HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
