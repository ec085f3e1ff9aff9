"""A tiny real HTTP/1.1 server (standard library only) that records what clients send.

It answers every request with JSON (``[]`` unless a route is given an answer),
keeps connections alive as HTTP/1.1 servers do, and counts the connections
clients open, so tests can see requests and connection reuse without Titan's
server (and without its packages: a subprocess may serve it too).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class RecordingServer:
    """Serves on ``url`` (127.0.0.1, a free port) until ``close()``.

    ``answers[(method, path)] = (status, body)`` sets what a route answers;
    ``requests`` lists ``(method, path, query, body)`` as received and
    ``connections`` counts the TCP connections accepted.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.connections = 0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn serves

            def setup(self) -> None:
                super().setup()
                recorder.connections += 1

            def _answer(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                recorder.requests.append(
                    (self.command, split.path, dict(parse_qsl(split.query)), body)
                )
                status, answer = recorder.answers.get((self.command, split.path), (200, []))
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
