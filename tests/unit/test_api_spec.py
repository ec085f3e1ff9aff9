"""The API's spec declares every answer: each JSON success names its model, and every
refusal the one error body."""

from __future__ import annotations

from typing import Any

from service.app import create_app

SPEC = create_app().openapi()
# The two answers that are not JSON: an output file's bytes and Prometheus text.
NOT_JSON = {("get", "/api/v1/resources/{type}/{name}/outputs/{path}"), ("get", "/metrics")}


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in SPEC["paths"].items() for m, op in ops.items()]


def test_every_json_success_declares_its_model() -> None:
    loose = []
    for method, path, operation in _operations():
        for status, response in operation["responses"].items():
            if not status.startswith("2") or status == "204" or (method, path) in NOT_JSON:
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            named = schema.get("$ref") or schema.get("items", {}).get("$ref")
            if named is None and schema.get("description") is None:
                loose.append(f"{method.upper()} {path} {status}: {schema}")
    assert not loose, "\n".join(loose)


def test_every_route_declares_the_error_body() -> None:
    for method, path, operation in _operations():
        for status in ("401", "403", "404", "422"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}, (method, path)
    error = SPEC["components"]["schemas"]["ErrorAnswer"]
    assert error["required"] == ["error"] and error["additionalProperties"] is False
    assert "HTTPValidationError" not in SPEC["components"]["schemas"]
