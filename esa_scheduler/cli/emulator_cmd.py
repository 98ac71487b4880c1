"""``esa-scheduler emulator``: serve the local ESA emulator on loopback until interrupted."""

from __future__ import annotations

import argparse

from esa_scheduler.logs import forget_secret, register_secret


def emulator(args: argparse.Namespace) -> int:
    """The emulator's secret is masked like any other, except its own public test secret."""
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
