"""Shared fixtures: a running ESA emulator on loopback, fresh for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from esa_scheduler.emulator import EmulatedTask, Emulator

SEED_TASKS = (
    EmulatedTask(TaskName="access-cn", Status="online"),
    EmulatedTask(TaskName="waf-sg", Status="offline", BusinessType="dcdn_log_waf", DataCenter="sg"),
    EmulatedTask(TaskName="er-http", Status="online", BusinessType="dcdn_log_er", DeliveryType="http"),
    EmulatedTask(TaskName="site-access", Status="online", SiteId=1001),
    EmulatedTask(TaskName="site-waf", Status="offline", BusinessType="dcdn_log_waf", SiteId=1001),
)
"""Three account-level tasks and two on site 1001; the default emulator AccessKey pair signs for them."""


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A started emulator seeded with ``SEED_TASKS``, no faults, stopped after the test."""
    with Emulator(tasks=SEED_TASKS) as running:
        yield running
