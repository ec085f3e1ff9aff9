"""What an alert rule is: the body of PUT /alerts/rules/NAME, and the named rules an
operator sets (``TITAN_ALERT_RULES``), with the defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class AlertRuleBody(BaseModel):
    """What an alert rule checks: ``metric comparison threshold`` held for ``for_seconds``.

    The metric ``no_samples`` fires for a running resource no sample came
    from for ``for_seconds`` (its threshold is not used).
    """

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="a metric name")
    comparison: Literal[">", ">=", "<", "<="] = Field(default=">")
    threshold: float = Field(default=0.0, allow_inf_nan=False)
    for_seconds: float = Field(default=0.0, ge=0, le=30 * 24 * 3600)


class AlertRuleSetting(AlertRuleBody):
    """A named alert rule."""

    name: str = Field(pattern=RULE_NAME_PATTERN, description="unique rule name")


DEFAULT_ALERT_RULES = (
    AlertRuleSetting(
        name="gpu-hot", metric="gpu_temperature_celsius", threshold=85, for_seconds=60
    ),
    AlertRuleSetting(
        name="gpu-memory-full", metric="gpu_memory_used_percent", threshold=95, for_seconds=300
    ),
    AlertRuleSetting(name="silent", metric="no_samples", for_seconds=30),
)
