"""A caller sending requests through a deployment's front door without pause (the load
under which rolling updates and rollbacks must fail no request)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import httpx

# One request, the n-th (from 1), sent with the caller's client.
Send = Callable[[httpx.Client, int], httpx.Response]


class SteadyLoad:
    """While entered, a thread sends request after request with ``send`` (``pause``
    seconds apart) and counts the answers by the version ``version_of`` reads from each
    200; every other answer (or none) is kept in ``failures``."""

    def __init__(
        self,
        url: str,
        token: str,
        send: Send,
        version_of: Callable[[httpx.Response], str],
        pause: float = 0.0,
    ) -> None:
        self.url, self.token = url, token
        self.send, self.version_of, self.pause = send, version_of, pause
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)

    def answered(self) -> int:
        """How many requests have been answered with a 200 so far."""
        return sum(self.versions.values())

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            count = 0
            while not self.stopping.is_set():
                count += 1
                try:
                    answer = self.send(client, count)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code}: {answer.text[:300]}")
                else:
                    self.versions[self.version_of(answer)] += 1
                self.stopping.wait(self.pause)
