"""Alert rules: a metric beyond a threshold for a while, or a running resource gone silent.

A threshold rule is judged on every incoming sample, in sample time: it
fires once the condition held without a break for ``for_seconds`` on one
source, and resolves at the first sample where it no longer holds. The
``no_samples`` rule is judged on a timer. Every firing is one stored
:class:`AlertEvent`, updated when it resolves; both moments are also queued
for the webhook.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.database.models import AlertEvent, AlertRule, Resource
from service.errors import Conflict, NotFound
from service.monitoring.alert_rules import AlertRuleSetting
from service.monitoring.chunks import Chunk

NO_SAMPLES = "no_samples"
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
Key = tuple[str, str, str]  # rule, resource id, source


@dataclass(frozen=True)
class Running:
    """A running resource as silence checks see it."""

    id: str
    since: float  # when it became running (epoch seconds)


class Alerts:
    """Judges rules and records events; ``notices`` holds what the webhook should get."""

    def __init__(self, settings_rules: Iterable[AlertRuleSetting]) -> None:
        self.settings_rules = {rule.name: rule for rule in settings_rules}
        self.stored_rules: dict[str, AlertRuleSetting] = {}
        self.since: dict[Key, float] = {}  # condition holding since (sample time)
        self.firing: dict[Key, int] = {}  # open event ids
        self.notices: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    # -- rules ---------------------------------------------------------------------------

    def load(self, session: Session) -> None:
        """Read stored rules and open events (at start, so a restart forgets nothing)."""
        with self.lock:
            self.stored_rules = {
                row.name: _setting(row) for row in session.scalars(select(AlertRule))
            }
            for event in session.scalars(select(AlertEvent).where(AlertEvent.state == "firing")):
                self.firing[(event.rule, event.resource_id, event.source)] = event.id

    def rules(self) -> list[dict[str, Any]]:
        """Every rule, marked with where it comes from."""
        rules = [(r, "settings") for r in self.settings_rules.values()]
        rules += [(r, "api") for r in self.stored_rules.values()]
        return [{**rule.model_dump(), "origin": origin} for rule, origin in rules]

    def put_rule(self, session: Session, rule: AlertRuleSetting) -> dict[str, Any]:
        """Add or replace an API rule."""
        if rule.name in self.settings_rules:
            raise Conflict(
                f"rule {rule.name!r} is set by TITAN_ALERT_RULES; change it there or pick another"
            )
        row = session.get(AlertRule, rule.name) or AlertRule(name=rule.name)
        row.metric, row.comparison = rule.metric, rule.comparison
        row.threshold, row.for_seconds = rule.threshold, rule.for_seconds
        session.add(row)
        with self.lock:
            self.stored_rules[rule.name] = rule
        return {**rule.model_dump(), "origin": "api"}

    def delete_rule(self, session: Session, name: str) -> None:
        """Remove an API rule; its open alerts resolve."""
        if name in self.settings_rules:
            raise Conflict(f"rule {name!r} is set by TITAN_ALERT_RULES; remove it there")
        row = session.get(AlertRule, name)
        if row is None:
            raise NotFound(f"alert rule {name!r} not found")
        session.delete(row)
        with self.lock:
            self.stored_rules.pop(name, None)
            for key in [k for k in self.firing if k[0] == name]:
                self._resolve(session, key, None, "the rule was removed")

    def _active(self) -> list[AlertRuleSetting]:
        return [*self.settings_rules.values(), *self.stored_rules.values()]

    # -- judging -------------------------------------------------------------------------

    def observe(self, session: Session, resource_id: str, chunks: list[Chunk]) -> None:
        """Judge threshold rules on the samples of one resource; samples end its silence."""
        with self.lock:
            for rule in self._active():
                if rule.metric == NO_SAMPLES:
                    key = (rule.name, resource_id, "")
                    if key in self.firing and chunks:
                        self._resolve(session, key, None, "samples arrive again")
                    continue
                compare = COMPARE[rule.comparison]
                for chunk in chunks:
                    column = chunk.columns.get(rule.metric)
                    if column is None:
                        continue
                    key = (rule.name, resource_id, chunk.source)
                    quiet = key not in self.since and key not in self.firing
                    if quiet and not any(compare(v, rule.threshold) for v in column):
                        continue  # nothing pending, nothing firing, nothing beyond the threshold
                    for at, value in chunk.points(rule.metric):
                        self._judge(session, rule, key, at, value)

    def _judge(
        self, session: Session, rule: AlertRuleSetting, key: Key, at: float, value: float
    ) -> None:
        if not COMPARE[rule.comparison](value, rule.threshold):
            self.since.pop(key, None)
            if key in self.firing:
                self._resolve(session, key, value, f"{rule.metric} is {value:g} now")
            return
        since = self.since.setdefault(key, at)
        if key not in self.firing and at - since >= rule.for_seconds:
            message = (
                f"{rule.metric} {rule.comparison} {rule.threshold:g} for "
                f"{rule.for_seconds:g}s on {key[2]} (now {value:g})"
            )
            self._fire(session, key, value, message)

    def check_silence(
        self, session: Session, now: float, running: list[Running], heard: dict[str, float]
    ) -> None:
        """Fire ``no_samples`` rules for running resources nothing was heard from lately;
        resolve them for resources no longer running."""
        ids = {resource.id for resource in running}
        with self.lock:
            for rule in self._active():
                if rule.metric != NO_SAMPLES:
                    continue
                for key in [k for k in self.firing if k[0] == rule.name and k[1] not in ids]:
                    self._resolve(session, key, None, "the resource is no longer running")
                for resource in running:
                    last = max(heard.get(resource.id, 0.0), resource.since)
                    key = (rule.name, resource.id, "")
                    if now - last >= rule.for_seconds and key not in self.firing:
                        heard_at = heard.get(resource.id)
                        detail = (
                            f"last sample {now - heard_at:.0f}s ago" if heard_at else "none yet"
                        )
                        message = (
                            f"no samples for {rule.for_seconds:g}s from a running resource "
                            f"({detail})"
                        )
                        self._fire(session, key, None, message)

    def _fire(self, session: Session, key: Key, value: float | None, message: str) -> None:
        event = AlertEvent(
            rule=key[0],
            resource_id=key[1],
            source=key[2],
            state="firing",
            value=value,
            message=message,
        )
        session.add(event)
        session.flush()
        self.firing[key] = event.id
        self.notices.append(event_view(event, None))

    def _resolve(self, session: Session, key: Key, value: float | None, why: str) -> None:
        event_id = self.firing.pop(key)
        self.since.pop(key, None)
        event = session.get(AlertEvent, event_id)
        if event is None:  # its resource was deleted
            return
        event.state = "resolved"
        event.resolved_at = datetime.now(UTC)
        event.message = f"{event.message}; resolved: {why}"
        if value is not None:
            event.value = value
        self.notices.append(event_view(event, None))

    def take_notices(self) -> list[dict[str, Any]]:
        """What happened since the last call, for the webhook."""
        with self.lock:
            notices, self.notices = self.notices, []
        return notices


def event_view(event: AlertEvent, resource: Resource | None) -> dict[str, Any]:
    """An event as the API and the webhook show it."""
    view: dict[str, Any] = {
        "id": event.id,
        "rule": event.rule,
        "resource_id": event.resource_id,
        "source": event.source,
        "state": event.state,
        "value": event.value,
        "message": event.message,
        "at": (event.at or datetime.now(UTC)).isoformat(),
        "resolved_at": event.resolved_at.isoformat() if event.resolved_at else None,
    }
    if resource is not None:
        view["resource"] = resource.key
    return view


def _setting(row: AlertRule) -> AlertRuleSetting:
    return AlertRuleSetting(
        name=row.name,
        metric=row.metric,
        comparison=row.comparison,
        threshold=row.threshold,
        for_seconds=row.for_seconds,
    )
