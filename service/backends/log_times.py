"""Reading a process's output for ``GET .../logs``, the same for every backend: from an
offset, its last lines, the lines since a time, each with its time if asked.

Times come from :meth:`Backend.line_times`: the marks the entrypoint records
beside the output (workers/line_times.py) or the engine's own. A line with no
recorded time (output written before times were recorded) counts as older
than any ``since`` and shows ``-`` for its time.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.backends.base import Backend, Handle, LogChunk, handle_identity

END = 2**62  # an offset past any output: "nothing yet"


async def read_process_log(
    backend: Backend,
    handle: Handle,
    tail: int | None = None,
    offset: int = 0,
    since: float | None = None,
    timestamps: bool = False,
) -> dict[str, Any]:
    """``{"text", "offset", "run"}``: the output from byte ``offset`` on (or its last
    ``tail`` lines), only lines that began at or after ``since`` (epoch seconds), each
    prefixed with its UTC time and a space if ``timestamps``. ``offset`` is where to read
    next; ``run`` names this start of the process (it changes when it restarts, and
    offsets start again)."""
    marks = await backend.line_times(handle) if since is not None or timestamps else []
    if since is not None:
        offset = max(offset, first_line_since(marks, since))
        chunk = await backend.logs(handle, offset=offset)
        if tail is not None:
            chunk = last_lines(chunk.text.encode(), tail, chunk.next_offset)
    else:
        chunk = await backend.logs(handle, tail=tail, offset=offset)
    text = with_times(chunk, marks) if timestamps else chunk.text
    return {"text": text, "offset": chunk.next_offset, "run": run_of(handle)}


def run_of(handle: Handle) -> str:
    """A short name for this start of a process (never the handle's paths or ids)."""
    identity = [*handle_identity(handle), handle.get("create_time"), handle.get("dir")]
    return hashlib.sha256(json.dumps(identity, default=str).encode()).hexdigest()[:12]


def first_line_since(marks: list[tuple[int, float]], since: float) -> int:
    """The offset of the first line that began at or after ``since`` (``END`` if none)."""
    for offset, when in marks:
        if when >= since:
            return offset
    return END


def with_times(chunk: LogChunk, marks: list[tuple[int, float]]) -> str:
    """``chunk``'s lines, each prefixed with the UTC time it began (``-`` if unknown)."""
    offsets = [offset for offset, _ in marks]
    out, at = [], chunk.start
    for line in chunk.text.splitlines(keepends=True):
        found = bisect.bisect_right(offsets, at) - 1 if at is not None else -1
        out.append(f"{_iso(marks[found][1]) if found >= 0 else '-'} {line}")
        if at is not None:
            at += len(line.encode())
    return "".join(out)


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def last_lines(data: bytes, tail: int, size: int) -> LogChunk:
    """The last ``tail`` lines of ``data``, the output's bytes up to ``size``."""
    lines = data.splitlines(keepends=True)[-tail:]
    kept = b"".join(lines)
    text = kept.decode(errors="replace")
    if lines and not text.endswith(("\n", "\r")):
        text += "\n"  # a line still being written ends here too
    return LogChunk(text, size, size - len(kept))


def read_line_times(path: Path) -> list[tuple[int, float]]:
    """The ``(byte offset, epoch seconds)`` marks in ``path`` (see workers/line_times.py),
    in offset order; empty without the file. A torn last mark is skipped."""
    marks: list[tuple[int, float]] = []
    try:
        text = path.read_text()
    except OSError:
        return marks
    for row in text.splitlines():
        offset, _, when = row.partition(" ")
        with contextlib.suppress(ValueError):
            marks.append((int(offset), float(when)))
    return marks
