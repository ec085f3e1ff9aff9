"""The quotas page: the user's quota and their groups', what each holds; for admins every
owner's own quota, with a form to set one and a button to drop it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from service.api.deps import TitanDep
from service.console.pages import render
from service.console.session import Changing, SignedIn
from service.core.capacity.limits import QuotaLimits
from service.errors import InvalidInput

router = APIRouter(include_in_schema=False)
Limit = Annotated[str, Form(max_length=40)]


@router.get("/quotas")
def quotas_page(request: Request, titan: TitanDep, principal: SignedIn) -> Response:
    """The quota of the user and of each of their groups; every set quota for admins."""
    owners = [principal.user_name, *sorted(principal.groups)]
    return render(
        request,
        "quotas.html",
        principal,
        "Quotas",
        mine=[titan.quotas.get(principal, owner) for owner in owners],
        every=titan.quotas.list(principal) if principal.is_admin else [],
    )


def read_limits(fields: dict[str, str]) -> QuotaLimits:
    """The limits typed into the form (an empty field follows the default), checked by the
    API's own rules; InvalidInput naming the field otherwise."""
    given = {key: value.strip() for key, value in fields.items() if value.strip()}
    try:
        return QuotaLimits.model_validate(given)
    except ValidationError as exc:
        problems: list[dict[str, Any]] = [
            {
                "path": ".".join(str(part) for part in err["loc"]),
                "message": str(err["msg"]).removeprefix("Value error, "),
            }
            for err in exc.errors(include_url=False)
        ]
        message = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        raise InvalidInput(message, problems) from None


@router.post("/quotas")
def set_quota(
    request: Request,
    titan: TitanDep,
    principal: Changing,
    owner: Annotated[str, Form(max_length=63)],
    gpus: Limit = "",
    cpus: Limit = "",
    memory: Limit = "",
    resources: Limit = "",
) -> Response:
    """Set an owner's limits (admins); fields left empty follow the default."""
    given = {"gpus": gpus, "cpus": cpus, "memory": memory, "resources": resources}
    titan.quotas.put(principal, owner.strip(), read_limits(given))
    return RedirectResponse("/quotas", status_code=303)


@router.post("/quotas/{owner}/reset")
def reset_quota(request: Request, owner: str, titan: TitanDep, principal: Changing) -> Response:
    """Drop an owner's own limits so the default applies (admins)."""
    titan.quotas.delete(principal, owner)
    return RedirectResponse("/quotas", status_code=303)
