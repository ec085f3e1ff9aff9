"""Answers about what users share: secrets, folders, registered images."""

from __future__ import annotations

from pydantic import Field

from service.api.answers.base import Answer, Timestamp


class SecretAnswer(Answer):
    """A secret's name and version; its value is never answered."""

    owner: str
    name: str
    version: int
    created_at: Timestamp
    updated_at: Timestamp


class ReencryptAnswer(Answer):
    reencrypted: int


class FolderAnswer(Answer):
    owner: str
    name: str
    created_at: Timestamp


class ImageAnswer(Answer):
    id: int
    owner: str
    name: str
    tag: str
    reference: str = Field(description="name:tag, as a recipe's image names it")
    digest: str | None
    public: bool
    created_at: Timestamp
