"""Where a client finds the server and its token when none is given."""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8686"


def data_dir() -> Path:
    """``$TITAN_DATA_DIR``, else ``$XDG_DATA_HOME/titan``, else ``~/.local/share/titan``."""
    if os.environ.get("TITAN_DATA_DIR"):
        return Path(os.environ["TITAN_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "titan"


def server_url() -> str:
    """``$TITAN_URL``, else the URL a local ``titan server`` recorded, else the default."""
    if os.environ.get("TITAN_URL"):
        return os.environ["TITAN_URL"]
    try:
        return str(json.loads((data_dir() / "server.json").read_text())["url"])
    except (OSError, ValueError, KeyError):
        return DEFAULT_URL


def token() -> str | None:
    """``$TITAN_TOKEN``, else the admin token file of the local data directory."""
    if os.environ.get("TITAN_TOKEN"):
        return os.environ["TITAN_TOKEN"]
    try:
        return (data_dir() / "admin-token").read_text().strip() or None
    except OSError:
        return None
