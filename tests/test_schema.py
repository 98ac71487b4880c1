"""The committed schedule JSON Schema matches the models, and every sample schedule points editors at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from esa_scheduler.engine.schedule import ScheduleFileSpec
from esa_scheduler.engine.schema import JSON_SCHEMA_DIALECT, schedule_json_schema

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schedule.schema.json"
SCHEDULE_DIR = ROOT / "schedule"
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schedule.schema.json"
REGENERATE = "regenerate it with: esa-scheduler schema > schedule.schema.json"


def _sample_files() -> list[Path]:
    return sorted([*SCHEDULE_DIR.glob("*.yaml"), *SCHEDULE_DIR.glob("*.yml")])


def test_committed_schema_matches_the_models() -> None:
    assert COMMITTED.is_file(), f"{COMMITTED.name} is missing; {REGENERATE}"
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == schedule_json_schema(), (
        f"{COMMITTED.name} is out of date with the schedule models; {REGENERATE}"
    )


def test_committed_schema_is_formatted_as_the_command_prints_it() -> None:
    expected = json.dumps(schedule_json_schema(), indent=2) + "\n"
    assert COMMITTED.read_text(encoding="utf-8") == expected, f"{COMMITTED.name} is not in canonical form; {REGENERATE}"


def test_schema_header_and_shape() -> None:
    schema = schedule_json_schema()
    assert list(schema)[:3] == ["$schema", "title", "description"]
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert "$id" not in schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(ScheduleFileSpec.model_fields)
    json.dumps(schema)  # plain JSON all the way down


def test_local_times_are_not_forced_to_carry_an_offset() -> None:
    # start/end accept "2026-12-05T01:00:00" (wall clock in the window's zone); RFC 3339 date-time would not.
    assert '"date-time"' not in json.dumps(schedule_json_schema())


@pytest.mark.parametrize("seed", ["0", "1", "4242"])
def test_schema_is_the_same_whatever_the_hash_seed(seed: str) -> None:
    """New processes hash strings differently: no set or hash order may reach the printed schema,
    or the committed file would change with every regeneration."""
    printed = subprocess.run(
        [sys.executable, "-m", "esa_scheduler", "schema"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
        check=True,
        timeout=120,
    ).stdout
    assert printed == COMMITTED.read_text(encoding="utf-8"), f"PYTHONHASHSEED={seed} printed another schema"


def test_there_are_sample_schedules() -> None:
    assert _sample_files(), f"no .yaml files in {SCHEDULE_DIR}"


@pytest.mark.parametrize("path", _sample_files(), ids=lambda p: p.name)
def test_sample_schedules_point_at_the_committed_schema(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == SCHEMA_COMMENT, f"{path.name} must start with the line: {SCHEMA_COMMENT}"
    target = (path.parent / SCHEMA_COMMENT.split("$schema=", 1)[1]).resolve()
    assert target == COMMITTED.resolve()


@pytest.mark.parametrize("path", _sample_files(), ids=lambda p: p.name)
def test_sample_schedules_fit_the_top_level_model(path: Path) -> None:
    # The schema is generated from this model, so a sample that validates here fits the schema's shape.
    ScheduleFileSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
