"""The ``esa-scheduler`` parser and ``main``: validate, plan, run, invoke, serve, emulator, hold, notify, schema.

Each sub-command parses its flags here and hands off to its command group's module; a
``UserError`` anywhere becomes its one-line message on stderr and exit code 2. The help texts
are written for operators here, never taken from these docstrings.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

from esa_scheduler import __version__, config
from esa_scheduler.cli import emulator_cmd, notify_cmd, run_cmds, schedule_cmds
from esa_scheduler.errors import UserError
from esa_scheduler.logs import LOG_FORMATS, log_format, masked_stdio, register_secret

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def _invoke(args: argparse.Namespace) -> int:
    """``--handler intake`` runs the intake's handler, imported only then."""
    if args.handler == "intake":
        from esa_scheduler.cli.intake_cmds import invoke_intake

        return invoke_intake(args)
    if args.at is not None:
        raise UserError("--at: only with --handler intake (the scheduler's events carry their own instant)")
    return run_cmds.invoke(args)


def _serve(args: argparse.Namespace) -> int:
    """Imported when used: the intake's server and routes."""
    from esa_scheduler.cli.intake_cmds import serve

    return serve(args)


def _hold(args: argparse.Namespace) -> int:
    """Imported when used: the hold commands load the event reader and the invocation layer."""
    from esa_scheduler.cli.hold_cmds import add, list_holds, release

    commands = {"add": add, "list": list_holds, "release": release}
    return commands[args.hold_command](args)


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
    validate.set_defaults(func=schedule_cmds.validate)

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
    plan.set_defaults(func=schedule_cmds.plan)

    schema = _command(
        sub,
        "schema",
        "print the JSON Schema of a schedule file",
        "Point your editor's YAML language server at it to get completion and checks while you write a schedule.",
    )
    schema.set_defaults(func=schedule_cmds.schema)


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
    run.set_defaults(func=run_cmds.run)

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
    add = _add_hold_add(hold_sub)
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


def _add_hold_add(hold_sub: Subcommands) -> argparse.ArgumentParser:
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
    return add


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
    emu.set_defaults(func=emulator_cmd.emulator)


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
    test.set_defaults(func=notify_cmd.notify_test)


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
