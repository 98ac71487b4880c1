"""The JSON Schema of a schedule file, generated from the pydantic models that load it.

Editors use it through the ``# yaml-language-server: $schema=...`` comment at the top of each
schedule file; ``schedule.schema.json`` at the repository root is this function's output, and a
test keeps the two in sync. Regenerate with ``esa-scheduler schema > schedule.schema.json``
(or ``python -m esa_scheduler.engine.schema > schedule.schema.json``).
"""

from __future__ import annotations

import json
from typing import Any

from esa_scheduler.engine.schedule.spec import ScheduleFileSpec

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "esa-scheduler schedule file"
DESCRIPTION = (
    "One YAML file of the schedule directory: the tasks esa-scheduler manages, the windows that take "
    "them online or offline, and the incident rules that hold them. Times without an offset are wall "
    "clock in the file's (or the window's) timezone."
)
_LOCAL_OR_AWARE = "ISO 8601 date and time; without an offset it is wall clock in the window's timezone."


def _relax_date_time(node: Any) -> Any:
    """Drop ``format: date-time``, which demands an offset: the loader also takes local wall-clock times."""
    if isinstance(node, list):
        return [_relax_date_time(item) for item in node]
    if not isinstance(node, dict):
        return node
    relaxed = {key: _relax_date_time(value) for key, value in node.items()}
    if relaxed.get("format") == "date-time":
        del relaxed["format"]
        relaxed.setdefault("description", _LOCAL_OR_AWARE)
    return relaxed


def schedule_json_schema() -> dict[str, Any]:
    """The schedule file's JSON Schema (draft 2020-12), deterministic for a given set of models."""
    generated = _relax_date_time(ScheduleFileSpec.model_json_schema())
    generated.pop("title", None)
    generated.pop("description", None)
    return {"$schema": JSON_SCHEMA_DIALECT, "title": TITLE, "description": DESCRIPTION, **generated}


def main() -> None:
    """Print the schema exactly as ``esa-scheduler schema`` does."""
    print(json.dumps(schedule_json_schema(), indent=2))


if __name__ == "__main__":
    main()
