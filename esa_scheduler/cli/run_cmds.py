"""``esa-scheduler run`` and ``invoke``: one invocation from a terminal, against ESA or the embedded emulator.

Both fall back to an ESA emulator started in-process, seeded from the schedule, when nothing points
them at a real ESA (no endpoint, no credentials anywhere) or when ``--emulator`` asks for it, so a
newcomer's first commands work on a fresh clone and a demo never leaves loopback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from esa_scheduler import config
from esa_scheduler.errors import UserError

if TYPE_CHECKING:
    from esa_scheduler.engine.schedule.model import Schedule
    from esa_scheduler.invocation.function import Target


@contextmanager
def esa_target(
    schedule_path: str | None, forced: bool, *, credentials: bool = False, schedule: Schedule | None = None
) -> Iterator[Target]:
    """Where an invocation's calls go, for as long as the ``with`` lasts: ESA as configured, or, with
    ``forced`` (``--emulator``) or no endpoint and no credentials anywhere (``credentials``: some the
    caller has, FC's context for ``invoke``), a seeded emulator started on loopback and stopped after.
    The emulator's target is ``ephemeral``: nothing is recorded about it.

    A fleet schedule gets one emulated account per target role (each seeded like the function's own),
    and STS on the same emulator, so not one call of the run leaves loopback. ``schedule``: the one the
    caller has loaded already, else it is loaded from ``schedule_path``.
    """
    from esa_scheduler.edge.credentials import Credentials, has_configured_credentials
    from esa_scheduler.emulator import (
        EMULATOR_ACCESS_KEY_ID,
        EMULATOR_ACCESS_KEY_SECRET,
        EmulatedAccount,
        EmulatedRole,
        Emulator,
    )
    from esa_scheduler.engine.schedule.load import load_schedule
    from esa_scheduler.invocation.function import Target

    if not forced and (credentials or config.env(config.ENDPOINT) or has_configured_credentials()):
        yield Target()
        return
    schedule = schedule or load_schedule(schedule_path)
    # a task named by one entry per target is still one task of the emulated account
    named = dict.fromkeys((t.site_id, t.name) for t in schedule.explicit_tasks if t.name)
    seed = [{"TaskName": name, "Status": "online", "SiteId": site_id} for site_id, name in named]
    members = sorted({(t.account_id, t.role_arn) for t in schedule.targets if t.role_arn and t.account_id})
    accounts = [
        EmulatedAccount(id=account, access_key_id=f"embedded-{account}", access_key_secret=f"{account}-key", tasks=seed)
        for account in sorted({account for account, _ in members})
    ]
    with Emulator(tasks=seed, accounts=accounts, roles=[EmulatedRole(arn=arn) for _, arn in members]) as emulator:
        why = "--emulator" if forced else "no ESA endpoint or credentials configured"
        print(
            f"{why}: using the embedded ESA emulator at {emulator.url} "
            f"seeded with {len(seed)} task(s) from the schedule, all online",
            file=sys.stderr,
        )
        creds = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, source="embedded-emulator")
        yield Target(emulator.url, creds, ephemeral=True, sts_endpoint=emulator.url)


def read_event_file(path: str, limit: int) -> bytes:
    """An event file's bytes (``invoke``, ``invoke --handler intake``), bounded by ``limit``."""
    from esa_scheduler.files import read_bounded

    try:
        return read_bounded(path, limit, "event file")
    except OSError as exc:
        raise UserError(f"{path}: cannot read event file: {exc.strerror}") from exc


def run(args: argparse.Namespace) -> int:
    """Reconcile once at ``--at`` (default now); the summary on stdout, exit 1 for a failed or blocked run."""
    from esa_scheduler.invocation.function import execute
    from esa_scheduler.views.tables import run_text

    if args.deadline is not None and not (math.isfinite(args.deadline) and args.deadline > 0):
        raise UserError(f"--deadline: {args.deadline} must be a positive number of seconds")

    command: dict[str, object] = {"action": "reconcile", "dry_run": args.dry_run, "force": args.force}
    if args.at:
        command["at"] = args.at
    with esa_target(args.schedule, args.emulator) as target:
        summary = execute(
            command,
            target=target,
            schedule_path=args.schedule,
            state=args.state_dir,
            budget_s=args.deadline,
            stream=sys.stderr,
        )
    print(json.dumps(summary.to_json()) if args.json else run_text(summary))
    return 1 if summary.failed else 0


def invoke(args: argparse.Namespace) -> int:
    """The handler on an event file, as FC runs it: the result as one JSON object, exit 1 for a
    failed run unless ``ESA_FAIL_ON_ERROR`` is off."""
    from esa_scheduler.fc_context import load_context
    from esa_scheduler.invocation.function import RunFailed, execute, fail_on_error
    from esa_scheduler.strict_json import MAX_BYTES

    body = read_event_file(args.event_file, MAX_BYTES)
    context = load_context(args.context)
    raise_on_failure = fail_on_error()  # checked before the run, as the handler does: a typo must not act first
    with esa_target(args.schedule, args.emulator, credentials=context.credentials is not None) as target:
        # the emulator plays one ESA account, not FC: an async fleet fan-out runs inline instead of invoking FC
        environ = {**os.environ, config.FANOUT: "inline"} if target.ephemeral else None
        summary = execute(
            body,
            context,
            target=target,
            schedule_path=args.schedule,
            state=args.state_dir,
            stream=sys.stderr,
            environ=environ,
        )
    print(json.dumps(summary.to_json()))
    if summary.failed and raise_on_failure:
        print(RunFailed(summary), file=sys.stderr)
        return 1
    return 0
