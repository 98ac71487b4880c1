"""CloudEvents, and which incident rule one matches (or releases): globs on its fields and its
nested ``data``. Loaded with the first CloudEvent an invocation reads: a timer tick defines none of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from esa_scheduler.engine.holds import hold_id_part
from esa_scheduler.engine.schedule.model import IncidentRule
from esa_scheduler.engine.schedule.spec import MatchSpec
from esa_scheduler.engine.selectors import selector_matches


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope (EventBridge adds its own extension attributes)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, defer_build=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    data: Any = None


@dataclass(frozen=True)
class IncidentRelease:
    """A CloudEvent that a rule's ``release_on`` matched: end that rule's hold."""

    hold_id: str


def _glob_match(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(_glob_match(v, actual.get(k)) for k, v in expected.items())
    if isinstance(expected, str) and isinstance(actual, str):
        return selector_matches(expected, actual)
    return bool(expected == actual)


def event_matches(spec: MatchSpec, event: CloudEvent) -> bool:
    fields = {"type": spec.type, "source": spec.source, "subject": spec.subject}
    for name, expected in fields.items():
        if expected is not None and not _glob_match(expected, getattr(event, name)):
            return False
    return not spec.data or _glob_match(spec.data, event.data)


def release_spec(rule: IncidentRule) -> MatchSpec | None:
    """``release_on`` refines the rule's own match: same alert, other state."""
    if rule.release_on is None or rule.match is None:
        return None
    merged = rule.match.model_dump()
    for key, value in rule.release_on.model_dump().items():
        if key == "data":
            merged["data"] = {**merged["data"], **value}
        elif value is not None:
            merged[key] = value
    return MatchSpec.model_validate(merged)


def incident_hold_id(rule: IncidentRule) -> str:
    """One hold per rule: a repeated alarm refreshes it instead of stacking copies."""
    return "inc-" + hold_id_part(rule.name, 120)
