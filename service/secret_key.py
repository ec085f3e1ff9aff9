"""Keys for encrypting secrets at rest, shared by the CLI and the server.

Pure: the standard library only, so ``titan secret new-key`` works where only
the client is installed.
"""

from __future__ import annotations

import base64
import os


def new_key() -> str:
    """A fresh Fernet key: 32 random bytes, URL-safe base64 (what ``Fernet.generate_key``
    makes, and what ``TITAN_SECRET_KEYS`` takes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()
