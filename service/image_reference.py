"""Image references (``name[:tag][@digest]``), shared by the client and the server.

Pure: it imports nothing beyond the standard library, so the client and the
CLI can use it without the server's dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """An image reference split into name, tag and digest."""

    name: str
    tag: str
    digest: str | None

    @classmethod
    def parse(cls, reference: str) -> Reference:
        """``name[:tag][@digest]``; the tag defaults to ``latest`` (a ``:port`` in the
        registry part is no tag)."""
        rest, _, digest = reference.partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            return cls(rest[:colon], rest[colon + 1 :], digest or None)
        return cls(rest, "latest", digest or None)
