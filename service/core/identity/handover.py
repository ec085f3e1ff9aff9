"""What becomes of what a deleted user owns.

Nothing may stay owned by a name that no longer exists: a later user of that
name would inherit it. So deleting a user who owns resources, secrets,
images or folders is refused, unless the admin names another user or group
to hand them all to. Handed-over resources are stopped (their processes ran
as, and with the tokens of, the old owner); the new owner starts them.
Folders move with their files (``<data_dir>/folders/<owner>/<name>``).
Resources of groups that the deleted user applied keep running: their
creator, and the user of their processes' tokens, becomes the new owner
(a user) or else the admin who deleted them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.config import Settings
from service.core.control.state import Target
from service.core.identity.access import owner_exists
from service.core.sharing.folders import folder_path
from service.database.models import Folder, Image, Resource, Secret, Token, User, utcnow
from service.errors import Conflict, InvalidInput

log = logging.getLogger(__name__)
OWNED: tuple[tuple[Any, str], ...] = (
    (Resource, "resources"),
    (Secret, "secrets"),
    (Image, "images"),
    (Folder, "folders"),
)
# The columns that name one thing of an owner (its unique key without the owner).
KEYS: dict[Any, tuple[str, ...]] = {
    Resource: ("type", "name"),
    Secret: ("name",),
    Image: ("name", "tag"),
    Folder: ("name",),
}


@dataclass
class Handover:
    """What was handed to ``to`` (None: nothing, the user owned nothing)."""

    to: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)  # ids of resources stopped for it

    def view(self) -> dict[str, Any]:
        """How the API reports it."""
        return {"transferred_to": self.to, **self.counts}


def owned(session: Session, name: str) -> dict[str, int]:
    """How many resources (not being deleted), secrets, images and folders ``name`` owns."""
    counts = {}
    for table, noun in OWNED:
        query = select(func.count()).where(table.owner == name)
        if table is Resource:
            query = query.where(Resource.target != Target.DELETED)
        counts[noun] = session.scalar(query) or 0
    return counts


def hand_over(
    session: Session, settings: Settings, user: User, to: str | None, admin: str
) -> Handover:
    """Give everything ``user`` owns to ``to`` and re-home the group resources they
    applied; Conflict if they own things and ``to`` is None, or ``to`` has things of
    the same names. Runs inside the caller's transaction (folders move last)."""
    counts = owned(session, user.name)
    if to is None:
        if any(counts.values()):
            held = ", ".join(
                f"{n} {noun[: -1 if n == 1 else None]}" for noun, n in counts.items() if n
            )
            raise Conflict(
                f"user {user.name!r} still owns {held}: pass transfer_to=NAME "
                f"(`titan user delete {user.name} --transfer-to NAME`) to hand them to "
                "another user or group, or delete them first",
                counts,
            )
        _rehome_applied(session, user, admin)
        return Handover()
    heir = _heir(session, user, to)
    _check_clashes(session, settings, user.name, to)
    _rehome_applied(session, user, heir.name if heir is not None else admin)
    reason = f"handed from {user.name!r} to {to!r} when {user.name!r} was deleted; start it again"
    folders = list(session.scalars(select(Folder.name).where(Folder.owner == user.name)))
    resources = session.scalars(select(Resource).where(Resource.owner == user.name)).all()
    stopped = []
    for resource in resources:
        resource.owner = to
        if resource.target == Target.RUNNING:
            resource.target = Target.STOPPED
            resource.target_reason = reason
            resource.next_attempt_at = None
            resource.updated_at = utcnow()
            stopped.append(resource.id)
    for table, _ in OWNED[1:]:
        session.execute(update(table).where(table.owner == user.name).values(owner=to))
    session.flush()
    _move_folders(settings, folders, user.name, to)
    return Handover(to, counts, stopped)


def _heir(session: Session, user: User, to: str) -> User | None:
    """The user ``to`` (None when it is a group); InvalidInput if it cannot inherit."""
    if to == user.name:
        raise InvalidInput("transfer_to: name another user or group than the one deleted")
    if not owner_exists(session, to):
        raise InvalidInput(f"transfer_to: no user or group named {to!r}")
    heir = session.scalar(select(User).where(User.name == to))
    if heir is not None and heir.disabled:
        raise InvalidInput(f"transfer_to: user {to!r} is disabled; enable them or name another")
    return heir


def _check_clashes(session: Session, settings: Settings, name: str, to: str) -> None:
    """Conflict naming every thing of ``name`` that ``to`` has one of the same name of."""
    clashes = []
    for table, noun in OWNED:
        columns = [getattr(table, key) for key in KEYS[table]]
        mine = set(session.execute(select(*columns).where(table.owner == name)).tuples())
        theirs = set(session.execute(select(*columns).where(table.owner == to)).tuples())
        clashes += [f"{noun[:-1]} {'/'.join(map(str, key))}" for key in sorted(mine & theirs)]
    for (folder,) in session.execute(select(Folder.name).where(Folder.owner == name)).tuples():
        if folder_path(settings, to, folder).exists() and f"folder {folder}" not in clashes:
            clashes.append(f"folder {folder} (its directory exists for {to!r})")
    if clashes:
        raise Conflict(
            f"transfer_to: {to!r} already has {', '.join(clashes)}; rename or delete those first",
            clashes,
        )


def _rehome_applied(session: Session, user: User, creator: str) -> None:
    """Group resources ``user`` applied get ``creator`` as creator, and their processes'
    tokens (made for the applying user) are moved to that user, so they keep working."""
    heir = session.scalar(select(User).where(User.name == creator))
    applied = select(Resource.id).where(
        Resource.created_by == user.name, Resource.owner != user.name
    )
    if heir is not None:
        session.execute(
            update(Token)
            .where(Token.user_id == user.id, Token.resource_id.in_(applied))
            .values(user_id=heir.id)
        )
    session.execute(
        update(Resource).where(Resource.created_by == user.name).values(created_by=creator)
    )


def _move_folders(settings: Settings, folders: list[str], name: str, to: str) -> None:
    """Move the directories of ``folders`` (checked free at ``to``) from ``name`` to ``to``."""
    for folder in folders:
        source = folder_path(settings, name, folder)
        if source.exists():
            target = folder_path(settings, to, folder)
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            source.rename(target)
            log.info("moved folder %s from %s to %s", folder, name, to)
