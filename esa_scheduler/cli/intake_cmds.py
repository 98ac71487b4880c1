"""``esa-scheduler serve`` and ``invoke --handler intake``: the intake on a laptop, reconciling in process.

Both run the very ``Intake.handle`` that ``handler.intake`` runs on FC; where FC would be asked for
an asynchronous reconcile of the scheduler function, the reconcile runs here, after the answer, one
at a time, against ESA as configured or the embedded emulator (``run_cmds.esa_target``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from types import FrameType

from esa_scheduler.addresses import loopback_bind_address
from esa_scheduler.cli.run_cmds import esa_target, read_event_file
from esa_scheduler.cli.schedule_cmds import parse_instant_flag
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.errors import ConfigError, UserError
from esa_scheduler.invocation.holds import state_dir
from esa_scheduler.invocation.intake.app import Clock, Intake
from esa_scheduler.invocation.intake.http import MAX_EVENT_BYTES, HttpProblem, read_request
from esa_scheduler.invocation.intake.server import IntakeHttpServer, Reconciles, ServingIntake, in_process
from esa_scheduler.invocation.statefile import check_writable


def _interrupt(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or SIGTERM); the first stdout line is ``listening on http://HOST:PORT``, the
    second ``export INTAKE=http://HOST:PORT``, which another shell pastes to ``curl "$INTAKE/..."``."""
    host = loopback_bind_address(args.host, "--host")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port: {args.port} is not a port number (0 picks a free one)")
    schedule = load_schedule(args.schedule)  # a broken schedule stops here, not at the first request
    check_writable(state_dir(args.state_dir))
    with esa_target(args.schedule, args.emulator, schedule=schedule) as target:
        reconciles = Reconciles(in_process(target, args.schedule, args.state_dir, None, sys.stderr))
        intake = Intake(args.schedule, args.state_dir, dispatcher=reconciles.dispatch, stream=sys.stderr)
        try:
            server = IntakeHttpServer((host, args.port), intake, reconciles)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{args.port}: {exc.strerror or exc}") from None
        print(f"listening on {server.url}")
        print(f"export INTAKE={server.url}", flush=True)  # for another shell's curl, as the emulator's lines
        signal.signal(signal.SIGTERM, _interrupt)
        with ServingIntake(server), contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


def _pinned(at: str | None) -> Clock | None:
    """``--at``: the instant the intake takes for now (a signed DingTalk fixture is an hour valid)."""
    if at is None:
        return None
    instant = parse_instant_flag(at, "--at")
    return lambda: instant


def invoke_intake(args: argparse.Namespace) -> int:
    """One HTTP trigger event file through ``handler.intake``: the response on stdout, then the reconcile.

    Exit 0 for a 2xx answer, 1 for any other; an event file that is no HTTP trigger event is bad
    input (exit 2)."""
    from esa_scheduler.fc_context import load_context

    clock = _pinned(args.at)
    body = read_event_file(args.event_file, MAX_EVENT_BYTES)
    try:
        read_request(body)
    except HttpProblem as problem:
        raise UserError(f"{args.event_file}: {problem.error}") from None
    context = load_context(args.context)
    with esa_target(args.schedule, args.emulator, credentials=context.credentials is not None) as target:
        reconciles = Reconciles(in_process(target, args.schedule, args.state_dir, clock, sys.stderr))
        intake = Intake(args.schedule, args.state_dir, os.environ, clock, reconciles.dispatch, sys.stderr)
        response = intake.handle(body, context)
        print(json.dumps(response), flush=True)
        reconciles.release()
        reconciles.stop()
        reconciles.work()
    return 0 if 200 <= int(response["statusCode"]) < 300 else 1
