"""Small ASGI helpers shared by Titan's middleware."""

from __future__ import annotations

from starlette.types import Message, Send


class StatusWatch:
    """Wraps ``send`` and remembers the response status (500 until one is sent)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self.send(message)
