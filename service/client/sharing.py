"""What a shared service's people share: groups, quotas, secrets, folders and images."""

from __future__ import annotations

import builtins
from typing import Any
from urllib.parse import quote

from service.client.calls import API, Call
from service.client.transport import Transport
from service.image_reference import Reference


def _part(name: str) -> str:
    """``name`` as one path segment (a ``/`` in it never reaches another route)."""
    return quote(name, safe="")


class Sharing(Transport):
    """Groups, quotas, secrets, shared folders and registered images."""

    # -- groups (/api/v1/groups) ------------------------------------------------------------

    async def groups(self) -> builtins.list[dict[str, Any]]:
        """Your groups (every group for admins), each with its ``members`` and their roles."""
        result: builtins.list[dict[str, Any]] = await self.send(Call("GET", f"{API}/groups"))
        return result

    async def group(self, name: str) -> dict[str, Any]:
        """One group and its members."""
        result: dict[str, Any] = await self.send(Call("GET", f"{API}/groups/{_part(name)}"))
        return result

    async def create_group(
        self, name: str, admins: builtins.list[str] | None = None
    ) -> dict[str, Any]:
        """A new group with ``admins`` as its first group admins (admins)."""
        body = {"name": name, "admins": admins or []}
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/groups", body=body))
        return result

    async def delete_group(self, name: str) -> None:
        """Remove a group that owns nothing (admins)."""
        await self.send(Call("DELETE", f"{API}/groups/{_part(name)}"))

    async def add_member(self, group: str, user: str, admin: bool = False) -> dict[str, Any]:
        """Add ``user`` to ``group`` as a member (or group admin), or change their role
        (group admins); the group as it is now."""
        path = f"{API}/groups/{_part(group)}/members/{_part(user)}"
        body = {"role": "admin" if admin else "member"}
        result: dict[str, Any] = await self.send(Call("PUT", path, body=body))
        return result

    async def remove_member(self, group: str, user: str) -> dict[str, Any]:
        """Take ``user`` out of ``group`` (group admins); the group as it is now."""
        path = f"{API}/groups/{_part(group)}/members/{_part(user)}"
        result: dict[str, Any] = await self.send(Call("DELETE", path))
        return result

    # -- quotas (/api/v1/quotas) ------------------------------------------------------------

    async def quotas(self) -> builtins.list[dict[str, Any]]:
        """Every owner with a quota of its own, with what it holds (admins)."""
        result: builtins.list[dict[str, Any]] = await self.send(Call("GET", f"{API}/quotas"))
        return result

    async def quota(self, owner: str) -> dict[str, Any]:
        """A user's or group's ``limits`` and ``use`` (None in a limit: unlimited)."""
        result: dict[str, Any] = await self.send(Call("GET", f"{API}/quotas/{_part(owner)}"))
        return result

    async def set_quota(
        self,
        owner: str,
        gpus: float | None = None,
        cpus: float | None = None,
        memory: str | None = None,
        resources: int | None = None,
    ) -> dict[str, Any]:
        """Set an owner's limits (``memory`` like ``"256GiB"``); those left None follow
        the default (admins)."""
        body = {"gpus": gpus, "cpus": cpus, "memory": memory, "resources": resources}
        path = f"{API}/quotas/{_part(owner)}"
        result: dict[str, Any] = await self.send(Call("PUT", path, body=body))
        return result

    async def delete_quota(self, owner: str) -> None:
        """Drop an owner's own limits so the default applies (admins)."""
        await self.send(Call("DELETE", f"{API}/quotas/{_part(owner)}"))

    # -- secrets (/api/v1/secrets): values go in, never come back ---------------------------

    async def secrets(self, owner: str | None = None) -> builtins.list[dict[str, Any]]:
        """Names, owners, versions and dates of the secrets you may use (never values)."""
        params = {"owner": owner} if owner else {}
        result: builtins.list[dict[str, Any]] = await self.send(
            Call("GET", f"{API}/secrets", params)
        )
        return result

    async def create_secret(
        self, name: str, value: str, owner: str | None = None
    ) -> dict[str, Any]:
        """Store a secret, encrypted; the answer names it and never holds the value."""
        body = {"name": name, "value": value, "owner": owner}
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/secrets", body=body))
        return result

    async def rotate_secret(
        self, name: str, value: str, owner: str | None = None
    ) -> dict[str, Any]:
        """Give a secret a new value (processes get it when they next start); its new
        ``version``."""
        params = {"owner": owner} if owner else {}
        path = f"{API}/secrets/{_part(name)}"
        result: dict[str, Any] = await self.send(Call("PUT", path, params, {"value": value}))
        return result

    async def delete_secret(self, name: str, owner: str | None = None) -> None:
        """Forget a secret."""
        params = {"owner": owner} if owner else {}
        await self.send(Call("DELETE", f"{API}/secrets/{_part(name)}", params))

    async def reencrypt_secrets(self) -> dict[str, Any]:
        """Encrypt every secret under the first key of TITAN_SECRET_KEYS (admins);
        ``reencrypted`` counts them."""
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/secrets/reencrypt"))
        return result

    # -- shared folders (/api/v1/folders) ---------------------------------------------------

    async def folders(self) -> builtins.list[dict[str, Any]]:
        """The shared folders you may mount."""
        result: builtins.list[dict[str, Any]] = await self.send(Call("GET", f"{API}/folders"))
        return result

    async def create_folder(self, name: str, owner: str | None = None) -> dict[str, Any]:
        """A new, empty shared folder."""
        body = {"name": name, "owner": owner}
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/folders", body=body))
        return result

    async def delete_folder(self, name: str, owner: str | None = None) -> None:
        """Forget a shared folder (its files stay on the node for an operator)."""
        params = {"owner": owner} if owner else {}
        await self.send(Call("DELETE", f"{API}/folders/{_part(name)}", params))

    # -- registered images (/api/v1/images) -------------------------------------------------

    async def images(self) -> builtins.list[dict[str, Any]]:
        """The images your recipes may name."""
        result: builtins.list[dict[str, Any]] = await self.send(Call("GET", f"{API}/images"))
        return result

    async def register_image(
        self,
        reference: str,
        digest: str | None = None,
        public: bool = False,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Allow recipes to run ``reference`` (``name[:tag][@sha256:...]``), pinned to
        ``digest`` if given; ``public`` lets everyone use it (admins)."""
        parsed = Reference.parse(reference)
        body = {
            "name": parsed.name,
            "tag": parsed.tag,
            "digest": digest or parsed.digest,
            "public": public,
            "owner": owner,
        }
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/images", body=body))
        return result

    async def delete_image(self, image_id: int) -> None:
        """Unregister an image by id."""
        await self.send(Call("DELETE", f"{API}/images/{int(image_id)}"))
