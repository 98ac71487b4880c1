"""The wording of schedule problems: where (``windows[1] (nightly).cron``), what, and the value as written."""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml

from esa_scheduler.engine.calendars.spec import CalendarSpec
from esa_scheduler.engine.schedule.spec import (
    AlertSpec,
    DingTalkIntakeSpec,
    ExpectSpec,
    IncidentSpec,
    IntakeSpec,
    MatchSpec,
    NotifySpec,
    SafetySpec,
    ScheduleFileSpec,
    TargetSpec,
    TaskSpec,
    WindowSpec,
)


def yaml_error(exc: yaml.YAMLError) -> str:
    """Where PyYAML stopped, by line and column, and its own one-line reason (never its whole report)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}YAML syntax error: {problem}"


_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "": tuple(ScheduleFileSpec.model_fields),
    "calendars": tuple(CalendarSpec.model_fields),
    "tasks": tuple(TaskSpec.model_fields),
    "windows": tuple(WindowSpec.model_fields),
    "incidents": tuple(IncidentSpec.model_fields),
    "notify": tuple(NotifySpec.model_fields),
    "safety": tuple(SafetySpec.model_fields),
    "match": tuple(MatchSpec.model_fields),
    "release_on": tuple(MatchSpec.model_fields),
    "alert": tuple(AlertSpec.model_fields),
    "expect": tuple(ExpectSpec.model_fields),
    "targets": tuple(TargetSpec.model_fields),
    "intake": tuple(IntakeSpec.model_fields),
    "dingtalk": tuple(DingTalkIntakeSpec.model_fields),
}


def describe(err: Any, raw: dict[str, Any]) -> str:
    """Turn a pydantic error into ``windows[1] (nightly).cron: <problem> <value>``."""
    loc = tuple(err["loc"])
    where = location(loc, raw)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "")
        if loc[-3:-2] == ("calendars",):  # a map: the parent key is the calendar's name
            parent = "calendars"
        import difflib  # only a mistake needs it: the timer path does not pay for its import

        hint = difflib.get_close_matches(key, _FIELD_NAMES.get(parent, ()), n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"{where}: unknown key {key!r}{suggestion}"
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return f"{where}: required field is missing"
    value = err.get("input")
    text = as_written(value)
    quoted = isinstance(value, (str, date)) and text in message  # the message already names it
    shown = f" (got {text})" if not isinstance(value, (dict, list)) and not quoted else ""
    return f"{where}: {message}{shown}"


def as_written(value: Any) -> str:
    """A value as the schedule wrote it: YAML's null and booleans, dates in ISO form, strings quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):  # datetimes too
        return repr(value.isoformat())
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def location(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """A pydantic error location as the operator reads the file: ``windows[1] (nightly).cron``, entries named."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                label += f" ({node['name']})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"
