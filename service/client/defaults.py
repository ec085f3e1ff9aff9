"""Where a client finds the server and its token when none is given.

In order: ``$TITAN_URL`` / ``$TITAN_TOKEN``; the login ``titan login`` saved
(``<config dir>/login.json``, 0600); the local server's records in its data
directory (``server.json``, ``admin-token``). A saved token is only ever
sent to the URL it was saved with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

DEFAULT_URL = "http://127.0.0.1:8686"


class Login(NamedTuple):
    """A server URL and the token to use there."""

    url: str
    token: str


def data_dir() -> Path:
    """``$TITAN_DATA_DIR``, else ``$XDG_DATA_HOME/titan``, else ``~/.local/share/titan``."""
    if os.environ.get("TITAN_DATA_DIR"):
        return Path(os.environ["TITAN_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "titan"


def config_dir() -> Path:
    """``$TITAN_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/titan``, else ``~/.config/titan``."""
    if os.environ.get("TITAN_CONFIG_DIR"):
        return Path(os.environ["TITAN_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "titan"


def login_file() -> Path:
    """Where ``titan login`` saves the URL and token."""
    return config_dir() / "login.json"


def saved_login() -> Login | None:
    """The saved login, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(login_file().read_text())
        return Login(str(data["url"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_login(login: Login) -> Path:
    """Save ``login`` readable by its owner only (0600, in a 0700 directory); its path."""
    path = login_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        json.dump({"url": login.url, "token": login.token}, stream)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_TRUNC
    return path


def forget_login() -> bool:
    """Remove the saved login; whether there was one."""
    try:
        login_file().unlink()
    except FileNotFoundError:
        return False
    return True


def server_url() -> str:
    """``$TITAN_URL``, else the saved login's, else the URL a local ``titan server``
    recorded, else the default."""
    if os.environ.get("TITAN_URL"):
        return os.environ["TITAN_URL"]
    login = saved_login()
    if login is not None:
        return login.url
    try:
        return str(json.loads((data_dir() / "server.json").read_text())["url"])
    except (OSError, ValueError, KeyError):
        return DEFAULT_URL


def token(url: str | None = None) -> str | None:
    """``$TITAN_TOKEN``, else the saved login's token when ``url`` (default: the URL
    in use) is the one it was saved for, else the local data directory's admin token."""
    if os.environ.get("TITAN_TOKEN"):
        return os.environ["TITAN_TOKEN"]
    login = saved_login()
    if login is not None and _same(login.url, url or server_url()):
        return login.token
    try:
        return (data_dir() / "admin-token").read_text().strip() or None
    except OSError:
        return None


def _same(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")
