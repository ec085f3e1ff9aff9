"""How a recipe's validation errors are told: once each, where the user wrote them.

Pydantic reports a value that matches no member of a union once per member, at
paths holding the members' tags (``spec.command.str``, ``spec.command.list[str]``).
:func:`recipe_problems` turns its errors into problems a person can act on:

- the path is the one in the user's document (member tags dropped);
- a union's members answer once: the member that got furthest into the value
  (``spec.command[1]: Input should be a valid string``), or else one message
  naming what the value may be (``Input should be a valid string or a valid list``);
- an unknown field names the close match (``did you mean `n_workers`?``) and the
  fields allowed there;
- the value echoed (``value``) is cut to :data:`SHOWN_CHARS` characters.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from service.json_values import shown

SHOWN_CHARS = 80  # of a value echoed in a problem: enough to recognise it, never the document
_SHOULD_BE = "Input should be "


def recipe_problems(
    model: type[BaseModel], errors: Iterable[Any], document: Any
) -> list[dict[str, Any]]:
    """One problem (``path``, ``message``, ``value``) per field that is wrong, in the
    order pydantic found them, from the ``errors()`` of validating ``document`` as
    ``model`` (whose discriminator tag may lead each location)."""
    located = [_Located.of(err, document) for err in errors]
    unions: dict[tuple[Any, ...], list[_Located]] = {}
    for item in located:
        if item.union_at is not None:
            unions.setdefault(tuple(item.path[: item.union_at]), []).append(item)
    kept: list[_Located] = []
    for item in located:
        if item.union_at is None:
            kept.append(item)
        elif (at := tuple(item.path[: item.union_at])) in unions:
            kept.extend(_one_answer(at, unions.pop(at)))  # where the union's first error was
    problems: dict[str, dict[str, Any]] = {}
    for item in kept:
        problems.setdefault(path_text(item.path), item.problem(model))
    return list(problems.values())


class _Located:
    """One pydantic error with its location in the user's document."""

    def __init__(self, err: Any, path: list[Any], union_at: int | None) -> None:
        self.err = err
        self.path = path
        self.union_at = union_at  # length of the path where a union member's tag was dropped

    @classmethod
    def of(cls, err: Any, document: Any) -> _Located:
        loc = list(err["loc"])
        if loc and isinstance(document, dict) and loc[0] == document.get("type"):
            loc = loc[1:]  # the discriminator tag is not part of the user's document
        path: list[Any] = []
        union_at = None
        here = document
        for index, part in enumerate(loc):
            if _holds(here, part):
                here = here[part]
            elif not (index == len(loc) - 1 and err["type"] == "missing"):
                # Not in the document: a union member's tag (or a dict key's "[key]").
                if union_at is None:
                    union_at = len(path)
                continue
            path.append(part)
        return cls(err, path, union_at)

    def problem(self, model: type[BaseModel]) -> dict[str, Any]:
        message = str(self.err["msg"]).removeprefix("Value error, ")
        value = self.err.get("input")
        if self.err["type"] == "extra_forbidden":
            message = unknown_field(str(self.path[-1]), fields_at(model, self.path[:-1]))
        elif self.err["type"] == "missing":
            message, value = "required field is missing", None  # its input is the parent
        return problem(path_text(self.path), message, value)


def _holds(value: Any, part: Any) -> bool:
    """Whether ``part`` is a key of ``value`` (a dict) or an index into it (a list)."""
    if isinstance(value, dict):
        return isinstance(part, str) and part in value
    return isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)


def _one_answer(at: tuple[Any, ...], members: list[_Located]) -> list[_Located]:
    """What a union says about the value at ``at``: the errors of the members that got
    inside it, else one error naming every shape the value may have."""
    inside = [item for item in members if len(item.path) > len(at)]
    if inside:
        return inside
    messages = list(dict.fromkeys(str(item.err["msg"]) for item in members))
    if all(text.startswith(_SHOULD_BE) for text in messages):
        said = _SHOULD_BE + " or ".join(text.removeprefix(_SHOULD_BE) for text in messages)
    else:
        said = "; or ".join(messages)
    first = members[0]
    merged = {**first.err, "msg": said, "type": "union"}
    return [_Located(merged, list(at), None)]


def unknown_field(name: str, allowed: list[str]) -> str:
    """The message for an unknown field ``name`` where ``allowed`` are the fields."""
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    message = (
        f"unknown field; did you mean `{close[0]}`?"
        if close
        else ("unknown field; check the spelling")
    )
    return message + (f" (allowed here: {', '.join(allowed)})" if allowed else "")


def fields_at(model: type[BaseModel], path: list[Any]) -> list[str]:
    """The sorted field names of the model at ``path`` inside ``model``; [] where the
    path does not lead to a model (a dict of values, an unknown field)."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue  # an item of a list: the model is the list's
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The first model class in ``annotation`` (``Folder``, ``list[Folder] | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def path_text(path: list[Any]) -> str:
    """``spec.folders[0].path`` for ``["spec", "folders", 0, "path"]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problem(path: str, message: str, value: Any) -> dict[str, Any]:
    """One problem as the API answers it, ``value`` cut to :data:`SHOWN_CHARS`."""
    return {"path": path, "message": message, "value": shown(value, SHOWN_CHARS)}
