"""The ``esa-scheduler`` command line: validate, plan, run, invoke, emulator, hold, schema.

Each sub-command parses its flags and hands off to the module that owns the concept; a
``UserError`` anywhere becomes its one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta

from esa_scheduler import __version__
from esa_scheduler.errors import UserError
from esa_scheduler.timeutil import now_utc, parse_duration, parse_instant


def _emulator(args: argparse.Namespace) -> int:
    from esa_scheduler.emulator import serve

    return serve(
        host=args.host,
        port=args.port,
        tasks_file=args.tasks,
        access_key_id=args.access_key_id,
        access_key_secret=args.access_key_secret,
        latency_ms=args.latency_ms,
        throttle_rps=args.throttle_rps,
        error_rate=args.error_rate,
        seed=args.seed,
    )


def _instant_arg(value: str | None, flag: str) -> datetime:
    if value is None:
        return now_utc()
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from exc


def _duration_arg(value: str, flag: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from exc


def _validate(args: argparse.Namespace) -> int:
    from esa_scheduler.diagnostics import schedule_warnings
    from esa_scheduler.schedule import default_schedule_path, load_schedule

    path = args.schedule or default_schedule_path()
    schedule = load_schedule(path)
    for line in schedule_warnings(schedule, now_utc()):
        print(line, file=sys.stderr)
    patterns = sum(1 for t in schedule.tasks if t.pattern)
    print(
        f"{path}: valid: {len(schedule.files)} file(s), {len(schedule.tasks)} task entries "
        f"({patterns} pattern(s)), {len(schedule.windows)} window(s), {len(schedule.incidents)} incident rule(s)"
    )
    return 0


def _plan(args: argparse.Namespace) -> int:
    from esa_scheduler.holds import HoldStore, state_dir
    from esa_scheduler.planner import Planner, TaskRef, managed_tasks
    from esa_scheduler.report import plan_text
    from esa_scheduler.schedule import load_schedule

    at = _instant_arg(args.at, "--at")
    horizon = _duration_arg(args.horizon, "--horizon")
    schedule = load_schedule(args.schedule)
    holds = HoldStore(state_dir(args.state_dir)).active(at, prune=False)
    planner = Planner(schedule, at, holds)
    plan = planner.decide(managed_tasks(schedule, [TaskRef(name) for name in args.task]))
    if args.json:
        print(json.dumps(plan.to_json()))
    else:
        print(plan_text(plan, planner, horizon))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, separate so tests and docs can inspect it."""
    parser = argparse.ArgumentParser(prog="esa-scheduler", description=__doc__)
    parser.add_argument("--version", action="version", version=f"esa-scheduler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check the schedule files and report every problem")
    validate.add_argument("--schedule", help="schedule file or folder (default: $ESA_SCHEDULE or schedule/)")
    validate.set_defaults(func=_validate)

    plan = sub.add_parser("plan", help="show the desired state of every managed task at an instant")
    plan.add_argument("--schedule", help="schedule file or folder (default: $ESA_SCHEDULE or schedule/)")
    plan.add_argument("--at", help="ISO 8601 instant with an offset or Z (default: now)")
    plan.add_argument("--task", action="append", default=[], metavar="NAME", help="add a task name to the inventory")
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.add_argument("--horizon", default="24h", help="timeline length for the text view (default 24h)")
    plan.add_argument("--state-dir", help="where incident holds live (default: $ESA_STATE_DIR or .esa-scheduler/)")
    plan.set_defaults(func=_plan)

    emu = sub.add_parser("emulator", help="serve a local ESA emulator on loopback until interrupted")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=0)
    emu.add_argument("--tasks", help="JSON list of tasks (TaskName, Status, ...) to seed")
    emu.add_argument("--access-key-id", default=None)
    emu.add_argument("--access-key-secret", default=None)
    emu.add_argument("--latency-ms", type=float, default=0.0)
    emu.add_argument("--throttle-rps", type=float, default=None)
    emu.add_argument("--error-rate", type=float, default=0.0)
    emu.add_argument("--seed", type=int, default=None)
    emu.set_defaults(func=_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UserError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code
