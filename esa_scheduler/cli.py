"""The ``esa-scheduler`` command line: validate, plan, run, invoke, emulator, hold, schema.

Each sub-command parses its flags and hands off to the module that owns the concept; a
``UserError`` anywhere becomes its one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from esa_scheduler import __version__
from esa_scheduler.errors import UserError
from esa_scheduler.timeutil import now_utc, parse_duration, parse_instant

if TYPE_CHECKING:
    from esa_scheduler.emulator import Emulator
    from esa_scheduler.function import Target
    from esa_scheduler.reconciler import RunSummary


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


def _embedded_target(schedule_path: str | None, forced: bool) -> tuple[Target, Emulator | None]:
    """With ``--emulator``, or no endpoint and no credentials anywhere, run against a seeded local emulator."""
    from esa_scheduler import config
    from esa_scheduler.credentials import Credentials, has_configured_credentials
    from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
    from esa_scheduler.function import Target
    from esa_scheduler.schedule import load_schedule

    if not forced and (config.env(config.ENDPOINT) or has_configured_credentials()):
        return Target(), None
    schedule = load_schedule(schedule_path)
    seed = [{"TaskName": t.name, "Status": "online", "SiteId": t.site_id} for t in schedule.explicit_tasks if t.name]
    emulator = Emulator(tasks=seed).start()
    why = "--emulator" if forced else "no ESA endpoint or credentials configured"
    print(
        f"{why}: using the embedded ESA emulator at {emulator.url} "
        f"seeded with {len(seed)} task(s) from the schedule, all online",
        file=sys.stderr,
    )
    creds = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, source="embedded-emulator")
    return Target(emulator.url, creds), emulator


def _print_run(summary: RunSummary, as_json: bool) -> None:
    from esa_scheduler.report import run_text

    print(json.dumps(summary.to_json()) if as_json else run_text(summary))


def _run(args: argparse.Namespace) -> int:
    from esa_scheduler.function import execute

    if args.deadline is not None and not (math.isfinite(args.deadline) and args.deadline > 0):
        raise UserError(f"--deadline: {args.deadline} must be a positive number of seconds")

    command: dict[str, object] = {"action": "reconcile", "dry_run": args.dry_run, "force": args.force}
    if args.at:
        command["at"] = args.at
    target, emulator = _embedded_target(args.schedule, args.emulator)
    try:
        summary = execute(
            command,
            target=target,
            schedule_path=args.schedule,
            state=args.state_dir,
            budget_s=args.deadline,
            stream=sys.stderr,
        )
    finally:
        if emulator is not None:
            emulator.stop()
    _print_run(summary, args.json)
    return 1 if summary.failed else 0


def _invoke(args: argparse.Namespace) -> int:
    from esa_scheduler.fc_context import load_context
    from esa_scheduler.function import RunFailed, execute, fail_on_error

    try:
        body = Path(args.event_file).read_bytes()
    except OSError as exc:
        raise UserError(f"{args.event_file}: cannot read event file: {exc.strerror}") from exc
    context = load_context(args.context)
    summary = execute(body, context, stream=sys.stderr)
    print(json.dumps(summary.to_json()))
    if summary.failed and fail_on_error():
        print(RunFailed(summary), file=sys.stderr)
        return 1
    return 0


def _hold(args: argparse.Namespace) -> int:
    from esa_scheduler.hold_commands import add, list_holds, release

    commands = {"add": add, "list": list_holds, "release": release}
    return commands[args.hold_command](args)


def _notify(args: argparse.Namespace) -> int:
    import os

    from esa_scheduler.logs import RunLog
    from esa_scheduler.notify.dispatch import send_test

    delivery, line = send_test(args.name, args.schedule, os.environ, RunLog(stream=sys.stderr))
    print(line)
    return 0 if delivery.ok else 1


def _schema(args: argparse.Namespace) -> int:
    from esa_scheduler.schema import schedule_json_schema

    print(json.dumps(schedule_json_schema(), indent=2))
    return 0


SCHEDULE_HELP = "schedule file or folder (default: $ESA_SCHEDULE or schedule/)"
STATE_HELP = "where incident holds live (default: $ESA_STATE_DIR or .esa-scheduler/)"


def _add_schedule_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = sub.add_parser("validate", help="check the schedule files and report every problem")
    validate.add_argument("--schedule", help=SCHEDULE_HELP)
    validate.set_defaults(func=_validate)

    plan = sub.add_parser("plan", help="show the desired state of every managed task at an instant")
    plan.add_argument("--schedule", help=SCHEDULE_HELP)
    plan.add_argument("--at", help="ISO 8601 instant with an offset or Z (default: now)")
    plan.add_argument(
        "--task", action="extend", nargs="+", default=[], metavar="NAME", help="add task names to the inventory"
    )
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.add_argument("--horizon", default="24h", help="timeline length for the text view (default 24h)")
    plan.add_argument("--state-dir", help=STATE_HELP)
    plan.set_defaults(func=_plan)

    schema = sub.add_parser("schema", help="print the JSON Schema of a schedule file")
    schema.set_defaults(func=_schema)


def _add_run_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="reconcile ESA with the schedule once (embedded emulator if unconfigured)")
    run.add_argument("--schedule", help=SCHEDULE_HELP)
    run.add_argument("--at", help="evaluate at this ISO 8601 instant (default: now)")
    run.add_argument("--dry-run", action="store_true", help="decide and log everything, change nothing")
    run.add_argument("--force", action="store_true", help="override the schedule's safety limits")
    run.add_argument("--json", action="store_true", help="print the run summary as one JSON object")
    run.add_argument("--deadline", type=float, help="seconds after which no new ESA call starts")
    run.add_argument("--state-dir", help=STATE_HELP)
    run.add_argument("--emulator", action="store_true", help="use the embedded ESA emulator even if ESA is configured")
    run.set_defaults(func=_run)

    invoke = sub.add_parser("invoke", help="run the FC handler on an event file, exactly as FC would")
    invoke.add_argument("event_file", metavar="EVENT_FILE")
    invoke.add_argument("--context", help="JSON file with request_id, function {name, timeout}, region, credentials")
    invoke.set_defaults(func=_invoke)


def _add_hold_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hold = sub.add_parser("hold", help="add, list or release incident holds")
    hold_sub = hold.add_subparsers(dest="hold_command", required=True)
    add = hold_sub.add_parser("add", help="hold tasks in a state until a TTL or an instant")
    add.add_argument("--task", action="extend", nargs="+", required=True, metavar="NAME_OR_GLOB", dest="tasks")
    add.add_argument("--status", choices=["online", "offline"], default="offline")
    add.add_argument("--reason", required=True)
    expiry = add.add_mutually_exclusive_group(required=True)
    expiry.add_argument("--ttl", help="how long, e.g. 2h or PT30M")
    expiry.add_argument("--until", help="ISO 8601 instant with an offset or Z")
    add.add_argument("--id", help="hold id (default: generated)")
    add.add_argument("--by", default="", help="who asked for it")
    listing = hold_sub.add_parser("list", help="show the holds in force")
    listing.add_argument("--json", action="store_true")
    release = hold_sub.add_parser("release", help="end holds by id or by task")
    which = release.add_mutually_exclusive_group(required=True)
    which.add_argument("--id")
    which.add_argument("--task", action="extend", nargs="+", metavar="NAME_OR_GLOB", dest="tasks")
    for command in (add, listing, release):
        command.add_argument("--schedule", help=SCHEDULE_HELP)
        command.add_argument("--state-dir", help=STATE_HELP)
    hold.set_defaults(func=_hold)


def _add_emulator_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, separate so tests and docs can inspect it."""
    parser = argparse.ArgumentParser(prog="esa-scheduler", description=__doc__)
    parser.add_argument("--version", action="version", version=f"esa-scheduler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_schedule_commands(sub)
    _add_run_commands(sub)
    _add_hold_commands(sub)
    _add_emulator_command(sub)
    notify = sub.add_parser("notify", help="check a notification target")
    test = notify.add_subparsers(dest="notify_command", required=True).add_parser(
        "test", help="send a test message to the notify target NAME and print the service's answer"
    )
    test.add_argument("name", metavar="NAME")
    test.add_argument("--schedule", help=SCHEDULE_HELP)
    test.set_defaults(func=_notify)
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
