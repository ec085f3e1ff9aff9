"""The wire form of telemetry: what ``POST /api/v1/telemetry`` accepts, checked strictly."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SOURCE_PATTERN = r"^[a-z][a-z0-9_]{0,30}(:[A-Za-z0-9._:/@-]{1,100})?$"
MAX_SAMPLES = 10_000  # per batch
MAX_FUTURE_SECONDS = 300  # clocks disagree a little, never by more

MetricName = Annotated[str, StringConstraints(pattern=METRIC_PATTERN)]
_METRIC = re.compile(METRIC_PATTERN)


def _finite(values: dict[str, float]) -> dict[str, float]:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{name}: must be a finite number, not {value}")
    return values


class WireSample(BaseModel):
    """One reading: a source's metric values at ``time`` (seconds since the epoch)."""

    model_config = ConfigDict(extra="forbid")

    time: float = Field(gt=0, allow_inf_nan=False, description="seconds since the epoch")
    source: str = Field(
        pattern=SOURCE_PATTERN,
        description="what was read: 'gpu:<uuid>', 'host:<process>', 'dask:scheduler', ...",
    )
    values: Annotated[
        dict[MetricName, float], Field(min_length=1, max_length=64), AfterValidator(_finite)
    ]
    info: dict[str, Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=dict, max_length=16, description="labels such as the GPU model"
    )


class TelemetryBatch(BaseModel):
    """Samples one process sends at once, with its resource's own token."""

    model_config = ConfigDict(extra="forbid")

    resource: str = Field(
        default="", max_length=200, description="owner/type/name the samples are for"
    )
    process: str = Field(default="", max_length=100, description="which process sent them")
    dropped: int = Field(default=0, ge=0, description="samples the sender lost so far")
    samples: list[WireSample] = Field(max_length=MAX_SAMPLES)


def is_metric_name(name: str) -> bool:
    """True if ``name`` is a valid metric name."""
    return bool(_METRIC.match(name))
