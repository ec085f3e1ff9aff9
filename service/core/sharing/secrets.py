"""Secrets: values users keep in Titan and hand to their processes, never shown again.

A value is encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under the first
key of ``TITAN_SECRET_KEYS``; every key in the list can decrypt, so keys are
rotated by putting a new key first, restarting, and re-encrypting
(``titan secret reencrypt``), after which the old key can go. Without the
setting, a key is made once in ``<data_dir>/secret.key`` (0600).

No API returns a value after it is created. A recipe names secrets in
``spec.secrets``; the reconciler decrypts them only into the environment or
a file of the process that uses them (see ``ProcessSpec.secret_files``).
Changing a value (rotate) does not restart anything: restart the resource
to hand its processes the new value.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.backends.base import ProcessSpec
from service.config import Settings
from service.core.identity.access import (
    Principal,
    check_attachable,
    check_change,
    check_see,
    require_admin,
    require_user,
    resolve_owner,
    visible,
)
from service.core.identity.auth import write_private
from service.database.models import Secret, utcnow
from service.errors import Conflict, InvalidInput, NotFound
from service.recipes.models import DNS_LABEL, SecretRef
from service.secret_key import new_key

MAX_VALUE_BYTES = 64 * 1024


class Vault:
    """Encrypts with the first key; decrypts with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("TITAN_SECRET_KEYS: give at least one key")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, TypeError):
            raise ValueError(
                "TITAN_SECRET_KEYS: each key must be 32 url-safe base64-encoded bytes; "
                "make one with `titan secret new-key`"
            ) from None

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise RuntimeError(
                "a secret cannot be decrypted with any key of TITAN_SECRET_KEYS "
                "(was the key that encrypted it removed?)"
            ) from None

    def rotate(self, token: bytes) -> bytes:
        """The same value encrypted under the first key."""
        return self._fernet.rotate(token)


def vault_of(settings: Settings) -> Vault:
    """The vault the settings describe, or one with the key kept under data_dir."""
    if settings.secret_keys:
        return Vault(settings.secret_keys)
    path = settings.data_dir / "secret.key"
    if not path.exists():
        write_private(path, new_key() + "\n")
    key = path.read_text().strip()
    base64.urlsafe_b64decode(key)  # a damaged file fails here, not at first use
    return Vault([key])


class SecretService:
    """Create, list (names only), rotate and delete secrets; hand values to processes."""

    def __init__(self, sessions: sessionmaker[Session], vault: Vault) -> None:
        self.sessions = sessions
        self.vault = vault

    def create(
        self, principal: Principal, name: str, value: str, owner: str | None
    ) -> dict[str, Any]:
        """A new secret of ``owner`` (default: the caller); its value is never shown again."""
        _check(name, value)
        with self.sessions.begin() as session:
            owner = resolve_owner(session, principal, owner)
            if _find(session, owner, name) is not None:
                raise Conflict(
                    f"secret {name!r} of owner {owner!r} exists; rotate it to change its value"
                )
            secret = Secret(owner=owner, name=name, ciphertext=self.vault.encrypt(value))
            session.add(secret)
            session.flush()
            return _view(secret)

    def list_visible(self, principal: Principal, owner: str | None = None) -> list[dict[str, Any]]:
        """Names and dates of the secrets the caller may see (never values)."""
        require_user(principal)
        query = select(Secret).where(*visible(principal, Secret.owner))
        if owner is not None:
            query = query.where(Secret.owner == owner)
        with self.sessions() as session:
            rows = session.scalars(query.order_by(Secret.owner, Secret.name))
            return [_view(row) for row in rows]

    def rotate(
        self, principal: Principal, name: str, value: str, owner: str | None
    ) -> dict[str, Any]:
        """Give the secret a new value (processes get it when they next start)."""
        _check(name, value)
        with self.sessions.begin() as session:
            secret = self._load(session, principal, name, owner, change=True)
            secret.ciphertext = self.vault.encrypt(value)
            secret.version += 1
            secret.updated_at = utcnow()
            return _view(secret)

    def delete(self, principal: Principal, name: str, owner: str | None) -> None:
        """Forget the secret; resources naming it fail to start until it exists again."""
        with self.sessions.begin() as session:
            session.delete(self._load(session, principal, name, owner, change=True))

    def reencrypt(self, principal: Principal) -> dict[str, Any]:
        """Encrypt every secret again under the first key (admins): after adding a new key
        first in TITAN_SECRET_KEYS, this lets the old keys be removed."""
        require_admin(principal)
        with self.sessions.begin() as session:
            rows = session.scalars(select(Secret)).all()
            for row in rows:
                row.ciphertext = self.vault.rotate(row.ciphertext)
            return {"reencrypted": len(rows)}

    def _load(
        self, session: Session, principal: Principal, name: str, owner: str | None, change: bool
    ) -> Secret:
        owner = owner or principal.user_name
        what = f"secret {name!r} of owner {owner!r}"
        (check_change if change else check_see)(principal, owner, what)
        secret = _find(session, owner, name)
        if secret is None:
            raise NotFound(f"{what} not found")
        return secret


def check_refs(
    session: Session, principal: Principal, owner: str, refs: Sequence[SecretRef]
) -> None:
    """InvalidInput unless every secret a recipe of ``owner`` names exists and may be used
    by it: the caller must see the secret, and a group's resource only uses the group's
    secrets (its other members could read them through it)."""
    for index, ref in enumerate(refs):
        secret_owner = ref.owner or owner
        found = _find(session, secret_owner, ref.name) is not None
        what = f"secret {ref.name!r}"
        check_attachable(principal, owner, secret_owner, found, f"spec.secrets[{index}]", what)


def secret_values(
    session: Session, vault: Vault, owner: str, refs: Sequence[SecretRef]
) -> list[str]:
    """The decrypted values ``refs`` name, in order (for the reconciler only)."""
    values = []
    for ref in refs:
        secret = _find(session, ref.owner or owner, ref.name)
        if secret is None:
            raise LookupError(
                f"secret {ref.name!r} of owner {ref.owner or owner!r} no longer exists; "
                "create it again or remove it from the recipe"
            )
        values.append(vault.decrypt(secret.ciphertext))
    return values


def with_secrets(
    spec: ProcessSpec,
    refs: Sequence[dict[str, Any]],
    values: Sequence[str],
    extra_files: dict[str, str] | None = None,
) -> ProcessSpec:
    """``spec`` with each secret value in its variable or file, and ``extra_files``."""
    if not refs and not extra_files:
        return spec
    env = dict(spec.env)
    files = {**spec.secret_files, **(extra_files or {})}
    for ref, value in zip(refs, values, strict=True):
        if ref.get("env"):
            env[ref["env"]] = value
        else:
            files[ref["file"]] = value
    return replace(spec, env=env, secret_files=files)


def _find(session: Session, owner: str, name: str) -> Secret | None:
    return session.scalar(select(Secret).where(Secret.owner == owner, Secret.name == name))


def _check(name: str, value: str) -> None:
    if not DNS_LABEL.match(name):
        raise InvalidInput("name: must be a DNS label (a-z, 0-9, '-'; 1-63 characters)")
    if not value:
        raise InvalidInput("value: must not be empty")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput(f"value: at most {MAX_VALUE_BYTES} bytes")


def _view(secret: Secret) -> dict[str, Any]:
    return {
        "owner": secret.owner,
        "name": secret.name,
        "version": secret.version,
        "created_at": secret.created_at.isoformat(),
        "updated_at": secret.updated_at.isoformat(),
    }
