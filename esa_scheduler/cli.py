"""The ``esa-scheduler`` command line: validate, plan, run, invoke, emulator, hold, schema.

Each sub-command parses its flags and hands off to the module that owns the concept; a
``UserError`` anywhere becomes its one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from esa_scheduler import __version__
from esa_scheduler.errors import UserError


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, separate so tests and docs can inspect it."""
    parser = argparse.ArgumentParser(prog="esa-scheduler", description=__doc__)
    parser.add_argument("--version", action="version", version=f"esa-scheduler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

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
