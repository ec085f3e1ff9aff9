"""A folder of model versions: training publishes into it, serving reads the newest.

Layout, one sub-folder per version (names sort by time, oldest first)::

    MODEL_DIR/20261207T020013Z/model.json      the XGBoost model (JSON format)
    MODEL_DIR/20261207T020013Z/metadata.json   version, time, features, metric, training

A version is written under a hidden temporary name and renamed into place when
complete, so a reader never sees half a model: a folder without
``metadata.json`` is not a version. Removing a version's folder withdraws it.

The folder is given as the recipe names it (``"path": "/models"``): a container
sees it mounted there; the local backend, which cannot mount, puts a link named
after it (``models``) in the process's working folder, which :func:`shared_folder`
finds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_FILE = "model.json"
METADATA_FILE = "metadata.json"
_VERSION = re.compile(r"^\d{8}T\d{6}Z(-\d+)?\Z")


def shared_folder(path: str | Path) -> Path:
    """The folder ``path`` names: itself where it exists (mounted, or a plain path), else
    the link named after it in the working folder (local backend), else ``path`` as given."""
    given = Path(path)
    if given.is_dir() or not given.is_absolute():
        return given
    link = Path.cwd() / given.name
    return link if link.is_dir() else given


@dataclass(frozen=True)
class ModelVersion:
    """One published model: its version name and folder."""

    name: str
    folder: Path

    @property
    def model_file(self) -> Path:
        """The XGBoost model file."""
        return self.folder / MODEL_FILE

    def metadata(self) -> dict[str, Any]:
        """The version's ``metadata.json`` (OSError or ValueError if unreadable)."""
        loaded = json.loads((self.folder / METADATA_FILE).read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{self.folder / METADATA_FILE} is not a JSON object")
        return loaded


def versions(folder: Path) -> list[ModelVersion]:
    """The complete versions in ``folder``, oldest first; none if it does not exist."""
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [
        ModelVersion(entry.name, entry)
        for entry in entries
        if _VERSION.match(entry.name) and (entry / METADATA_FILE).is_file()
    ]
    return sorted(found, key=lambda v: _sort_key(v.name))


def newest_version(folder: Path) -> ModelVersion | None:
    """The newest complete version in ``folder``, or None."""
    found = versions(folder)
    return found[-1] if found else None


def find_version(folder: Path, name: str) -> ModelVersion | None:
    """The complete version called ``name`` in ``folder``, or None."""
    return next((v for v in versions(folder) if v.name == name), None)


def publish(booster: Any, metadata: dict[str, Any], folder: Path) -> ModelVersion:
    """Write ``booster`` and ``metadata`` as a new version in ``folder`` (made if missing);
    the version. ``metadata`` gains ``version``, ``created_at`` and ``model_file``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
    try:
        staging.chmod(0o755)  # the serving app may run as another account of the group
        booster.save_model(str(staging / MODEL_FILE))
        for attempt in range(1, 1000):
            name = base if attempt == 1 else f"{base}-{attempt}"
            described = {
                **metadata,
                "version": name,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "model_file": MODEL_FILE,
            }
            (staging / METADATA_FILE).write_text(json.dumps(described, indent=1) + "\n")
            try:
                os.rename(staging, folder / name)  # fails if that version exists
            except OSError:
                if (folder / name).exists():
                    continue
                raise
            return ModelVersion(name, folder / name)
        raise RuntimeError(f"too many versions published at {base} in {folder}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sort_key(name: str) -> tuple[str, int]:
    stamp, _, again = name.partition("-")
    return stamp, int(again or 1)
