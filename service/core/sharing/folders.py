"""Shared folders: named, owned by a user or group, mounted into resources at a path.

A folder is a directory ``<data_dir>/folders/<owner>/<name>`` on the node.
The local backend hands it to processes as ``$TITAN_FOLDER_<NAME>`` (and a
link in the process's working folder); the docker backend mounts it as a
named volume bound to that directory, read-only when the recipe asks.

Who may mount a folder: a caller who may see its owner (the owner, group
members, admins); a group's resource mounts only the group's folders, since
every member of the group can reach what its resources mount.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.backends.base import FolderMount
from service.config import Settings
from service.core.identity.access import (
    Principal,
    check_attachable,
    check_change,
    require_user,
    resolve_owner,
    visible,
)
from service.database.models import Folder
from service.errors import Conflict, InvalidInput, NotFound
from service.recipes.models import DNS_LABEL, FolderRef


class FolderService:
    """Create, list and delete shared folders."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    def create(self, principal: Principal, name: str, owner: str | None) -> dict[str, Any]:
        """A new, empty folder of ``owner`` (default: the caller)."""
        if not DNS_LABEL.match(name):
            raise InvalidInput("name: must be a DNS label (a-z, 0-9, '-'; 1-63 characters)")
        with self.sessions.begin() as session:
            owner = resolve_owner(session, principal, owner)
            if _find(session, owner, name) is not None:
                raise Conflict(f"folder {name!r} of owner {owner!r} exists already")
            folder = Folder(owner=owner, name=name)
            session.add(folder)
            session.flush()
            ensure_folder(self.settings, owner, name)
            return self._view(folder)

    def list_visible(self, principal: Principal) -> list[dict[str, Any]]:
        """The folders the caller may mount."""
        require_user(principal)
        query = select(Folder).where(*visible(principal, Folder.owner))
        with self.sessions() as session:
            rows = session.scalars(query.order_by(Folder.owner, Folder.name))
            return [self._view(row) for row in rows]

    def delete(self, principal: Principal, name: str, owner: str | None) -> None:
        """Forget a folder. Its files stay on the node until an operator removes them
        (``<data_dir>/folders/<owner>/<name>``): deleting a name never deletes data."""
        owner = owner or principal.user_name
        with self.sessions.begin() as session:
            check_change(principal, owner, f"folder {name!r} of owner {owner!r}")
            folder = _find(session, owner, name)
            if folder is None:
                raise NotFound(f"folder {name!r} of owner {owner!r} not found")
            session.delete(folder)

    def _view(self, folder: Folder) -> dict[str, Any]:
        return {
            "owner": folder.owner,
            "name": folder.name,
            "created_at": folder.created_at.isoformat(),
        }


def ensure_folder(settings: Settings, owner: str, name: str) -> Path:
    """The folder's directory on the node, made if missing. The folders above it are
    private (0700); the folder itself is open (0777) so a container's user, whatever
    its uid, can write to it."""
    folder = folder_path(settings, owner, name)
    settings.folders_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.parent.mkdir(mode=0o700, exist_ok=True)
    folder.mkdir(exist_ok=True)
    folder.chmod(0o777)
    return folder


def folder_path(settings: Settings, owner: str, name: str) -> Path:
    """Where a folder lives on the node: ``<data_dir>/folders/<owner>/<name>``."""
    return settings.folders_dir / owner / name


def check_folders(
    session: Session, principal: Principal, owner: str, refs: Sequence[FolderRef]
) -> None:
    """InvalidInput unless a resource of ``owner`` applied by the caller may mount ``refs``."""
    for index, ref in enumerate(refs):
        folder_owner = ref.owner or owner
        found = _find(session, folder_owner, ref.name) is not None
        what = f"folder {ref.name!r}"
        check_attachable(principal, owner, folder_owner, found, f"spec.folders[{index}]", what)


def mounts(settings: Settings, owner: str, refs: Sequence[dict[str, Any]]) -> list[FolderMount]:
    """What a process of a resource of ``owner`` mounts for the recipe's ``refs`` (pure:
    ``ensure_mounted`` makes the folders)."""
    found = []
    for ref in refs:
        folder_owner = ref.get("owner") or owner
        host = folder_path(settings, folder_owner, ref["name"])
        found.append(
            FolderMount(folder_owner, ref["name"], str(host), ref["path"], ref["read_only"])
        )
    return found


def ensure_mounted(settings: Settings, owner: str, refs: Sequence[dict[str, Any]]) -> None:
    """Make the folders ``refs`` name if an operator removed them (file I/O: not on the
    event loop)."""
    for mount in mounts(settings, owner, refs):
        ensure_folder(settings, mount.owner, mount.name)


def _find(session: Session, owner: str, name: str) -> Folder | None:
    return session.scalar(select(Folder).where(Folder.owner == owner, Folder.name == name))
