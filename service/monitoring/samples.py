"""The wire form of telemetry: what ``POST /api/v1/telemetry`` accepts, checked strictly."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SOURCE_PATTERN = r"^[a-z][a-z0-9_]{0,30}(:[A-Za-z0-9._:/@-]{1,100})?$"
MAX_SAMPLES = 10_000  # per batch
MAX_FUTURE_SECONDS = 300  # clocks disagree a little, never by more

_METRIC = re.compile(METRIC_PATTERN)


class WireSample(BaseModel):
    """One reading: a source's metric values at ``time`` (seconds since the epoch).

    Names are checked once per batch (see :class:`TelemetryBatch`): per-key
    patterns here would cost more than storing the sample.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    time: float = Field(gt=0, description="seconds since the epoch")
    source: str = Field(
        max_length=120,
        description="what was read: 'gpu:<uuid>', 'host:<process>', 'dask:scheduler', ...",
    )
    values: dict[str, float] = Field(min_length=1, max_length=64)
    info: dict[str, Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=dict, max_length=16, description="labels such as the GPU model"
    )


class WireChunk(BaseModel):
    """Samples of one source in columns: ``times`` and, per metric, a value per time.

    What the sampler sends: the metric names once instead of once per sample.
    ``None`` marks a time the metric was not reported.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    source: str = Field(max_length=120, description="as in a sample")
    times: list[float] = Field(min_length=1, max_length=MAX_SAMPLES)
    values: dict[str, list[float | None]] = Field(min_length=1, max_length=64)
    info: dict[str, Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=dict, max_length=16
    )


class TelemetryBatch(BaseModel):
    """Samples one process sends at once, with its resource's own token: as ``samples``
    (one object per reading), as ``chunks`` (columns per source), or both."""

    model_config = ConfigDict(extra="forbid")

    resource: str = Field(
        default="", max_length=200, description="owner/type/name the samples are for"
    )
    process: str = Field(default="", max_length=100, description="which process sent them")
    dropped: int = Field(
        default=0, ge=0, le=2**63 - 1, description="samples the sender lost so far"
    )
    samples: list[WireSample] = Field(default_factory=list, max_length=MAX_SAMPLES)
    chunks: list[WireChunk] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _names(self) -> TelemetryBatch:
        for index, sample in enumerate(self.samples):
            _check_names(f"samples[{index}]", sample.source, sample.values)
        total = len(self.samples)
        for index, chunk in enumerate(self.chunks):
            where = f"chunks[{index}]"
            _check_names(where, chunk.source, chunk.values)
            for name, column in chunk.values.items():
                if len(column) != len(chunk.times):
                    raise ValueError(
                        f"{where}.values.{name}: {len(column)} values for "
                        f"{len(chunk.times)} times; give one per time (null where missing)"
                    )
            total += len(chunk.times)
        if total > MAX_SAMPLES:
            raise ValueError(f"{total} samples in one batch; send at most {MAX_SAMPLES}")
        return self

    @property
    def count(self) -> int:
        """How many samples the batch holds."""
        return len(self.samples) + sum(len(chunk.times) for chunk in self.chunks)


def _check_names(where: str, source: str, values: dict[str, Any]) -> None:
    if source not in _GOOD_SOURCES:
        if not _SOURCE.fullmatch(source):
            raise ValueError(
                f"{where}.source: {source[:120]!r} is not a source name such as "
                "'gpu:<uuid>' or 'host:<process>'"
            )
        _remember(_GOOD_SOURCES, source)
    if not values.keys() <= _GOOD_METRICS:
        for name in values:
            if not _METRIC.fullmatch(name):
                raise ValueError(
                    f"{where}.values: {name[:80]!r} is not a metric name "
                    "(a-z, 0-9 and '_', starting with a letter, at most 63)"
                )
            _remember(_GOOD_METRICS, name)


# Names seen valid before: most batches repeat the same few, so checking is a set lookup.
_GOOD_METRICS: set[str] = set()
_GOOD_SOURCES: set[str] = set()
_SOURCE = re.compile(SOURCE_PATTERN)


def _remember(known: set[str], name: str) -> None:
    if len(known) < 100_000:
        known.add(name)


def is_metric_name(name: str) -> bool:
    """True if ``name`` is a valid metric name."""
    return bool(_METRIC.fullmatch(name))
