"""How the client reaches the API: one ``httpx.AsyncClient`` per event loop, kept open.

Every API area of :class:`~service.client.hub.AsyncHub` sends its requests
through :class:`Transport.send`, so connections are reused (keep-alive) and
error answers become typed exceptions in one place.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from service.client import defaults
from service.client.calls import Call
from service.client.errors import ServerUnavailable, raise_for_answer

# Idle connections are dropped before uvicorn's own keep-alive timeout (5 s) closes
# them, so a request never goes out on a connection the server is closing.
KEEPALIVE_SECONDS = 4.0


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: building one reads the CA bundle (~50 ms)."""
    return httpx.create_ssl_context()


class Transport:
    """The server's URL and token, and the open connections to it.

    Without arguments the URL and token are ``TITAN_URL``/``TITAN_TOKEN``, else
    the saved login, else the local server's records (see :mod:`defaults`).
    """

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30):
        self.url = (url or defaults.server_url()).rstrip("/")
        self.token = token if token is not None else defaults.token(self.url)
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._http_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The authorization header of the token (none without a token)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _client(self) -> httpx.AsyncClient:
        """The connection pool of the running event loop (made on first use there).

        A pool belongs to the loop that opened its connections; a call from
        another loop (a new ``asyncio.run``, a forked child) gets a fresh pool.
        """
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is None or self._http_loop() is not loop:
            self._http = httpx.AsyncClient(
                timeout=self.timeout,
                verify=_tls(),
                limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
            )
            self._http_loop = weakref.ref(loop)
        return self._http

    async def send(self, call: Call) -> Any:
        """Send one call; the decoded JSON answer (None for none), or a typed
        TitanClientError (ServerUnavailable when nothing answers)."""
        response = await self._exchange(call)
        return response.json() if response.content else None

    async def _exchange(self, call: Call) -> httpx.Response:
        """Send one call; its successful answer (headers included), else as :meth:`send`."""
        try:
            response = await self._client().request(
                call.method,
                self.url + call.path,
                params=call.params,
                json=call.body,
                headers={**self.headers, **call.headers},
            )
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"no Titan server answers at {self.url} ({exc.__class__.__name__})"
            ) from exc
        raise_for_answer(response)
        return response

    async def download(self, call: Call, to: Path) -> int:
        """Stream a GET's body into the file ``to`` (written beside it, then renamed, so
        ``to`` is never half written); the number of bytes."""
        partial = to.with_name(f".{to.name}.part")
        try:
            async with self._client().stream(
                "GET", self.url + call.path, params=call.params, headers=self.headers
            ) as response:
                if response.is_error:
                    await response.aread()
                    raise_for_answer(response)
                written = 0
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
                        written += len(chunk)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise ServerUnavailable(
                f"no Titan server answers at {self.url} ({exc.__class__.__name__})"
            ) from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(to)
        return written

    async def send_json(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Send any API request (for operations without a method of their own);
        ``params`` left None are not sent."""
        kept = {k: v for k, v in (params or {}).items() if v is not None}
        return await self.send(Call(method, path, kept, body))

    async def healthy(self) -> bool:
        """True if a Titan server answers at the URL (within 2 seconds)."""
        try:
            response = await self._client().get(self.url + "/healthz", timeout=2)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        """Close the open connections; the next call opens new ones. No-op if none."""
        http, loop = self._http, self._http_loop
        self._http = self._http_loop = None
        # A pool of another loop cannot be closed from this one; it is only dropped.
        if http is not None and loop is not None and loop() is asyncio.get_running_loop():
            await http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
