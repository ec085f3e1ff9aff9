"""Who you are, users and tokens (``/api/v1/users``, ``/api/v1/tokens``)."""

from __future__ import annotations

import builtins
from typing import Any

from service.client.calls import API, Call
from service.client.transport import Transport


class Accounts(Transport):
    """Account operations."""

    async def me(self) -> dict[str, Any]:
        """Who the token belongs to: ``{"name", "is_admin", "groups", ...}``."""
        result: dict[str, Any] = await self.send(Call("GET", f"{API}/users/me"))
        return result

    async def users(self) -> builtins.list[dict[str, Any]]:
        """Every user with ``is_admin`` and ``disabled`` (admins)."""
        result: builtins.list[dict[str, Any]] = await self.send(Call("GET", f"{API}/users"))
        return result

    async def create_user(self, name: str, is_admin: bool = False) -> dict[str, Any]:
        """A new user and its first ``token``, shown only in this answer (admins)."""
        body = {"name": name, "is_admin": is_admin}
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/users", body=body))
        return result

    async def _set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        verb = "enable" if enabled else "disable"
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/users/{name}/{verb}"))
        return result

    async def disable_user(self, name: str) -> dict[str, Any]:
        """Refuse all the user's tokens at once and stop their resources (admins);
        ``stopped`` names the resources stopped."""
        return await self._set_enabled(name, False)

    async def enable_user(self, name: str) -> dict[str, Any]:
        """Let a disabled user's tokens pass again (admins)."""
        return await self._set_enabled(name, True)

    async def delete_user(self, name: str, transfer_to: str | None = None) -> dict[str, Any]:
        """Delete a user; what they own goes to ``transfer_to`` (refused if they own
        anything and it is None). Returns what was handed over."""
        params = {"transfer_to": transfer_to} if transfer_to else {}
        result: dict[str, Any] = await self.send(Call("DELETE", f"{API}/users/{name}", params))
        return result

    async def tokens(self, user: str | None = None) -> builtins.list[dict[str, Any]]:
        """Your tokens, or (admins) ``user``'s: id, name, dates; never the secret."""
        params = {"user": user} if user else {}
        result: builtins.list[dict[str, Any]] = await self.send(
            Call("GET", f"{API}/tokens", params)
        )
        return result

    async def create_token(
        self, name: str = "", user: str | None = None, expires_in: int | None = None
    ) -> dict[str, Any]:
        """A new token (``token`` in the answer, shown only there), valid for
        ``expires_in`` seconds (None: until revoked)."""
        body = {"name": name, "user": user, "expires_in": expires_in}
        result: dict[str, Any] = await self.send(Call("POST", f"{API}/tokens", body=body))
        return result

    async def revoke_token(self, token_id: int) -> None:
        """Revoke a token by id: refused from its next use."""
        await self.send(Call("DELETE", f"{API}/tokens/{token_id}"))
