"""The one unauthenticated route: is the server up."""

from fastapi import APIRouter

from service.api.answers.monitoring import HealthAnswer

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthAnswer)
def healthz() -> dict[str, str]:
    """``{"status": "ok"}`` while the server answers."""
    return {"status": "ok"}
