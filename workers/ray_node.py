"""Run one Ray node: ``python -m workers.ray_node RAY-START-ARGS...``.

Runs ``ray start --block`` with the arguments given, except that the address
``127.0.0.1`` (of the node, or of its head in ``--address``) becomes
``127.0.0.2``: Ray replaces the first by the machine's own network address
(and then serves there), while any other loopback address is kept, so a
cluster on one machine stays on loopback. Its
``TMPDIR`` becomes the node's ``--temp-dir``: Ray's processes put Unix
sockets there, whose paths must stay short.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

LOOPBACK = "127.0.0.1"
RAY_LOOPBACK = "127.0.0.2"


def ray_start_args(args: Sequence[str]) -> list[str]:
    """``args`` with ``127.0.0.1`` node and head addresses made ones Ray keeps."""
    result = list(args)
    for index, arg in enumerate(result[:-1]):
        value = result[index + 1]
        if arg == "--node-ip-address" and value == LOOPBACK:
            result[index + 1] = RAY_LOOPBACK
        elif arg == "--address" and value.startswith(LOOPBACK + ":"):
            result[index + 1] = RAY_LOOPBACK + value[len(LOOPBACK) :]
    return result


def main() -> None:
    """Become ``ray start`` (same process: signals reach it directly)."""
    args = ray_start_args(sys.argv[1:])
    if "--temp-dir" in args[:-1]:
        os.environ["TMPDIR"] = args[args.index("--temp-dir") + 1]
    os.execv(sys.executable, [sys.executable, "-m", "ray.scripts.scripts", "start", *args])


if __name__ == "__main__":
    main()
