"""A job's outputs, listed and read for remote users without trusting what the job wrote.

A job writes its results to ``<outputs_dir>/<owner>/<type>/<name>`` as its owner's account
(or as root inside a container). Anything in that folder may be a trap: a symlink or a
hard link to the control plane's token, a FIFO that blocks a reader, a device node.
So every path is walked one component at a time from a descriptor of ``outputs_dir``
(``O_NOFOLLOW``, never a path string re-resolved later), and only regular files with a
single link are listed or served. Promises: nothing outside the job's own folder is ever
read, a request never blocks on a special file, and a bad path names the field and why.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.errors import InvalidInput, NotFound

CHUNK = 1 << 16
MOST_FILES = 10_000  # a listing stops here and says it was cut
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def outputs_folder(
    outputs_dir: Path, owner: str, type: str, name: str, run: int | None = None
) -> Path:
    """Where the resource's processes write results (``$TITAN_OUTPUT_DIR``): a job's
    run ``run`` in ``runs/<run>`` of its folder, so every run keeps its own."""
    return outputs_dir.joinpath(*where(owner, type, name, run))


def where(owner: str, type: str, name: str, run: int | None = None) -> list[str]:
    """The folder names from the outputs folder to a resource's (or its run's) outputs."""
    return [owner, type, name, *(["runs", str(run)] if run is not None else [])]


def parts_of(path: str) -> list[str]:
    """``path`` as folder names and a file name; refuses what could leave the folder."""
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\x00" in part or len(part.encode("utf-8", "replace")) > 255:
            raise InvalidInput(
                f"path: {path[:200]!r} is not a file inside the job's outputs; "
                "give a relative path such as 'model.json' or 'plots/loss.png' "
                "(no empty, '.', '..' or NUL parts), as 'titan outputs' lists them"
            )
    return parts


@contextmanager
def _folder(outputs_dir: Path, parts: list[str], missing: str) -> Iterator[int]:
    """A descriptor of ``outputs_dir/parts...``, each step refusing a symlink."""
    fd = os.open(outputs_dir, _DIR)
    try:
        for part in parts:
            try:
                inner = os.open(part, _DIR, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError, OSError) as error:
                raise NotFound(missing) from error
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def _is_plain_file(info: os.stat_result) -> bool:
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1


def list_outputs(
    outputs_dir: Path, owner: str, type: str, name: str, run: int | None = None
) -> dict[str, Any]:
    """``{"files": [{"path", "size", "modified"}], "skipped": [...], "truncated": bool}``:
    the regular files under the job's folder, sorted by path (none before it first ran);
    symlinks, hard links and special files are named under ``skipped``, never followed."""
    files: list[dict[str, Any]] = []
    skipped: list[str] = []
    try:
        with _folder(outputs_dir, where(owner, type, name, run), "no folder yet") as root:
            for folder, dirs, names, dir_fd in os.fwalk(".", dir_fd=root, follow_symlinks=False):
                dirs.sort()
                for entry in sorted(names):
                    relative = os.path.normpath(os.path.join(folder, entry))
                    info = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
                    if not _is_plain_file(info):
                        skipped.append(relative)
                    elif len(files) == MOST_FILES:
                        return {"files": files, "skipped": skipped, "truncated": True}
                    else:
                        modified = datetime.fromtimestamp(info.st_mtime, UTC).isoformat()
                        files.append({"path": relative, "size": info.st_size, "modified": modified})
    except NotFound:
        pass
    return {"files": files, "skipped": skipped, "truncated": False}


def open_output(
    outputs_dir: Path, owner: str, type: str, name: str, path: str, run: int | None = None
) -> tuple[int, int]:
    """``(descriptor, size)`` of one regular file of the job's (run's) outputs; the caller
    closes it. NotFound for anything that is not a plain file there (a symlink, a link, a
    FIFO)."""
    parts = parts_of(path)
    which = f" (run {run})" if run is not None else ""
    missing = f"{type}/{name}{which} has no output file {path[:200]!r}; 'titan outputs' lists them"
    with _folder(outputs_dir, [*where(owner, type, name, run), *parts[:-1]], missing) as folder:
        try:
            before = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
        except OSError as error:
            raise NotFound(missing) from error
        if not _is_plain_file(before):
            raise NotFound(missing + " (only regular files are served, never links)")
        try:
            fd = os.open(parts[-1], _FILE, dir_fd=folder)
        except OSError as error:
            raise NotFound(missing) from error
    after = os.fstat(fd)
    if not _is_plain_file(after) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise NotFound(missing + " (it changed while being opened)")
    return fd, after.st_size


def read_chunks(fd: int) -> Iterator[bytes]:
    """The file's bytes in chunks; closes ``fd`` at the end or when abandoned."""
    try:
        os.set_blocking(fd, True)
        while chunk := os.read(fd, CHUNK):
            yield chunk
    finally:
        os.close(fd)
