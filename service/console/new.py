"""A new resource from a recipe: an editor checked as you type, the examples, plan and
apply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.recipe_forms import examples, problems_of, read_recipe
from service.console.resources import resource_path
from service.console.session import Changing, SignedIn
from service.errors import TitanError

router = APIRouter(include_in_schema=False)
Recipe = Annotated[str, Form(max_length=1_000_000)]
BLANK = """{
  "schema_version": 1,
  "type": "cluster",
  "name": "my-cluster",
  "spec": {"n_workers": 2}
}"""


@router.get("/new")
def new_page(request: Request, principal: SignedIn, example: str | None = None) -> Response:
    """The editor, holding the chosen example (or a small cluster)."""
    shipped = examples()
    return render(
        request,
        "new.html",
        principal,
        "New resource",
        examples=list(shipped),
        example=example or "",
        recipe=shipped.get(example or "", BLANK),
    )


@router.post("/new/check")
def check(request: Request, titan: TitanDep, principal: Changing, recipe: Recipe = "") -> Response:
    """The recipe's problems, each at its field (the editor asks as you type)."""
    try:
        titan.resources.parse(read_recipe(recipe))
        problems: list[dict[str, str]] = []
    except TitanError as exc:
        problems = problems_of(exc)
    return render(request, "problems.html", principal, "Problems", problems=problems, checked=True)


@router.post("/new/plan")
def plan(request: Request, titan: TitanDep, principal: Changing, recipe: Recipe = "") -> Response:
    """What applying the recipe would do."""
    try:
        planned = titan.resources.plan(principal, read_recipe(recipe))
    except TitanError as exc:
        return render(
            request, "plan.html", principal, "Plan", problems=problems_of(exc), error=exc.message
        )
    return render(request, "plan.html", principal, "Plan", plan=planned)


@router.post("/new")
def create(request: Request, titan: TitanDep, principal: Changing, recipe: Recipe = "") -> Response:
    """Apply the recipe and open the resource's page; the editor again with each problem
    if it is refused (nothing is created then)."""
    try:
        applied = titan.resources.apply(principal, read_recipe(recipe))
    except TitanError as exc:
        return render(
            request,
            "new.html",
            principal,
            "New resource",
            exc.status_code,
            examples=list(examples()),
            example="",
            recipe=recipe,
            problems=problems_of(exc),
            error=exc.message,
        )
    return RedirectResponse(resource_path(applied["resource"], principal), status_code=303)
