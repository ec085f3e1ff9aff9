"""An owner's quota limits as set through the API and by the operator's default
(``TITAN_DEFAULT_QUOTA``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.recipes.units import parse_memory


class QuotaLimits(BaseModel):
    """Limits of one owner; a missing field is the default (or unlimited)."""

    model_config = ConfigDict(extra="forbid")

    gpus: float | None = Field(default=None, ge=0, le=100_000, description="GPUs held at once")
    cpus: float | None = Field(default=None, ge=0, le=1_000_000, description="CPU cores")
    memory: str | None = Field(default=None, description="memory, e.g. '256GiB'")
    resources: int | None = Field(
        default=None, ge=0, le=1_000_000, description="resources running at once"
    )

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None:
            parse_memory(value)
        return value
