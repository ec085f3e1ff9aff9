"""``python -m workers.serving.xgboost_server``: answer predictions of an XGBoost model over HTTP.

Standard library HTTP (a thread per request) and XGBoost only. Routes:

- ``GET /healthz``: 200 while a model is loaded, 503 before (no traffic until then).
- ``POST /predict`` with ``{"instances": [[f0, f1, ...], ...]}``: ``{"predictions":
  [...], "model_version": "..."}``; 400 naming what is wrong with the body.
- ``GET /`` or ``GET /model``: what is served (version, metadata, features, device).

The model comes from a model folder (``workers.model_folder``), checked every
``--reload-seconds``: see ``workers.serving.served_model`` for following the
newest version or pinning one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from workers.model_folder import shared_folder
from workers.serving.served_model import BadInstances, ServedModel

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


class ModelServer(ThreadingHTTPServer):
    """An HTTP server answering for one ServedModel, reloading it in a background thread."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], model: ServedModel, reload_seconds: float = 10.0
    ) -> None:
        super().__init__(address, PredictionHandler)
        self.model = model
        self.reload_seconds = reload_seconds
        self._stopped = threading.Event()
        self._reloader = threading.Thread(target=self._reload, name="model-reload", daemon=True)

    @property
    def url(self) -> str:
        """Where it listens, e.g. ``http://127.0.0.1:8000``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Load the model if there is one, then answer until ``shutdown()``."""
        self.model.refresh()
        self._reloader.start()
        try:
            super().serve_forever(poll_interval)
        finally:
            self._stopped.set()

    def _reload(self) -> None:
        while not self._stopped.wait(self.reload_seconds):
            self.model.refresh()


class Refused(Exception):
    """A request answered with ``status``: its message says what to change."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class PredictionHandler(BaseHTTPRequestHandler):
    """The routes: /healthz, /predict, / and /model."""

    server: ModelServer
    protocol_version = "HTTP/1.1"  # keep-alive: a balancer reuses its connections
    # Headers and body are written apart: without TCP_NODELAY the body waits for the
    # caller's delayed ACK (40 ms on Linux) on every kept-alive request.
    disable_nagle_algorithm = True
    timeout = 120  # seconds a connection may sit idle or mid-request before it is closed

    def do_GET(self) -> None:
        """Health or model description."""
        path = self.path.split("?", 1)[0]
        model = self.server.model
        if path == "/healthz":
            if model.current is None:
                self._error(503, "no_model", model.waiting_reason())
            else:
                self._answer(200, {"status": "ok", "model_version": model.current.version})
        elif path in ("/", "/model"):
            self._answer(200, model.description())
        elif path == "/predict":
            self._error(405, "method_not_allowed", "POST /predict with a JSON body")
        else:
            self._not_found(path)

    def do_POST(self) -> None:
        """Predictions."""
        path = self.path.split("?", 1)[0]
        if path != "/predict":
            self.close_connection = True  # its body stays unread
            self._not_found(path)
            return
        try:
            body = self._json_body()
            if not isinstance(body, dict) or "instances" not in body:
                raise Refused(
                    400, "bad_request", 'the body must be a JSON object {"instances": [...]}'
                )
            predictions, version = self.server.model.predict(body["instances"])
        except Refused as exc:
            self._error(exc.status, exc.code, str(exc))
        except BadInstances as exc:
            self._error(400, "bad_instances", str(exc))
        except LookupError as exc:
            self._error(503, "no_model", str(exc))
        except Exception:
            log.exception("prediction failed")
            self._error(500, "internal", "the prediction failed; the app's log says why")
        else:
            self._answer(200, {"predictions": predictions, "model_version": version})

    def _json_body(self) -> Any:
        """The request's JSON body; Refused saying why there is none."""
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length <= 0:
            self.close_connection = True
            raise Refused(400, "bad_request", "send a JSON body with a Content-Length header")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be taken for a request
            raise Refused(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes: send less")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise Refused(400, "bad_json", f"the body is not JSON: {exc}") from None

    def _not_found(self, path: str) -> None:
        self._error(404, "not_found", f"no route {path[:100]!r}: use /predict, /healthz or /model")

    def _error(self, status: int, code: str, message: str) -> None:
        self._answer(status, {"error": {"code": code, "message": message}})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines go to the module's logger, not raw stderr."""
        log.debug("%s %s", self.address_string(), format % args)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; 2 on bad usage."""
    parser = argparse.ArgumentParser(prog="python -m workers.serving.xgboost_server")
    parser.add_argument("--port", type=int, default=_env_port(), help="default: $PORT")
    parser.add_argument(
        "--host", default=os.environ.get("HOST", "127.0.0.1"), help="default: $HOST or 127.0.0.1"
    )
    parser.add_argument(
        "--model-dir", required=True, help="the model folder, as the recipe's folder path names it"
    )
    parser.add_argument(
        "--model-version", default=None, help="serve this version only (default: the newest)"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--reload-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.port is None:
        parser.error("--port: give a port (or set $PORT)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    model = ServedModel(shared_folder(args.model_dir), args.model_version, args.device)
    server = ModelServer((args.host, args.port), model, args.reload_seconds)
    log.info("listening on %s, models from %s", server.url, model.folder)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _env_port() -> int | None:
    value = os.environ.get("PORT", "").strip()
    return int(value) if value.isdigit() else None


if __name__ == "__main__":
    sys.exit(main())
