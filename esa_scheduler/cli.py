"""The ``esa-scheduler`` command line: validate, plan, run, invoke, serve, emulator, hold, schema.

Each sub-command parses its flags and hands off to the module that owns the concept; a
``UserError`` anywhere becomes its one-line message on stderr and exit code 2. The help texts
are written for operators here, never taken from these docstrings.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from esa_scheduler import __version__, config
from esa_scheduler.errors import UserError, close_hint, close_matches
from esa_scheduler.logs import LOG_FORMATS, forget_secret, log_format, masked_stdio, register_secret
from esa_scheduler.timeutil import now_to_the_second, parse_duration, parse_instant, utc_iso

if TYPE_CHECKING:
    from esa_scheduler.engine.holds import Hold
    from esa_scheduler.engine.planner import TaskRef
    from esa_scheduler.engine.schedule.model import Schedule

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def _emulator(args: argparse.Namespace) -> int:
    from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_SECRET, serve

    # its export lines show the public test secret, also when pasted before; an operator's own is masked
    forget_secret(EMULATOR_ACCESS_KEY_SECRET)
    register_secret(args.access_key_secret)
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
        return now_to_the_second()
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
    from esa_scheduler.engine.diagnostics import schedule_warnings
    from esa_scheduler.engine.expectations import failed_expectations
    from esa_scheduler.engine.schedule.load import default_schedule_path, load_schedule

    at = _instant_arg(args.at, "--at")
    path = args.schedule or default_schedule_path()
    schedule = load_schedule(path, expectations=True)
    for line in schedule_warnings(schedule, at):
        print(line, file=sys.stderr)
    failures = failed_expectations(schedule)
    if failures:
        summary = f"{path}: {len(failures)} expectation(s) failed, {len(schedule.expectations) - len(failures)} hold"
        raise UserError(summary, [*failures, summary])
    patterns = sum(1 for t in schedule.tasks if t.pattern)
    print(
        f"{path}: valid: {len(schedule.files)} file(s), {len(schedule.tasks)} task entries "
        f"({patterns} pattern(s)), {len(schedule.windows)} window(s), {len(schedule.incidents)} incident rule(s), "
        f"{len(schedule.expectations)} expectation(s) hold"
    )
    return 0


def _plan(args: argparse.Namespace) -> int:
    from esa_scheduler.engine.diagnostics import calendar_warnings
    from esa_scheduler.engine.planner import SEARCH_HORIZON, Planner, TaskRef, managed_tasks
    from esa_scheduler.engine.schedule.load import load_schedule
    from esa_scheduler.invocation.holds import HoldStore, state_dir
    from esa_scheduler.views.tables import plan_text

    at = _instant_arg(args.at, "--at")
    horizon = _duration_arg(args.horizon, "--horizon")
    schedule = load_schedule(args.schedule)
    _check_task_names(schedule, args.task)
    for line in calendar_warnings(schedule, at, at + SEARCH_HORIZON):
        print(line, file=sys.stderr)
    holds = HoldStore(state_dir(args.state_dir)).active(at, prune=False)
    targets = _chosen_targets(schedule, args.target, views=bool(args.html or args.ics))
    if args.target is not None:
        from esa_scheduler.engine.targets import holds_for, project

        schedule, holds = project(schedule, args.target), list(holds_for(holds, args.target))
    if args.html or args.ics:
        return _write_views(args, schedule, at, holds)
    inventory = [TaskRef(name) for name in args.task]
    if targets:
        return _plan_fleet(args, schedule, targets, at, holds, inventory, horizon)
    planner = Planner(schedule, at, holds)
    plan = planner.decide(managed_tasks(schedule, inventory))
    if args.json:
        print(json.dumps(plan.to_json()))
    else:
        print(plan_text(plan, planner, horizon))
    return 0


def _check_task_names(schedule: Schedule, names: Sequence[str]) -> None:
    """A ``--task`` the schedule would not manage would silently drop out of the plan: name it instead."""
    for name in names:
        if not schedule.is_managed_name(name):
            hint = close_hint(close_matches(name, schedule.task_entries))
            raise UserError(f"--task: {name!r} is neither a managed task nor matched by a task pattern{hint}")


def _chosen_targets(schedule: Schedule, name: str | None, *, views: bool) -> tuple[str, ...]:
    """The fleet targets ``plan`` shows: ``--target`` or all; a view (HTML, ICS) shows one target."""
    from esa_scheduler.engine.targets import unknown_target

    names = tuple(t.name for t in schedule.targets)
    problem = unknown_target(name, schedule.targets)
    if problem is not None:
        raise UserError(f"--target: {problem}")
    if views and names and name is None:
        raise UserError(f"--html/--ics: the schedule has targets; choose one with --target ({', '.join(names)})")
    return (name,) if name is not None else names


def _plan_fleet(
    args: argparse.Namespace,
    schedule: Schedule,
    targets: Sequence[str],
    at: datetime,
    holds: Sequence[Hold],
    inventory: Sequence[TaskRef],
    horizon: timedelta,
) -> int:
    """One plan per target (what that target's invocation would decide); rows carry the target."""
    from esa_scheduler.engine.planner import Planner, managed_tasks
    from esa_scheduler.engine.targets import holds_for, project
    from esa_scheduler.views.tables import plan_text

    rows: list[dict[str, object]] = []
    texts: list[str] = []
    for name in targets:
        scoped = project(schedule, name)
        planner = Planner(scoped, at, holds_for(holds, name))
        plan = planner.decide(managed_tasks(scoped, inventory))
        rows.extend({"target": name, **d.to_json()} for d in plan.decisions)
        texts.append(plan_text(plan, planner, horizon, target=name))
    print(json.dumps({"at": utc_iso(at), "tasks": rows}) if args.json else "\n\n".join(texts))
    return 0


def _write_views(args: argparse.Namespace, schedule: Schedule, at: datetime, holds: Sequence[Hold]) -> int:
    """``plan --html`` / ``--ics``: write the files (the CLI only: these modules never load on the timer path)."""
    if not 1 <= args.days <= MAX_VIEW_DAYS:
        raise UserError(f"--days: {args.days} must be a whole number of days from 1 to {MAX_VIEW_DAYS}")
    from esa_scheduler.engine.schedule.load import default_schedule_path

    path = args.schedule or default_schedule_path()
    views: list[tuple[str, str]] = []
    if args.html:
        from esa_scheduler.views.html import render_html

        views.append((args.html, render_html(path, schedule, at, args.days, args.task, holds)))
    if args.ics:
        from esa_scheduler.views.ics import render_ics

        views.append((args.ics, render_ics(path, schedule, at, args.days, args.task, holds, args.target)))
    for file, text in views:
        try:
            Path(file).write_bytes(text.encode("utf-8"))
        except OSError as exc:
            raise UserError(f"{file}: cannot write: {exc.strerror}") from exc
        print(f"wrote {file} ({args.days} day(s) from {utc_iso(at)})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from esa_scheduler.run_commands import run

    return run(args)


def _invoke(args: argparse.Namespace) -> int:
    if args.handler == "intake":
        from esa_scheduler.intake_commands import invoke_intake

        return invoke_intake(args)
    if args.at is not None:
        raise UserError("--at: only with --handler intake (the scheduler's events carry their own instant)")
    from esa_scheduler.run_commands import invoke

    return invoke(args)


def _serve(args: argparse.Namespace) -> int:
    from esa_scheduler.intake_commands import serve

    return serve(args)


def _hold(args: argparse.Namespace) -> int:
    from esa_scheduler.hold_commands import add, list_holds, release

    commands = {"add": add, "list": list_holds, "release": release}
    return commands[args.hold_command](args)


def _notify(args: argparse.Namespace) -> int:
    import os

    from esa_scheduler.engine.schedule.load import default_schedule_path
    from esa_scheduler.invocation.notify.dispatch import send_tests
    from esa_scheduler.logs import RunLog

    sent = send_tests(args.name, args.schedule, os.environ, RunLog(stream=sys.stderr))
    if not sent:  # nothing to test is not a failure: a newcomer's schedule has no targets yet
        path = args.schedule or default_schedule_path()
        print(f"{path}: no notify targets to test; add a notify: entry to the schedule (see docs/notifications.md)")
        return 0
    for _, line in sent:
        print(line)
    return 0 if all(delivery.ok for delivery, _ in sent) else 1


def _schema(args: argparse.Namespace) -> int:
    from esa_scheduler.engine.schema import schedule_json_schema

    print(json.dumps(schedule_json_schema(), indent=2))
    return 0


MAX_VIEW_DAYS = 366
SCHEDULE_HELP = "schedule file or folder (default: $ESA_SCHEDULE or schedule/)"
STATE_HELP = "where incident holds live (default: $ESA_STATE_DIR or .esa-scheduler/)"
DESCRIPTION = "Keep Alibaba Cloud ESA log-delivery tasks online or offline on a schedule."
EPILOG = (
    "Run `esa-scheduler COMMAND --help` for the options of a command. "
    "Exit codes: 0 ok, 1 a run failed or was blocked, 2 bad input or configuration."
)


def _log_format_option() -> argparse.ArgumentParser:
    """The ``--log-format`` flag, shared by every command that writes log lines."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="auto",
        help="log lines on stderr: short text lines on a terminal and JSON lines otherwise (auto, the default), "
        "or always json or text",
    )
    return parent


def _command(
    sub: Subcommands, name: str, summary: str, description: str, *, logs: bool = False
) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` opens with its one-line summary, then what an operator needs to know."""
    parents = [_log_format_option()] if logs else []
    return sub.add_parser(
        name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. {description}", parents=parents
    )


def _add_schedule_commands(sub: Subcommands) -> None:
    validate = _command(
        sub,
        "validate",
        "check the schedule files and report every problem",
        "Exit 0 with a one-line summary (warnings about windows that never occur or overlap in the 400 days "
        "from --at, and about calendar years the holidays library does not know yet, go to stderr), "
        "or exit 2 with one line per problem naming the file, the entry and the field.",
    )
    validate.add_argument("--schedule", metavar="PATH", help=SCHEDULE_HELP)
    validate.add_argument(
        "--at", metavar="ISO", help="warn about the 400 days from this ISO 8601 instant (default: now)"
    )
    validate.set_defaults(func=_validate)

    plan = _command(
        sub,
        "plan",
        "show the desired state of every managed task at an instant",
        "For each task: online or offline, why (a window, a hold or the default) and when it next changes, "
        "as a table with a timeline or as one JSON object. Nothing is sent to ESA. Calendar years the "
        "holidays library does not know yet are warned about on stderr.",
    )
    plan.add_argument("--schedule", metavar="PATH", help=SCHEDULE_HELP)
    plan.add_argument("--at", metavar="ISO", help="ISO 8601 instant with an offset or Z (default: now)")
    plan.add_argument(
        "--task", action="extend", nargs="+", default=[], metavar="NAME", help="add task names to the inventory"
    )
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.add_argument(
        "--horizon", default="24h", metavar="DURATION", help="timeline length for the text view (default 24h)"
    )
    plan.add_argument("--state-dir", metavar="DIR", help=STATE_HELP)
    plan.add_argument("--html", metavar="FILE", help="write a self-contained HTML timeline of the coming days")
    plan.add_argument("--ics", metavar="FILE", help="write an iCalendar (RFC 5545) feed of the coming state changes")
    plan.add_argument("--days", type=int, default=7, metavar="N", help="days shown by --html / --ics (default 7)")
    plan.add_argument(
        "--target", metavar="NAME", help="only this fleet target (schedules with targets:); required with --html/--ics"
    )
    plan.set_defaults(func=_plan)

    schema = _command(
        sub,
        "schema",
        "print the JSON Schema of a schedule file",
        "Point your editor's YAML language server at it to get completion and checks while you write a schedule.",
    )
    schema.set_defaults(func=_schema)


def _add_run_commands(sub: Subcommands) -> None:
    run = _command(
        sub,
        "run",
        "reconcile ESA with the schedule once",
        "Lists the managed tasks in ESA and changes only those whose status differs from the schedule. "
        "The result goes to stdout, log lines to stderr. With no ESA endpoint and no credentials configured "
        "(or with --emulator) it runs against an embedded ESA emulator and says so.",
        logs=True,
    )
    run.add_argument("--schedule", metavar="PATH", help=SCHEDULE_HELP)
    run.add_argument("--at", metavar="ISO", help="evaluate at this ISO 8601 instant (default: now)")
    run.add_argument("--dry-run", action="store_true", help="decide and log everything, change nothing")
    run.add_argument("--force", action="store_true", help="override the schedule's safety limits")
    run.add_argument("--json", action="store_true", help="print the run summary as one JSON object")
    run.add_argument(
        "--deadline",
        type=float,
        metavar="SECONDS",
        help="the run's time limit, as FC's timeout is the function's: no new ESA call starts after 90%% of it "
        "(keeping 5 to 30 s, at most half, for calls in flight), and the run is over by then plus one read timeout",
    )
    run.add_argument("--state-dir", metavar="DIR", help=STATE_HELP)
    run.add_argument("--emulator", action="store_true", help="use the embedded ESA emulator even if ESA is configured")
    run.set_defaults(func=_run)

    invoke = _command(
        sub,
        "invoke",
        "run the Function Compute handler on an event file, as Function Compute would",
        "Prints the handler's result as one JSON object; exit 1 if the run failed (unless ESA_FAIL_ON_ERROR=false). "
        "With no ESA endpoint and no credentials configured (in the environment, the credential files or the "
        "--context file), or with --emulator, it runs against an embedded ESA emulator and says so.",
        logs=True,
    )
    invoke.add_argument("event_file", metavar="EVENT_FILE", help="the event, as JSON (see events/ for examples)")
    invoke.add_argument(
        "--context", metavar="FILE", help="JSON file with request_id, function {name, timeout}, region, credentials"
    )
    invoke.add_argument("--schedule", metavar="PATH", help=SCHEDULE_HELP)
    invoke.add_argument("--state-dir", metavar="DIR", help=STATE_HELP)
    invoke.add_argument(
        "--emulator", action="store_true", help="use the embedded ESA emulator even if ESA is configured"
    )
    invoke.add_argument(
        "--handler",
        choices=["handler", "intake"],
        default="handler",
        help="handler.handler (default: timer, commands, CloudEvents) or handler.intake (an HTTP trigger event: "
        "the response on stdout, then the reconcile it asks for, in process; exit 1 for an answer other than 2xx)",
    )
    invoke.add_argument("--at", metavar="ISO", help="with --handler intake: the instant taken for now (default: now)")
    invoke.set_defaults(func=_invoke)


def _add_serve_command(sub: Subcommands) -> None:
    serve = _command(
        sub,
        "serve",
        "serve the intake's routes (alerts, DingTalk, /healthz) on loopback until interrupted",
        "Each request goes to handler.intake as FC's HTTP trigger would deliver it; the reconcile an answer "
        "asks for runs in process after the answer, one at a time, against ESA as configured or the embedded "
        "emulator. The first line printed is `listening on http://HOST:PORT`, the second `export "
        'INTAKE=http://HOST:PORT` for another shell to paste and curl "$INTAKE/healthz".',
        logs=True,
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default 8080; 0 picks a free port)")
    serve.add_argument("--schedule", metavar="PATH", help=SCHEDULE_HELP)
    serve.add_argument("--state-dir", metavar="DIR", help=STATE_HELP)
    serve.add_argument(
        "--emulator", action="store_true", help="use the embedded ESA emulator even if ESA is configured"
    )
    serve.set_defaults(func=_serve)


def _add_hold_commands(sub: Subcommands) -> None:
    hold = _command(
        sub,
        "hold",
        "add, list or release incident holds",
        "A hold keeps tasks online or offline whatever the windows say, until it expires or is released. "
        "It takes effect at the next run or timer tick.",
    )
    hold_sub = hold.add_subparsers(dest="hold_command", required=True)
    add = _command(
        hold_sub,
        "add",
        "hold tasks in a state until a TTL or an instant",
        "The same as a hold event: the tasks must be managed by the schedule, --target must select "
        "targets it declares, and every hold expires.",
        logs=True,
    )
    add.add_argument(
        "--task", action="extend", nargs="+", required=True, metavar="NAME_OR_GLOB", dest="tasks", help="tasks to hold"
    )
    add.add_argument(
        "--status", choices=["online", "offline"], default="offline", help="state to hold (default offline)"
    )
    add.add_argument("--reason", required=True, help="why, for the log and `hold list` (e.g. an incident id)")
    expiry = add.add_mutually_exclusive_group(required=True)
    expiry.add_argument("--ttl", metavar="DURATION", help="how long, e.g. 2h or PT30M")
    expiry.add_argument("--until", metavar="ISO", help="ISO 8601 instant with an offset or Z")
    add.add_argument("--id", help="hold id (default: generated); the same id replaces a hold")
    add.add_argument("--by", default="", help="who asked for it")
    add.add_argument(
        "--target",
        action="extend",
        nargs="+",
        metavar="NAME_OR_GLOB",
        dest="targets",
        help="only these fleet targets (a schedule with targets:); default: every target",
    )
    listing = _command(
        hold_sub,
        "list",
        "show the holds in force",
        "Expired holds are not shown. With fleet targets (in the schedule or on a hold) a targets column "
        "shows where each hold applies, * for every target.",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON list")
    release = _command(
        hold_sub,
        "release",
        "end holds by id or by task",
        "With --task, every hold that applies to any of the tasks ends.",
        logs=True,
    )
    which = release.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="the hold to end")
    which.add_argument(
        "--task", action="extend", nargs="+", metavar="NAME_OR_GLOB", dest="tasks", help="end the holds on these tasks"
    )
    for command in (add, listing, release):
        command.add_argument("--schedule", metavar="PATH", help=SCHEDULE_HELP)
        command.add_argument("--state-dir", metavar="DIR", help=STATE_HELP)
    hold.set_defaults(func=_hold)


def _add_emulator_command(sub: Subcommands) -> None:
    emu = _command(
        sub,
        "emulator",
        "serve a local ESA emulator on loopback until interrupted",
        "It speaks the ESA delivery-task API, verifies signatures like the real gateway and can inject faults. "
        "The first line it prints is `listening on http://127.0.0.1:PORT`, then the `export` lines (ESA_ENDPOINT "
        "and its AccessKey pair) that point run, invoke and hold at it; a secret given with --access-key-secret "
        "is never printed.",
    )
    emu.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    emu.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    emu.add_argument(
        "--tasks", metavar="FILE", help="JSON file with a list of tasks (TaskName, Status, ...) to start with"
    )
    emu.add_argument("--access-key-id", default=None, help="AccessKey id it accepts (default: the emulator's own)")
    emu.add_argument(
        "--access-key-secret", default=None, help="AccessKey secret it accepts (default: the emulator's own)"
    )
    emu.add_argument("--latency-ms", type=float, default=0.0, help="added latency per call, in milliseconds")
    emu.add_argument("--throttle-rps", type=float, default=None, help="answer Throttling.User above this many calls/s")
    emu.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction (0 to 1) of API calls that pass the signature check and then fail with a transient error the "
        "client retries: half ServiceUnavailable (HTTP 503), half InternalError (HTTP 400, as ESA answers it)",
    )
    emu.add_argument("--seed", type=int, default=None, help="random seed, for repeatable faults")
    emu.set_defaults(func=_emulator)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, separate so tests and docs can inspect it."""
    parser = argparse.ArgumentParser(prog="esa-scheduler", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"esa-scheduler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_schedule_commands(sub)
    _add_run_commands(sub)
    _add_serve_command(sub)
    _add_hold_commands(sub)
    _add_emulator_command(sub)
    _add_notify_commands(sub)
    return parser


def _add_notify_commands(sub: Subcommands) -> None:
    notify = _command(
        sub,
        "notify",
        "check a notification target",
        "Targets are the schedule's notify: entries (DingTalk, Feishu/Lark, WeCom or a signed webhook).",
    )
    test = _command(
        notify.add_subparsers(dest="notify_command", required=True),
        "test",
        "send a test message to the notify target NAME, or to every target, and print each service's answer",
        "The URL and secret come from the variables its url_env and secret_env name. Exit 0 when every service "
        "accepted it (or the schedule has no notify: targets, which is said), 1 when one refused or could not be "
        "reached, 2 for an unknown NAME.",
    )
    test.add_argument(
        "name", metavar="NAME", nargs="?", help="the name of a notify: entry in the schedule (default: every entry)"
    )
    test.add_argument("--schedule", metavar="PATH", help=SCHEDULE_HELP)
    test.set_defaults(func=_notify)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code.

    Everything the command prints, including argparse's messages and the trace of a bug, goes
    through ``masked_stdio``; the secrets in the environment are masked from the first line.
    """
    register_secret(config.env(config.ACCESS_KEY_SECRET))
    register_secret(config.env(config.SECURITY_TOKEN))
    with masked_stdio():
        args = build_parser().parse_args(argv)
        try:
            with log_format(getattr(args, "log_format", "auto")):
                code: int = args.func(args)
        except UserError as exc:
            for line in exc.problems:
                print(line, file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            return 130
        except Exception:
            # A bug: its trace is shown, through the masked stream (the interpreter's would not be).
            traceback.print_exc()
            return 1
        return code
