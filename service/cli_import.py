"""``titan import``: recipes of other platforms converted into Titan recipes."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from service.cli_common import console, errors, hub, read_recipe

import_app = typer.Typer(
    help="Convert recipes of other platforms into Titan recipes.", no_args_is_help=True
)
# Shown escaped: a report echoes what a document said, and a terminal must not obey it.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def add_import_commands(app: typer.Typer) -> None:
    """Add ``titan import`` to ``app``."""
    app.add_typer(import_app, name="import")


@import_app.command("saturn")
def saturn(
    file: Annotated[str, typer.Argument(help="Saturn Cloud recipe JSON file, or - for stdin")],
    lenient: Annotated[
        bool, typer.Option(help="drop the fields Titan cannot honour instead of refusing")
    ] = False,
    apply: Annotated[bool, typer.Option(help="apply the recipes made")] = False,
) -> None:
    """Convert a Saturn Cloud recipe (2022 or 2025.10.01 schema): the report of every
    field (kept, translated, dropped or refused, and why) on standard error, the Titan
    recipes as JSON on standard output, or with --apply what applying them did."""
    client = hub()
    result = client.import_saturn(read_recipe(file), lenient)
    errors.print(report_table(result["report"]))
    if not apply:
        console.print_json(json.dumps(result["recipes"]))
        return
    for recipe in result["recipes"]:
        applied = client.apply(recipe)
        resource = applied["resource"]
        console.print(
            f"{resource['type']}/{resource['name']} {applied['action']} "
            f"(generation {resource['generation']})",
            markup=False,
        )
    if not result["recipes"]:
        console.print("nothing to apply: no Titan recipe was made")


def report_table(report: list[dict[str, Any]]) -> Table:
    """The report as a table: field, outcome, Titan field, why."""
    table = Table("field", "outcome", "Titan field", "why", title="titan import saturn")
    colours = {"kept": "green", "translated": "cyan", "dropped": "yellow", "refused": "red"}
    for row in report:
        table.add_row(
            _plain(row["field"]),
            Text(row["outcome"], style=colours.get(row["outcome"], "")),
            _plain(row["titan"] or ""),
            _plain(row["why"]),
        )
    return table


def _plain(text: str) -> Text:
    """``text`` shown as it is: no rich markup, control characters escaped."""
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))
