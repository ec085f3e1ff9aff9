"""The Python client of Titan. It talks HTTP only and never imports server modules."""

from service.client.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    ServerUnavailable,
    TitanClientError,
    UnauthenticatedError,
)
from service.client.hub import AsyncHub, Hub, ResourceRef

__all__ = [
    "AsyncHub",
    "ConflictError",
    "ForbiddenError",
    "Hub",
    "InvalidError",
    "NotFoundError",
    "ResourceRef",
    "ServerUnavailable",
    "TitanClientError",
    "UnauthenticatedError",
]
