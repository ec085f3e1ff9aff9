"""The sync face of an async client: its coroutines, run on a private event loop.

The loop runs in one daemon thread per process (started on first use, again
in a forked child), so a blocking call works anywhere, also where an event
loop already runs (a Jupyter cell), and the async client's connections stay
open between calls.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class ClientLoop:
    """The event loop that runs the sync faces' coroutines, in a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="titan-client-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        """Run ``coroutine`` on the loop and return its result (or raise its exception).

        An interrupt (Ctrl-C) while waiting cancels the coroutine. RuntimeError if
        called from the loop's own thread (a callback such as ``wait``'s
        ``on_change`` calling the sync client): that would wait on itself.
        """
        loop = self._running()
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError(
                "a sync Hub method was called from the client's own event loop (a callback "
                "such as wait's on_change): use the AsyncHub there"
            )
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close_soon(self, closing: Coroutine[Any, Any, None]) -> None:
        """Start ``closing`` on the loop without waiting (for finalizers); where the loop
        is gone (another process, interpreter exit) it is dropped."""
        loop = self._loop
        if loop is None or self._pid != os.getpid() or loop.is_closed():
            closing.close()
            return
        try:
            asyncio.run_coroutine_threadsafe(closing, loop)
        except RuntimeError:  # the loop stopped meanwhile
            closing.close()


LOOP = ClientLoop()


def blocking(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Any, P], R]:
    """The sync form of an async client's ``method``: same name, parameters and
    docstring; it runs the coroutine on :data:`LOOP` with the face's ``_async`` client."""

    @functools.wraps(method)
    def run(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return LOOP.run(method(self._async, *args, **kwargs))

    return run
