"""Who you are, users and tokens: the account operations of ``Hub`` and ``AsyncHub``.

Each operation is a :class:`Call` (``AccountCalls``); ``Accounts`` and
``AsyncAccounts`` only send them, with the ``send`` of the client they are
mixed into.
"""

from __future__ import annotations

import builtins
from typing import Any

from service.client.calls import API, Call


class AccountCalls:
    """Every account operation, as data."""

    @staticmethod
    def me() -> Call:
        return Call("GET", f"{API}/users/me")

    @staticmethod
    def users() -> Call:
        return Call("GET", f"{API}/users")

    @staticmethod
    def create_user(name: str, is_admin: bool) -> Call:
        return Call("POST", f"{API}/users", body={"name": name, "is_admin": is_admin})

    @staticmethod
    def set_user_enabled(name: str, enabled: bool) -> Call:
        return Call("POST", f"{API}/users/{name}/{'enable' if enabled else 'disable'}")

    @staticmethod
    def delete_user(name: str, transfer_to: str | None) -> Call:
        params = {"transfer_to": transfer_to} if transfer_to else {}
        return Call("DELETE", f"{API}/users/{name}", params)

    @staticmethod
    def tokens(user: str | None) -> Call:
        return Call("GET", f"{API}/tokens", {"user": user} if user else {})

    @staticmethod
    def create_token(name: str, user: str | None, expires_in: int | None) -> Call:
        body = {"name": name, "user": user, "expires_in": expires_in}
        return Call("POST", f"{API}/tokens", body=body)

    @staticmethod
    def revoke_token(token_id: int) -> Call:
        return Call("DELETE", f"{API}/tokens/{token_id}")


class Accounts:
    """Account operations of the synchronous client."""

    def send(self, call: Call) -> Any:
        raise NotImplementedError  # the client's own ``send``

    def me(self) -> dict[str, Any]:
        """Who the token belongs to: ``{"name", "is_admin", "groups", ...}``."""
        result: dict[str, Any] = self.send(AccountCalls.me())
        return result

    def users(self) -> builtins.list[dict[str, Any]]:
        """Every user with ``is_admin`` and ``disabled`` (admins)."""
        result: builtins.list[dict[str, Any]] = self.send(AccountCalls.users())
        return result

    def create_user(self, name: str, is_admin: bool = False) -> dict[str, Any]:
        """A new user and its first ``token``, shown only in this answer (admins)."""
        result: dict[str, Any] = self.send(AccountCalls.create_user(name, is_admin))
        return result

    def disable_user(self, name: str) -> dict[str, Any]:
        """Refuse all the user's tokens at once and stop their resources (admins);
        ``stopped`` names the resources stopped."""
        result: dict[str, Any] = self.send(AccountCalls.set_user_enabled(name, False))
        return result

    def enable_user(self, name: str) -> dict[str, Any]:
        """Let a disabled user's tokens pass again (admins)."""
        result: dict[str, Any] = self.send(AccountCalls.set_user_enabled(name, True))
        return result

    def delete_user(self, name: str, transfer_to: str | None = None) -> dict[str, Any]:
        """Delete a user; what they own goes to ``transfer_to`` (refused if they own
        anything and it is None). Returns what was handed over."""
        result: dict[str, Any] = self.send(AccountCalls.delete_user(name, transfer_to))
        return result

    def tokens(self, user: str | None = None) -> builtins.list[dict[str, Any]]:
        """Your tokens, or (admins) ``user``'s: id, name, dates; never the secret."""
        result: builtins.list[dict[str, Any]] = self.send(AccountCalls.tokens(user))
        return result

    def create_token(
        self, name: str = "", user: str | None = None, expires_in: int | None = None
    ) -> dict[str, Any]:
        """A new token (``token`` in the answer, shown only there), valid for
        ``expires_in`` seconds (None: until revoked)."""
        result: dict[str, Any] = self.send(AccountCalls.create_token(name, user, expires_in))
        return result

    def revoke_token(self, token_id: int) -> None:
        """Revoke a token by id: refused from its next use."""
        self.send(AccountCalls.revoke_token(token_id))


class AsyncAccounts:
    """Account operations of the asynchronous client."""

    async def send(self, call: Call) -> Any:
        raise NotImplementedError  # the client's own ``send``

    async def me(self) -> dict[str, Any]:
        """Who the token belongs to."""
        result: dict[str, Any] = await self.send(AccountCalls.me())
        return result

    async def users(self) -> builtins.list[dict[str, Any]]:
        """Every user (admins)."""
        result: builtins.list[dict[str, Any]] = await self.send(AccountCalls.users())
        return result

    async def create_user(self, name: str, is_admin: bool = False) -> dict[str, Any]:
        """A new user and its first token (admins)."""
        result: dict[str, Any] = await self.send(AccountCalls.create_user(name, is_admin))
        return result

    async def disable_user(self, name: str) -> dict[str, Any]:
        """Refuse all the user's tokens at once and stop their resources (admins)."""
        result: dict[str, Any] = await self.send(AccountCalls.set_user_enabled(name, False))
        return result

    async def enable_user(self, name: str) -> dict[str, Any]:
        """Let a disabled user's tokens pass again (admins)."""
        result: dict[str, Any] = await self.send(AccountCalls.set_user_enabled(name, True))
        return result

    async def delete_user(self, name: str, transfer_to: str | None = None) -> dict[str, Any]:
        """Delete a user, handing what they own to ``transfer_to``."""
        result: dict[str, Any] = await self.send(AccountCalls.delete_user(name, transfer_to))
        return result

    async def tokens(self, user: str | None = None) -> builtins.list[dict[str, Any]]:
        """Your tokens, or (admins) ``user``'s; never the secret."""
        result: builtins.list[dict[str, Any]] = await self.send(AccountCalls.tokens(user))
        return result

    async def create_token(
        self, name: str = "", user: str | None = None, expires_in: int | None = None
    ) -> dict[str, Any]:
        """A new token, shown only in this answer."""
        call = AccountCalls.create_token(name, user, expires_in)
        result: dict[str, Any] = await self.send(call)
        return result

    async def revoke_token(self, token_id: int) -> None:
        """Revoke a token by id."""
        await self.send(AccountCalls.revoke_token(token_id))
