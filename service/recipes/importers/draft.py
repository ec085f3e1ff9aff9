"""A Titan recipe being written from a foreign document, and the report of each field.

Every field read goes through exactly one of :meth:`Draft.keep`,
:meth:`Draft.translate`, :meth:`Draft.drop`, :meth:`Draft.refuse` or
:meth:`Draft.invalid`, so the report has a row for each. A refused field is a
problem unless the draft is lenient; then it is dropped, its reason kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.json_values import join_path
from service.recipes.importers.report import ImportRefused, Row
from service.recipes.models import RecipeInvalid, parse_recipe
from service.recipes.problems import problem

Path = tuple[str | int, ...]


def path_text(path: Path) -> str:
    """``spec.secrets[0].env`` for ``("spec", "secrets", 0, "env")``; odd keys quoted."""
    text = ""
    for part in path:
        text = f"{text}[{part}]" if isinstance(part, int) else join_path(text, part)
    return text


class Draft:
    """One Titan recipe of ``kind`` under construction, with the rows of its report."""

    def __init__(
        self, kind: str, lenient: bool, catalog: Mapping[str, Any], label: str = ""
    ) -> None:
        self.recipe: dict[str, Any] = {"schema_version": 1, "type": kind, "spec": {}}
        self.lenient = lenient
        self.catalog = dict(catalog)
        self.label = label  # before each Titan path in the report: which recipe it is in
        self.rows: list[Row] = []
        self.problems: list[dict[str, Any]] = []  # refusals, and what no flag can fix
        self.droppable: list[str] = []  # the fields of problems that lenient would drop

    def beside(self, kind: str, label: str) -> Draft:
        """A second recipe made from the same document, reporting into the same rows."""
        other = Draft(kind, self.lenient, self.catalog, label)
        other.rows, other.problems, other.droppable = self.rows, self.problems, self.droppable
        return other

    @property
    def kind(self) -> str:
        """The Titan type being written."""
        return str(self.recipe["type"])

    def place(self, path: Path, value: Any) -> str:
        """Write ``value`` at ``path`` of the recipe (making the containers on the way; an
        index of -1 appends to a list) and return the path as text, with the index."""
        here: Any = self.recipe
        written: list[str | int] = []
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            empty: Any = value if last else ([] if isinstance(path[depth + 1], int) else {})
            if part == -1:
                here.append(empty)
                part = len(here) - 1
            elif last:
                here[part] = value
            elif isinstance(here, dict):
                here.setdefault(part, empty)
            written.append(part)
            here = here[part]
        return self.label + path_text(tuple(written))

    def document(self) -> dict[str, Any]:
        """The recipe written, its envelope's keys first."""
        first = ("schema_version", "type", "name", "description")
        return {**{k: self.recipe[k] for k in first if k in self.recipe}, **self.recipe}

    def keep(self, field: str, path: Path, value: Any, why: str = "the same in Titan") -> None:
        """``field`` goes unchanged to ``path``."""
        self.rows.append(Row(field, "kept", self.place(path, value), why))

    def translate(self, field: str, path: Path, value: Any, why: str) -> None:
        """``field`` becomes ``value`` at ``path``."""
        self.rows.append(Row(field, "translated", self.place(path, value), why))

    def note(self, field: str, titan: str, why: str) -> None:
        """``field`` went into ``titan`` together with other fields (a generated script)."""
        self.rows.append(Row(field, "translated", self.label + titan, why))

    def drop(self, field: str, why: str) -> None:
        """``field`` is not carried over; ``why`` says why that is harmless."""
        self.rows.append(Row(field, "dropped", None, why))

    def refuse(self, field: str, why: str, value: Any) -> None:
        """Titan cannot honour ``field``: a problem, or dropped where lenient."""
        if self.lenient:
            self.rows.append(Row(field, "dropped", None, f"{why} (dropped: --lenient)"))
        else:
            self.rows.append(Row(field, "refused", None, why))
            self.problems.append(problem(field, why, value))
            self.droppable.append(field)

    def invalid(self, field: str, message: str, value: Any) -> None:
        """``field`` makes the document unconvertible, lenient or not."""
        self.rows.append(Row(field, "refused", None, message))
        self.problems.append(problem(field, message, value))

    def titan_problem(self, spec: dict[str, Any]) -> str | None:
        """What Titan's own validation says of a recipe of this kind whose spec is
        ``spec`` (None: nothing), so a value is checked before it is kept."""
        commanded = self.kind in ("job", "deployment")
        filler = {"command": "true"} if commanded and "command" not in spec else {}
        try:
            parse_recipe({"type": self.kind, "name": "x", "spec": {**filler, **spec}}, self.catalog)
        except RecipeInvalid as exc:
            return "; ".join(f"Titan's {p['path']}: {p['message']}" for p in exc.problems)
        return None

    def check(self) -> None:
        """Raise ImportRefused listing every problem, if there is one."""
        if self.problems:
            raise ImportRefused(self.problems, self.rows, bool(self.droppable))
