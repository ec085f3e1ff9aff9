"""Run one Ray node: ``python -m workers.ray_node RAY-START-ARGS...``.

Runs ``ray start --block`` with the arguments given, except that a node
address of ``127.0.0.1`` becomes ``127.0.0.2``: Ray replaces the first by the
machine's own network address (and then serves there), while any other
loopback address is kept, so a node on one machine stays on loopback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

LOOPBACK = "127.0.0.1"
RAY_LOOPBACK = "127.0.0.2"


def ray_start_args(args: Sequence[str]) -> list[str]:
    """``args`` with a ``127.0.0.1`` node address made one Ray keeps."""
    result = list(args)
    for index, arg in enumerate(result[:-1]):
        if arg == "--node-ip-address" and result[index + 1] == LOOPBACK:
            result[index + 1] = RAY_LOOPBACK
    return result


def main() -> None:
    """Become ``ray start`` (same process: signals reach it directly)."""
    argv = [sys.executable, "-m", "ray.scripts.scripts", "start", *ray_start_args(sys.argv[1:])]
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    main()
