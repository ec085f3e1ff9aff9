"""Registered images: the container images recipes may run on the shared hosts.

An image is registered by name and tag (``nvcr.io/nvidia/pytorch`` and
``24.01-py3``) with an owner, optionally a digest, and optionally public
(admins only: everyone may use it). A recipe's ``spec.image`` must name an
image its caller may see — their own, their groups', or a public one —
unless the operator sets ``TITAN_ALLOW_ANY_IMAGE``. The images Titan uses by
default (``TITAN_DOCKER_IMAGE``, ``TITAN_DOCKER_GPU_IMAGE``) are always
allowed. A reference with ``@sha256:...`` must match the registered digest.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.core.identity.access import (
    Principal,
    check_change,
    may_see,
    require_user,
    resolve_owner,
    visible,
)
from service.database.models import Image
from service.errors import Conflict, InvalidInput, NotFound
from service.image_reference import Reference

# \Z, not $: "$" also matches before a final newline, and "v1\n" is no tag.
_NAME = re.compile(r"^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*\Z")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")


class ImageService:
    """Register, list and remove images; check what recipes name."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    def register(
        self,
        principal: Principal,
        name: str,
        tag: str,
        owner: str | None,
        digest: str | None,
        public: bool,
    ) -> dict[str, Any]:
        """Allow recipes of the owner (and its members; everyone if public) to use an image."""
        if not _NAME.match(name) or len(name) > 255:
            raise InvalidInput("name: must be an image name such as 'nvcr.io/nvidia/pytorch'")
        if not _TAG.match(tag):
            raise InvalidInput("tag: must be an image tag such as '24.01-py3'")
        if digest is not None and not _DIGEST.match(digest):
            raise InvalidInput("digest: must be 'sha256:' and 64 hex digits")
        if public and not principal.is_admin:
            raise InvalidInput("public: only an admin may register an image for everyone")
        with self.sessions.begin() as session:
            owner = resolve_owner(session, principal, owner)
            exists = session.scalar(
                select(Image).where(Image.owner == owner, Image.name == name, Image.tag == tag)
            )
            if exists is not None:
                raise Conflict(f"image {name}:{tag} of owner {owner!r} is registered already")
            image = Image(owner=owner, name=name, tag=tag, digest=digest, public=public)
            session.add(image)
            session.flush()
            return _view(image)

    def list_visible(self, principal: Principal) -> list[dict[str, Any]]:
        """The images the caller may use."""
        require_user(principal)
        query = select(Image)
        if not principal.is_admin:
            query = query.where(or_(Image.public.is_(True), *visible(principal, Image.owner)))
        with self.sessions() as session:
            rows = session.scalars(query.order_by(Image.name, Image.tag, Image.owner))
            return [_view(row) for row in rows]

    def delete(self, principal: Principal, image_id: int) -> None:
        """Unregister an image (running resources keep it until they restart)."""
        require_user(principal)
        with self.sessions.begin() as session:
            image = session.get(Image, image_id)
            if image is None or not (image.public or may_see(principal, image.owner)):
                raise NotFound(f"image {image_id} not found")
            check_change(principal, image.owner, f"image {image.name}:{image.tag}")
            session.delete(image)

    def check(self, session: Session, principal: Principal, reference: str | None) -> None:
        """InvalidInput unless ``reference`` names an image the caller may run."""
        allowed = (self.settings.docker_image, self.settings.docker_gpu_image)
        if reference is None or self.settings.allow_any_image or reference in allowed:
            return
        wanted = Reference.parse(reference)
        rows = session.scalars(
            select(Image).where(Image.name == wanted.name, Image.tag == wanted.tag)
        ).all()
        usable = [row for row in rows if row.public or may_see(principal, row.owner)]
        if wanted.digest is not None:
            usable = [row for row in usable if row.digest == wanted.digest]
        if not usable:
            raise InvalidInput(
                f"spec.image: {reference!r} is not a registered image you may use; "
                "register it with `titan image register` (or an admin sets "
                "TITAN_ALLOW_ANY_IMAGE)"
            )


def _view(image: Image) -> dict[str, Any]:
    return {
        "id": image.id,
        "owner": image.owner,
        "name": image.name,
        "tag": image.tag,
        "reference": f"{image.name}:{image.tag}",
        "digest": image.digest,
        "public": image.public,
        "created_at": image.created_at.isoformat(),
    }
