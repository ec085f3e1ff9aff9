"""When each output line began: the entrypoint records it beside the output.

``record_line_times(path)`` sends this process's standard output and error
(and so its children's, which inherit them) through a pipe. A thread copies
every byte to the original output unchanged, as soon as it arrives (partial
lines and ``\\r`` progress bars too), and appends ``"<byte offset> <epoch
seconds>\\n"`` to ``path`` for each line as its first byte arrives. The
offsets count bytes of the output file, so a reader of a slice of the output
knows each line's time (``service/backends/log_times.py``). The output itself
is never altered.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import IO


def record_line_times(path: str) -> Callable[[], None]:
    """Start recording; returns the function that stops it (call it last: it flushes
    and puts the original output back). Where ``path`` cannot be opened nothing changes
    and the returned function does nothing."""
    try:
        times = open(path, "a", buffering=1)  # noqa: SIM115 (the relay thread owns it)
    except OSError:
        return lambda: None
    sys.stdout.flush()
    sys.stderr.flush()
    output = os.dup(1)
    info = os.fstat(output)
    start = info.st_size if stat.S_ISREG(info.st_mode) else 0  # appended after what is there
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    relay = threading.Thread(
        target=_relay, args=(read_end, output, times, start), daemon=True, name="line-times"
    )
    relay.start()

    def stop() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(output, 1)  # closes our ends of the pipe: the relay sees its end
        os.dup2(output, 2)
        relay.join(timeout=5)  # a child left running may still hold the pipe open

    return stop


def _relay(read_end: int, output: int, times: IO[str], offset: int) -> None:
    line_starts = True
    while chunk := os.read(read_end, 65536):
        now = time.time()
        at = 0
        while at < len(chunk):
            if line_starts:
                with contextlib.suppress(OSError):  # times are a nicety; output is not
                    times.write(f"{offset + at} {now:.6f}\n")
            end = chunk.find(b"\n", at)
            line_starts = end >= 0
            at = len(chunk) if end < 0 else end + 1
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(output, view) :]
        except OSError:  # output gone: keep draining, so no writer blocks on a full pipe
            pass
        offset += len(chunk)
    os.close(read_end)
    times.close()
