"""The cold starts: what ``import handler`` and one timer event, or one alert to the intake, load and build.

A new Function Compute instance imports ``handler`` and serves its first event before it answers;
every module on that path and every pydantic model built on it is paid again by each cold start
(``make bench`` measures both against the official SDK's import: bench/coldstart_bench.py and
bench/intake_bench.py).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import endpoint_env, write_schedule
from pydantic import BaseModel

import esa_scheduler
from esa_scheduler.emulator import Emulator
from esa_scheduler.emulator.functions import FunctionBody

ROOT = Path(__file__).resolve().parent.parent
HANDLER_IMPORTS: frozenset[str] = frozenset()
"""The third-party top-level modules ``import handler`` loads: none, as FC imports it for either
function and each entry point imports its own path when first called."""
TIMER_EVENT_IMPORTS = HANDLER_IMPORTS | {
    "annotated_types",
    "croniter",
    "dateutil",
    "h11",
    "httpx",
    "idna",
    "pydantic",
    "pydantic_core",
    "six",
    "typing_extensions",
    "typing_inspection",
    "yaml",
}
"""What importing handler and serving a timer event load: pydantic (and what it needs) for the models,
yaml for the schedule, croniter (with dateutil and six) for its windows, and the HTTP stack, loaded
when the invocation connects to ESA (over HTTPS ``certifi`` joins them, for its CA bundle; the
emulator here is plain HTTP on loopback)."""
NEVER_ON_A_TIMER_EVENT = ("esa_scheduler.views", "esa_scheduler.emulator")
"""Pictures of plans and the local ESA: the CLI's, never the function's."""
NOTIFY = "esa_scheduler.invocation.notify"
CALENDAR_MODULES = (
    "esa_scheduler.engine.calendars.country",
    "esa_scheduler.engine.calendars.dates",
    "esa_scheduler.engine.calendars.ics",
    "holidays",
    "icalendar",
    "recurring_ical_events",
)
"""Loaded only for a schedule with calendars: the calendar kinds' modules and their libraries."""


def _models() -> list[type[BaseModel]]:
    """Every pydantic model the package defines (``__main__`` would run the CLI, so it is skipped)."""
    for module in pkgutil.walk_packages(esa_scheduler.__path__, "esa_scheduler."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found, pending = [], list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith("esa_scheduler."):
            found.append(model)
    return found


def test_every_model_is_built_when_first_used_not_when_imported() -> None:
    """A model's validator is built by its first validation (``defer_build``), so a model the timer
    path imports but a timer event never validates (a command event, the aliyun CLI's config file,
    the notify state) costs the cold start nothing."""
    models = _models()
    eager = sorted(f"{m.__module__}.{m.__qualname__}" for m in models if not m.model_config.get("defer_build"))
    assert len(models) > 30  # the walk found the package's models
    assert not eager, f"add defer_build=True to their model_config: {eager}"


def test_no_model_builds_its_validator_with_a_builtin_default_factory() -> None:
    """pydantic reads a default factory's signature as it builds a validator; a builtin's (``list``,
    ``dict``) is parsed from its text with tokenize, whose first use compiles a large regular
    expression, paid by the cold start that first validates such a model."""
    builtin = sorted(
        f"{model.__module__}.{model.__qualname__}.{name}"
        for model in _models()
        for name, field in model.model_fields.items()
        if getattr(field.default_factory, "__module__", None) == "builtins"
    )
    assert not builtin, (
        f"{builtin} have a builtin default_factory: give a plain default ([] or {{}}, which pydantic copies), "
        "or, in a spec of the schedule's JSON schema, engine/calendars/spec.py's empty_list or empty_dict"
    )


# --------------------------------------------------------------------------- what the cold start loads

PROBE = """\
import gc, json, sys, types
before = set(sys.modules)
import handler
imported = [name for name, module in sys.modules.items() if module is not None and name not in before]
summary = None
if sys.argv[1] == "serve":
    function = types.SimpleNamespace(name="esa-scheduler", timeout=60)
    context = types.SimpleNamespace(request_id="cold", function=function, region=None)
    summary = handler.handler(b'{"triggerTime": "2027-01-04T03:30:00Z", "triggerName": "tick"}', context)
elif sys.argv[1] == "intake":
    function = types.SimpleNamespace(name="esa-scheduler-intake", timeout=10)
    context = types.SimpleNamespace(request_id="cold", function=function, region="cn-hangzhou", account_id="1")
    summary = json.loads(handler.intake(open(sys.argv[2], "rb").read(), context)["body"])
loaded = [name for name, module in sys.modules.items() if module is not None and name not in before]
collector = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
print(json.dumps({"imported": sorted(imported), "loaded": sorted(loaded), "summary": summary, "gc": collector}))
"""
"""Runs in a new interpreter: what ``import handler`` (and, with ``serve``, one timer event; with
``intake``, one HTTP trigger event read from a file) adds to ``sys.modules``; ``None`` entries are
imports marked absent, not loaded."""


def _probe(mode: str, schedule: Path, url: str, tmp_path: Path, *args: str, **env_vars: str) -> dict[str, Any]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ALIBABA_CLOUD_", "ESA_"))}
    env.update(endpoint_env(url), PYTHONPATH=str(ROOT), ESA_SCHEDULE=str(schedule), HOME=str(tmp_path))
    env.update(env_vars, ESA_STATE_DIR=str(tmp_path / "state"))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, *args], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def _third_party(names: list[str]) -> set[str]:
    """Top-level names outside the standard library and the project. Cython's runtime modules
    (``cython_runtime``, ``_cython_3_x``) come with a compiled extension (PyYAML's) and are named by
    Cython's version; ``_sysconfigdata_*`` is the standard library's, named by the platform."""
    tops = {name.split(".")[0] for name in names}
    ours = {"esa_scheduler", "handler", "cython_runtime"}
    return {
        top for top in tops - set(sys.stdlib_module_names) - ours if not top.startswith(("_cython_", "_sysconfigdata_"))
    }


PLAIN = """\
    version: 1
    timezone: UTC
    tasks:
      - name: access-logs-prod
    windows:
      - name: nightly
        tasks: [access-logs-prod]
        cron: "0 3 * * *"
        duration: 1h
"""
WITH_NOTIFY_AND_CALENDARS = (
    PLAIN.replace("duration: 1h", "duration: 1h\n        skip: [de]")
    + """\
      - name: ops-events
        tasks: [access-logs-prod]
        calendar: ops
    calendars:
      de: {country: DE}
      ops: {ics: ops.ics}
    notify:
      - {name: ops, kind: webhook, url_env: UNSET_HOOK_URL}
"""
)
ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:a@ops\r\nSUMMARY:ESA\r\n"
ICS += "DTSTART:20270601T100000Z\r\nDTEND:20270601T110000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"


@pytest.fixture
def emulator() -> Any:
    with Emulator(tasks=[{"TaskName": "access-logs-prod", "Status": "online"}]) as running:
        yield running


def test_import_handler_loads_no_third_party_module_off_the_allow_list(emulator: Emulator, tmp_path: Path) -> None:
    schedule = write_schedule(tmp_path, PLAIN)
    imported = _third_party(_probe("import", schedule, emulator.url, tmp_path)["imported"])
    joined, gone = sorted(imported - HANDLER_IMPORTS), sorted(HANDLER_IMPORTS - imported)
    assert not joined, (
        f"`import handler` now also loads {joined}: every Function Compute cold start pays for it (make bench "
        "shows by how much). Import it where it is used, or, if the timer path needs it at import, add it to "
        "HANDLER_IMPORTS in tests/test_coldstart.py"
    )
    assert not gone, f"`import handler` no longer loads {gone}: remove them from HANDLER_IMPORTS"


def test_a_timer_event_loads_only_the_http_stack_more(emulator: Emulator, tmp_path: Path) -> None:
    schedule = write_schedule(tmp_path, PLAIN)
    probe = _probe("serve", schedule, emulator.url, tmp_path)
    assert probe["summary"]["ok"] and probe["summary"]["counts"]["updated"] == 1, probe["summary"]
    loaded = _third_party(probe["loaded"])
    joined, gone = sorted(loaded - TIMER_EVENT_IMPORTS), sorted(TIMER_EVENT_IMPORTS - loaded)
    assert not joined, (
        f"serving a timer event now also loads {joined}: every Function Compute cold start pays for it "
        "(make bench shows by how much). Load it only for the schedules that need it, or add it to "
        "TIMER_EVENT_IMPORTS in tests/test_coldstart.py"
    )
    assert not gone, f"serving a timer event no longer loads {gone}: remove them from TIMER_EVENT_IMPORTS"


@pytest.mark.parametrize("uses", ["nothing", "notify-and-calendars"])
def test_a_timer_event_loads_notify_and_calendars_only_for_a_schedule_that_uses_them(
    emulator: Emulator, tmp_path: Path, uses: str
) -> None:
    (tmp_path / "ops.ics").write_text(ICS, encoding="utf-8")
    schedule = write_schedule(tmp_path, PLAIN if uses == "nothing" else WITH_NOTIFY_AND_CALENDARS)
    probe = _probe("serve", schedule, emulator.url, tmp_path)
    assert probe["summary"]["counts"]["updated"] == 1, probe["summary"]
    loaded = set(probe["loaded"])
    never = sorted(name for name in loaded if name.startswith(NEVER_ON_A_TIMER_EVENT))
    assert not never, f"a timer event loaded {never}"
    notify = sorted(name for name in loaded if name.startswith(NOTIFY))
    calendars = sorted(name for name in CALENDAR_MODULES if name in loaded)
    if uses == "nothing":
        assert (notify, calendars) == ([], [])
    else:  # the same probe sees them when the schedule does use them
        assert "esa_scheduler.invocation.notify.dispatch" in notify
        assert calendars == sorted(CALENDAR_MODULES)


CLI_PROBE = """\
import json, sys
from esa_scheduler.cli.app import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": sorted(sys.modules)}))
"""
"""Runs in a new interpreter: one CLI command, and every module loaded by then."""


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_load_no_calendar_module_for_a_schedule_without_calendars(
    tmp_path: Path, command: str
) -> None:
    """Their warnings look at the calendars in use: a schedule with none does not load the calendar
    kinds' modules to find that out."""
    schedule = write_schedule(tmp_path, PLAIN)
    argv = [command, "--schedule", str(schedule), "--at", "2027-01-04T00:00:00Z"]
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ALIBABA_CLOUD_", "ESA_"))}
    env.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path), ESA_STATE_DIR=str(tmp_path / "state"))
    out = subprocess.run(
        [sys.executable, "-c", CLI_PROBE, *argv], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    probe = json.loads(out.stdout.splitlines()[-1])
    assert probe["code"] == 0, out.stdout
    assert sorted(name for name in CALENDAR_MODULES if name in probe["loaded"]) == []


def test_pydantic_looks_for_no_plugins_on_a_timer_event_and_the_package_installs_none(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The entry points stand in for pydantic's plugin loader, so a cold start skips importlib.metadata
    and the scan of every installed distribution; a plugin the requirements brought in would be
    ignored by the function, so none may be installed."""
    probe = _probe("serve", write_schedule(tmp_path, PLAIN), emulator.url, tmp_path)
    assert probe["summary"]["counts"]["updated"] == 1, probe["summary"]
    assert "importlib.metadata" not in probe["loaded"]
    plugins = sorted(entry.value for entry in importlib.metadata.entry_points(group="pydantic"))
    assert not plugins, f"{plugins} are pydantic plugins, which the entry points' stand-in for their loader ignores"


def test_a_timer_event_freezes_what_its_import_made_and_collects_garbage_again(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The import of the timer path runs with the collector paused; what it made is frozen, left out
    of every later collection (esa_scheduler/entrypoints.py's ``load_path``), and the collector runs again after it."""
    probe = _probe("serve", write_schedule(tmp_path, PLAIN), emulator.url, tmp_path)
    assert probe["summary"]["counts"]["updated"] == 1, probe["summary"]
    assert probe["gc"]["enabled"]
    assert probe["gc"]["frozen"] > 10_000, probe["gc"]


def test_a_timer_event_loads_no_command_cloudevent_or_alert_module(emulator: Emulator, tmp_path: Path) -> None:
    """The event reader loads the modules of commands, CloudEvents and alerts with the first such event."""
    probe = _probe("serve", write_schedule(tmp_path, PLAIN), emulator.url, tmp_path)
    assert probe["summary"]["counts"]["updated"] == 1, probe["summary"]
    others = [f"esa_scheduler.invocation.events.{name}" for name in ("alerts", "commands", "incidents")]
    assert not [name for name in others if name in probe["loaded"]]
    assert "esa_scheduler.invocation.events.reader" in probe["loaded"]


INTAKE_ALERT_IMPORTS = frozenset(
    {
        "annotated_types",
        "h11",
        "httpx",
        "idna",
        "pydantic",
        "pydantic_core",
        "typing_extensions",
        "typing_inspection",
        "yaml",
    }
)
"""What importing handler and answering a first CloudMonitor alert load: pydantic and yaml for the
schedule, the HTTP stack for the reconcile's dispatch to FC (croniter only with a cron window)."""
NEVER_ON_AN_ALERT = (
    "esa_scheduler.emulator",
    "esa_scheduler.engine.planner",
    "esa_scheduler.invocation.events",
    "esa_scheduler.invocation.intake.chat",
    "esa_scheduler.invocation.intake.dingtalk",
    "esa_scheduler.invocation.notify",
    "esa_scheduler.invocation.reconciler",
    "esa_scheduler.views",
)
"""The scheduler's event reader, planner and reconciler, the chat route, notifications, the CLI's views
and the local ESA: an alert's answer needs none of them."""
ALERTING = """\
    version: 1
    timezone: UTC
    tasks:
      - pattern: "access-*"
    incidents:
      - name: origin-errors
        alert: {source: cloudmonitor, name: "origin-5xx*"}
        tasks: ["access-*"]
        ttl: 2h
    intake:
      token_env: ESA_INTAKE_TOKEN
"""


def test_an_intake_alert_loads_only_the_allowed_third_party_modules_and_none_of_the_scheduler(tmp_path: Path) -> None:
    event = ROOT / "events" / "intake-cloudmonitor-alert.json"
    token = json.loads(event.read_text())["queryParameters"]["token"]
    scheduler: dict[str, FunctionBody] = {"esa-scheduler": lambda event: {}}
    with Emulator(tasks=[{"TaskName": "access-logs-prod", "Status": "online"}], functions=scheduler) as fc:
        env = {"ESA_INTAKE_TOKEN": token, "ESA_SCHEDULER_FUNCTION": "esa-scheduler", "ESA_FC_ENDPOINT": fc.url}
        probe = _probe("intake", write_schedule(tmp_path, ALERTING), fc.url, tmp_path, str(event), **env)
        assert probe["summary"]["reconcile"] == "dispatched", probe["summary"]
        assert len(fc.wait_for_invocations(1, timeout=30)) == 1
    loaded = _third_party(probe["loaded"])
    joined, gone = sorted(loaded - INTAKE_ALERT_IMPORTS), sorted(INTAKE_ALERT_IMPORTS - loaded)
    assert not joined, (
        f"answering an alert now also loads {joined}: every cold start of the intake pays for it (make bench "
        "shows by how much). Load it only where it is used, or add it to INTAKE_ALERT_IMPORTS"
    )
    assert not gone, f"answering an alert no longer loads {gone}: remove them from INTAKE_ALERT_IMPORTS"
    never = sorted(name for name in probe["loaded"] if name.startswith(NEVER_ON_AN_ALERT))
    assert not never, f"an alert's answer loaded {never}"


def test_an_intake_answer_that_dispatches_nothing_loads_no_http_client(tmp_path: Path) -> None:
    """The FC client (asyncio, httpx, h11) loads with the first reconcile to dispatch: a refusal does not."""
    event = json.loads((ROOT / "events" / "intake-cloudmonitor-alert.json").read_text())
    event["queryParameters"]["token"] = "not-the-intake-token"
    (tmp_path / "event.json").write_text(json.dumps(event))
    fc = "http://127.0.0.1:9"  # never called: nothing is dispatched
    env = {"ESA_INTAKE_TOKEN": "the-intake-token", "ESA_SCHEDULER_FUNCTION": "esa-scheduler", "ESA_FC_ENDPOINT": fc}
    probe = _probe("intake", write_schedule(tmp_path, ALERTING), fc, tmp_path, str(tmp_path / "event.json"), **env)
    assert probe["summary"] == {"ok": False, "error": "unauthorized"}
    client = ("asyncio", "h11", "httpx", "esa_scheduler.edge.acs", "esa_scheduler.edge.fc_invoke")
    assert not sorted(name for name in probe["loaded"] if name.split(".")[0] in client or name in client)
    assert "esa_scheduler.invocation.intake.dispatch" in probe["loaded"]
