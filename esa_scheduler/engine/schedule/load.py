"""Reading schedule files: YAML safely, then each entry on its own, so one bad entry hides no other."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from esa_scheduler import config
from esa_scheduler.engine.calendars.spec import CalendarSpec
from esa_scheduler.engine.schedule.messages import as_written, describe, location, yaml_error
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.engine.schedule.resolve import ParsedFile, resolve
from esa_scheduler.engine.schedule.spec import (
    ExpectSpec,
    FileTopSpec,
    IncidentSpec,
    NotifySpec,
    TargetSpec,
    TaskSpec,
    WindowSpec,
)
from esa_scheduler.errors import ScheduleError
from esa_scheduler.files import FileRefused, read_bounded

MAX_FILE_BYTES = 1024 * 1024


class _ScheduleLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when available: faster, leaner), reporting bad dates by value and line."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as exc:
        message = f"invalid date {node.value!r}: {exc}"
        raise yaml.constructor.ConstructorError(None, None, message, node.start_mark) from exc


_ScheduleLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def schedule_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a ``--schedule`` argument names: one file, or every ``.yaml``/``.yml`` in a folder."""
    root = Path(path)
    if root.is_dir():
        # a FIFO or device named like a schedule file is read (and refused by name), not skipped
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and not p.is_dir())
        if not files:
            raise ScheduleError(f"{root}: no .yaml or .yml schedule files in this folder")
        return files
    if root.exists():
        return [root]
    raise ScheduleError(f"{root}: schedule file or folder not found")


def default_schedule_path() -> str:
    """``ESA_SCHEDULE``, else ``schedule/``."""
    return config.env(config.SCHEDULE, config.DEFAULT_SCHEDULE) or config.DEFAULT_SCHEDULE


def load_schedule(path: str | os.PathLike[str] | None = None, *, expectations: bool = False) -> Schedule:
    """Read, validate and resolve a schedule; raise ``ScheduleError`` listing every problem.

    ``expect:`` entries are read only with ``expectations`` (``validate``): they are claims for
    review, so ``plan``, ``run`` and the handler skip them and a malformed one cannot stop a run.
    """
    files = schedule_files(path if path is not None else default_schedule_path())
    problems: list[str] = []
    parsed = [spec for spec in (_parse_file(file, problems, expectations) for file in files) if spec is not None]
    schedule = resolve(parsed, problems)
    if problems or schedule is None:
        summary = f"{len(problems)} problem(s) in the schedule"
        raise ScheduleError(summary if len(problems) != 1 else problems[0], problems)
    return schedule


_SECTIONS: dict[str, type[BaseModel]] = {
    "tasks": TaskSpec,
    "windows": WindowSpec,
    "incidents": IncidentSpec,
    "notify": NotifySpec,
    "targets": TargetSpec,
}


def _parse_file(file: Path, problems: list[str], expectations: bool) -> ParsedFile | None:
    """Validate entry by entry, so one bad window does not hide the problems of the others."""
    try:
        text = read_bounded(file, MAX_FILE_BYTES, "schedule file").decode("utf-8")
    except FileRefused as exc:
        problems.append(str(exc))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{file}: cannot read: {exc}")
        return None
    try:
        raw = yaml.load(text, Loader=_ScheduleLoader)
    except yaml.YAMLError as exc:
        problems.append(f"{file}: {yaml_error(exc)}")
        return None
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise plain errors for values like 2027-02-30 or a bare !!int
        problems.append(f"{file}: YAML value could not be read: {exc or type(exc).__name__}")
        return None
    if raw is None:
        problems.append(f"{file}: the file is empty (expected a mapping with version: 1)")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{file}: the top level must be a mapping, not {type(raw).__name__}")
        return None
    top = dict(raw)
    if not expectations:
        top.pop("expect", None)
    sections: dict[str, type[BaseModel]] = {**_SECTIONS, "expect": ExpectSpec} if expectations else _SECTIONS
    entries = {key: _validate_section(model, key, raw, top, file, problems) for key, model in sections.items()}
    if raw.get("targets") == []:
        # an empty fleet would manage nothing at all; without the key the function's own account is managed
        problems.append(f"{file}: targets: empty list; omit the key to use the function's own account")
    calendars = _validate_calendars(raw, top, file, problems)
    try:
        spec = FileTopSpec.model_validate(top)
    except ValidationError as exc:
        problems.extend(f"{file}: {describe(err, raw)}" for err in exc.errors())
        return None
    return ParsedFile(
        str(file),
        spec,
        entries["tasks"],
        entries["windows"],
        entries["incidents"],
        entries["notify"],
        entries["targets"],
        entries.get("expect", []),
        calendars,
    )


def _validate_section(
    model: type[BaseModel], key: str, raw: dict[str, Any], top: dict[str, Any], file: Path, problems: list[str]
) -> list[tuple[int, Any]]:
    """The valid entries of the list ``raw[key]`` with their indexes; ``top`` keeps an empty list
    in its place, so the file's own model does not validate (and report) the entries again."""
    value = raw.get(key)
    if not isinstance(value, list):
        return []
    top[key] = []
    found = []
    for index, item in enumerate(value):
        entry = _validate_entry(model, item, (key, index), raw, file, problems)
        if entry is not None:
            found.append((index, entry))
    return found


def _validate_calendars(
    raw: dict[str, Any], top: dict[str, Any], file: Path, problems: list[str]
) -> dict[str, CalendarSpec | None]:
    """Each calendar on its own, so that one calendar's bad field hides no other problem; ``None`` for
    one that did not validate (its name stays defined: windows that name it are not told it is unknown).

    Unlike list entries, a calendar is not retried without its bad fields: without its ``dates``
    or ``country`` it would draw a misleading "give exactly one of" as well. Names that are not
    strings are left in ``top``, for the file model to report."""
    entries = raw.get("calendars")
    if not isinstance(entries, dict):
        return {}
    top["calendars"] = {name: item for name, item in entries.items() if not isinstance(name, str)}
    return {
        name: _validate_entry(CalendarSpec, item, ("calendars", name), raw, file, problems, retry=False)
        for name, item in entries.items()
        if isinstance(name, str)
    }


def _validate_entry(
    model: type[BaseModel],
    item: Any,
    prefix: tuple[str, int | str],
    raw: dict[str, Any],
    file: Path,
    problems: list[str],
    retry: bool = True,
) -> Any:
    """Validate one list (or map) entry; on field errors, report them and (with ``retry``) retry without
    those fields so the entry's other fields still get their semantic checks (the file is rejected
    either way)."""
    if not isinstance(item, dict):
        where = location(prefix, raw)
        required = [name for name, info in model.model_fields.items() if info.is_required()]
        fields = f" with {', '.join(required)}" if required else ""
        problems.append(f"{file}: {where}: must be a mapping{fields} (got {as_written(item)})")
        return None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        errors = exc.errors()
    problems.extend(f"{file}: {describe({**err, 'loc': (*prefix, *err['loc'])}, raw)}" for err in errors)
    if not retry:
        return None
    bad = {err["loc"][0] for err in errors if err["loc"]}
    try:
        return model.model_validate({k: v for k, v in item.items() if k not in bad})
    except ValidationError:
        return None
