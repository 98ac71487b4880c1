"""A local ESA (API 2024-09-10) delivery-task service for tests, demos and benchmarks, with the STS
``AssumeRole`` and FC ``InvokeFunction`` calls a fleet of accounts needs.

It verifies V3 signatures as strictly as the real gateway, keeps task state in memory per account,
injects seeded faults, and only ever listens on loopback. ``Emulator`` runs it in a background thread;
``serve`` is the ``esa-scheduler emulator`` command.
"""

from esa_scheduler.emulator.functions import Invocation
from esa_scheduler.emulator.models import (
    API_VERSION,
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    EMULATOR_ACCOUNT_ID,
    FC_API_VERSION,
    STATUS_BY_CODE,
    STS_API_VERSION,
    EmulatedAccount,
    EmulatedRole,
    EmulatedTask,
    Faults,
    TaskKey,
    load_tasks,
)
from esa_scheduler.emulator.server import Emulator, serve
from esa_scheduler.emulator.service import STATS_PATH

__all__ = [
    "API_VERSION",
    "EMULATOR_ACCESS_KEY_ID",
    "EMULATOR_ACCESS_KEY_SECRET",
    "EMULATOR_ACCOUNT_ID",
    "FC_API_VERSION",
    "STATS_PATH",
    "STATUS_BY_CODE",
    "STS_API_VERSION",
    "EmulatedAccount",
    "EmulatedRole",
    "EmulatedTask",
    "Emulator",
    "Faults",
    "Invocation",
    "TaskKey",
    "load_tasks",
    "serve",
]
