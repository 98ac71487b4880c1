"""``esa-scheduler notify test``: send a test message to the schedule's notify targets."""

from __future__ import annotations

import argparse
import sys


def notify_test(args: argparse.Namespace) -> int:
    """Exit 1 when one service refused: a target that cannot deliver must show before an incident."""
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
