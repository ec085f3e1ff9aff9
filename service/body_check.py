"""``JsonBodyCheck``: no API route sees a JSON body holding a value Titan would not store.

Every route of the API decodes JSON its own way (FastAPI's body models, the
recipe routes' own reader); this middleware decodes each JSON body once with
:func:`~service.json_values.decode_json` before any of them, so a NUL, a lone
surrogate or an out-of-range number anywhere in any body is one 422 naming its
JSON path, the same on every route, and nothing is stored. A NUL in the URL
(``%00``) is refused the same way. Bodies that are not JSON at all pass
through untouched: the route says what is wrong with them, as before.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import InvalidInput, MalformedRequest, TitanError
from service.json_values import decode_json

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The samplers' route parses its bytes with pydantic's JSON parser in one pass, which
# refuses surrogates and huge numbers itself; decoding its batches twice would cost.
NOT_CHECKED = frozenset({"/api/v1/telemetry"})


class JsonBodyCheck:
    """ASGI middleware: refuses bad JSON values under ``prefix`` with 422, before any route."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope["query_string"]):
            message = "the URL holds a NUL character (%00); remove it"
            await _answer(InvalidInput(message), scope, send)
            return
        if (
            scope["method"] not in BODY_METHODS
            or scope["path"] in NOT_CHECKED
            or not _is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except TitanError as exc:  # over the size limit (BodyLimit, outside this one)
            await _answer(exc, scope, send)
            return
        if body is None:  # the client went away before sending it all
            return
        try:
            decode_json(body)
        except MalformedRequest:
            pass  # not JSON at all: the route answers it as it always has
        except InvalidInput as exc:
            await _answer(exc, scope, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _is_json(scope: Scope) -> bool:
    """Whether a route may read the body as JSON: FastAPI does for a JSON type and also
    when no Content-Type is sent at all (so such bodies are checked too)."""
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            return kind == b"application/json" or (
                kind.startswith(b"application/") and kind.endswith(b"+json")
            )
    return True


async def _read_body(receive: Receive) -> bytes | None:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then waits as the real one."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _answer(error: TitanError, scope: Scope, send: Send) -> None:
    response = JSONResponse(error.to_body(), status_code=error.status_code, headers=error.headers)
    await response(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
