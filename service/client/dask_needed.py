"""The clear error where a client feature needs Dask's ``distributed`` and it is missing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

INSTALL = "pip install 'titan[dask]'"


@contextlib.contextmanager
def needs_distributed(what: str) -> Iterator[None]:
    """Run the block's imports; an ImportError of Dask becomes one saying ``what`` needs
    it and how to install it."""
    try:
        yield
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in ("dask", "distributed"):
            raise
        raise ImportError(
            f"{what} needs Dask's distributed in this Python: install it with {INSTALL}",
            name=exc.name,
        ) from exc
