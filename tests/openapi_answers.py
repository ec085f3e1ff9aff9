"""Checking an answer against what ``/openapi.json`` declares for its route and status."""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from service.app import create_app


@cache
def _spec() -> dict[str, Any]:
    return create_app().openapi()


def declared_schema(method: str, route: str, status: int) -> dict[str, Any] | None:
    """The JSON schema the spec declares for this answer; None where it declares none."""
    spec = _spec()
    operation = spec["paths"].get(route, {}).get(method.lower())
    if operation is None:
        return None
    response = operation["responses"].get(str(status))
    if response is None:
        return None
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    return None if schema is None else {**schema, "components": spec["components"]}


def mismatches(method: str, route: str, status: int, body: Any) -> list[str]:
    """How ``body`` differs from the declared answer (empty: it conforms). An answer whose
    status the spec does not declare is itself a mismatch; routes outside the spec (the spec
    itself and its pages) are not checked."""
    if route not in _spec()["paths"]:
        return []
    schema = declared_schema(method, route, status)
    if schema is None:
        return [f"{method} {route}: status {status} is not declared"]
    validator = Draft202012Validator(schema)
    return [
        f"{method} {route} {status}: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(body)
    ]
