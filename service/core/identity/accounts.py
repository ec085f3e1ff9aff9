"""Which OS account runs a resource's processes where many people share a host.

A process of the local backend runs on the control plane's own machine, and a
Slurm job on a node sharing its filesystem. Run as the control plane's account
it could read the control plane's files (the store, keys, the admin token), so
it runs as the OS account the operator maps its person to
(``TITAN_OS_ACCOUNTS``); on Slurm that also makes fair-share and accounting
per person. The person is the resource's owner, or,
for a group's resource, the group's own entry or else whoever applied it.
Without an entry only admins' resources run, as the control plane's account.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.database.models import User
from service.errors import Forbidden

SETTING = "TITAN_OS_ACCOUNTS"


@dataclass(frozen=True)
class Account:
    """An OS account processes run as: its name and ids."""

    name: str
    uid: int
    gid: int
    home: str


def lookup(name: str) -> Account:
    """The OS account ``name``; Forbidden if it does not exist here or could read the
    control plane's files (root, or the control plane's own account)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise Forbidden(
            f"the OS account {name!r} that {SETTING} names does not exist on this machine; "
            "an operator creates it (useradd) or changes the mapping"
        ) from None
    if entry.pw_uid in (0, os.geteuid()):
        raise Forbidden(
            f"{SETTING} maps to {name!r}, an account that can read the control plane's files; "
            "map people to accounts of their own"
        )
    return Account(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def account_name(mapping: Mapping[str, str], *names: str) -> str | None:
    """The mapped account of the first of ``names`` with an entry, else of the last name
    through ``'*'``; None if nothing maps."""
    for name in names:
        if name in mapping:
            return mapping[name]
    if "*" in mapping and names:
        return mapping["*"].replace("{name}", names[-1])
    return None


def run_as(session: Session, mapping: Mapping[str, str], owner: str, created_by: str) -> str | None:
    """The OS account processes of ``owner``'s resource run as, or None for the control
    plane's own account (admins only). Forbidden, saying what to configure, otherwise."""
    user_owned = session.scalar(select(User).where(User.name == owner)) is not None
    person = owner if user_owned else (created_by or owner)
    names = (owner,) if user_owned else (owner, person)
    name = account_name(mapping, *names)
    if name is not None:
        return lookup(name).name
    admin = session.scalar(select(User.is_admin).where(User.name == person))
    if admin:
        return None
    raise Forbidden(
        f"processes of {person!r} would run as the control plane's own OS account, which can "
        f"read every user's secrets, so this server runs only admins' resources on its "
        f"hosts until an operator maps {person!r} to an OS account of their own: "
        f'{SETTING}=\'{{"{person}": "<account>"}}\' (or \'{{"*": "{{name}}"}}\' for accounts '
        "named like Titan users); or use the docker backend"
    )
