"""The control plane's data directory is its own: nobody else lists or reads it.

``<data_dir>`` (0700) holds the store, the keys, the admin token and process
logs. What user processes need to reach lives under ``users_dir`` instead
(see :class:`~service.backends.local.LocalBackend`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from service.config import Settings


def make_private(settings: Settings, shares_host: bool) -> None:
    """Make ``data_dir`` 0700 and what lies directly in it 0700 (folders) or 0600 (files).

    Where processes run beside the control plane as other OS accounts
    (``shares_host`` and ``TITAN_OS_ACCOUNTS``), also check that ``users_dir``
    is outside ``data_dir`` and reachable by them; ValueError saying what to set if not.
    """
    data = settings.data_dir
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    data.chmod(0o700)
    for entry in data.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISDIR(mode):
            entry.chmod(0o700)
        elif stat.S_ISREG(mode):
            entry.chmod(0o600)
    if shares_host and settings.os_accounts:
        check_reachable(settings.user_root, data)


def check_reachable(users: Path, data: Path) -> None:
    """ValueError unless processes of other accounts can pass into ``users``."""
    users = users.resolve()
    if users.is_relative_to(data.resolve()):
        raise ValueError(
            f"TITAN_USERS_DIR ({users}) lies inside the private data directory {data}: "
            "set it to a folder outside it, e.g. /srv/titan-users"
        )
    users.mkdir(parents=True, exist_ok=True)
    users.chmod(0o711)
    for level in users.parents:
        if not os.stat(level).st_mode & stat.S_IXOTH:
            raise ValueError(
                f"TITAN_USERS_DIR ({users}): the accounts of TITAN_OS_ACCOUNTS cannot pass "
                f"through {level} (mode {stat.filemode(os.stat(level).st_mode)}); choose a "
                "folder they can reach, e.g. /srv/titan-users, or `chmod o+x` it"
            )
