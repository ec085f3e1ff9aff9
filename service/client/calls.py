"""One HTTP request of the API as data, so the sync and async clients only send it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

API = "/api/v1"


@dataclass(frozen=True)
class Call:
    """One HTTP request of the API."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
