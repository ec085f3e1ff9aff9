"""Talking to a Jupyter kernel over its WebSocket, as JupyterLab in a browser does."""

from __future__ import annotations

import uuid
from typing import Any


def execute_request(code: str) -> dict[str, Any]:
    """A kernel message asking it to run ``code`` (its id: ``["header"]["msg_id"]``)."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "session": uuid.uuid4().hex,
            "username": "test",
            "msg_type": "execute_request",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "buffers": [],
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    }
