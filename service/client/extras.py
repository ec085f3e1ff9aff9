"""The clear error where a feature needs an extra that is not installed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# The top-level packages of the dask extra.
DASK = ("dask", "distributed", "tornado")


@contextlib.contextmanager
def needs(what: str, extra: str, packages: tuple[str, ...] | None = None) -> Iterator[None]:
    """Run the block's imports; an ImportError of one of ``packages`` (None: of any)
    becomes one saying that ``what`` needs ``pip install 'titan[EXTRA]'``."""
    try:
        yield
    except ImportError as exc:
        if packages is not None and (exc.name or "").partition(".")[0] not in packages:
            raise
        raise ImportError(
            f"{what} needs {exc.name or 'a package'} in this Python: "
            f"install it with pip install 'titan[{extra}]'",
            name=exc.name,
        ) from exc
