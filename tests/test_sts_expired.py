"""STS credentials whose ``Expiration`` is already past are expired (issue 20, section 3): the role is
assumed once more, and if STS answers with expired credentials again, that target fails alone, by
name, without a call to ESA with them. Against the emulator's STS, whose ``issue_expired`` roles
play an STS with its clock behind ours."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from helpers import iso, write_schedule
from test_sts import FAST, FLEET_SCHEDULE, MEMBER, SCHEDULER, START, TARGET_ROLE, Clock, accounts

from esa_scheduler.edge.client import EsaApiError
from esa_scheduler.edge.sts import EXPIRED_CODE, RoleSessionCache, StsClient
from esa_scheduler.emulator import EMULATOR_ACCOUNT_ID, EmulatedRole, EmulatedTask, Emulator
from esa_scheduler.invocation import fleet as fleet_run
from esa_scheduler.invocation.connection import Target
from esa_scheduler.invocation.function import execute
from esa_scheduler.invocation.reconciler import RunSummary


@pytest.fixture
def clock() -> Clock:
    running = Clock()
    running.now = datetime.now(START.tzinfo).replace(microsecond=0)  # runs sign with the real time
    return running


def emulator(clock: Clock, expired: int) -> Emulator:
    """The scheduler's account and a member account whose role's first ``expired`` answers are expired."""
    role = EmulatedRole(arn=TARGET_ROLE, trusted_accounts=[EMULATOR_ACCOUNT_ID], issue_expired=expired)
    own = [EmulatedTask(TaskName="own-access", Status="online")]
    return Emulator(tasks=own, accounts=accounts(), roles=[role], clock=clock)


@pytest.fixture
def fresh_sessions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(fleet_run, "_sessions", None)  # no credentials cached by another test
    yield


def fleet_run_on(emu: Emulator, tmp_path: Path) -> tuple[RunSummary, list[dict[str, object]]]:
    schedule = write_schedule(tmp_path / "schedule", FLEET_SCHEDULE)
    stream = io.StringIO()
    summary = execute(
        {"action": "reconcile", "at": iso(START)},
        target=Target(emu.url, SCHEDULER, sts_endpoint=emu.url),
        schedule_path=str(schedule),
        state=str(tmp_path / "state"),
        stream=stream,
        environ={"ESA_MAX_RPS": "0"},
    )
    return summary, [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_expired_answer_is_followed_by_one_more_assume_role(
    fresh_sessions: None, clock: Clock, tmp_path: Path
) -> None:
    with emulator(clock, expired=1) as emu:
        summary, lines = fleet_run_on(emu, tmp_path)
        assert not summary.failed, summary.error
        assert emu.stats["by_account"][EMULATOR_ACCOUNT_ID]["by_action"]["AssumeRole"] == 2
        # the expired credentials never reached ESA: no refused call, no refresh after one
        assert emu.stats["by_account"][MEMBER]["by_action"] == {
            "ListUserDeliveryTasks": 1,
            "UpdateUserDeliveryTaskStatus": 1,
        }
        assert "target.credentials_refreshed" not in [line["event"] for line in lines]
        assert emu.status("member-access", account=MEMBER) == "offline"


def test_expired_answers_twice_fail_that_target_alone(fresh_sessions: None, clock: Clock, tmp_path: Path) -> None:
    with emulator(clock, expired=2) as emu:
        summary, lines = fleet_run_on(emu, tmp_path)
        assert summary.failed and summary.error == "1 of 2 target(s) failed: member"
        failed = [line for line in lines if line["event"] == "target.summary" and line.get("target") == "member"]
        assert [line["error_code"] for line in failed] == [EXPIRED_CODE]
        assert "had already expired" in str(failed[0]["error"]) and "2 times in a row" in str(failed[0]["error"])
        assert emu.stats["by_account"][EMULATOR_ACCOUNT_ID]["by_action"]["AssumeRole"] == 2
        assert emu.stats["by_account"][MEMBER]["by_action"] == {}
        assert emu.status("member-access", account=MEMBER) == "online"
        assert emu.status("own-access") == "offline"


def test_the_cache_keeps_only_credentials_that_have_not_expired(clock: Clock) -> None:
    with emulator(clock, expired=1) as emu:
        cache = RoleSessionCache(clock=clock)

        async def get() -> object:
            async with StsClient(emu.url, SCHEDULER, FAST, clock=clock) as sts:
                return await cache.credentials(sts, TARGET_ROLE, "esa-scheduler-run1")

        first = asyncio.run(get())
        assert cache.assume_calls == 2
        assert asyncio.run(get()) is first
        assert cache.assume_calls == 2


def test_the_emulator_issues_expired_credentials_only_as_told(clock: Clock) -> None:
    with emulator(clock, expired=1) as emu:

        async def expiration() -> datetime:
            async with StsClient(emu.url, SCHEDULER, FAST, clock=clock) as sts:
                return (await sts.assume_role(TARGET_ROLE, "esa-scheduler-run1", 900)).expiration

        assert asyncio.run(expiration()) < clock.now < asyncio.run(expiration())
        with pytest.raises(EsaApiError):  # a role the emulator does not know is still refused
            asyncio.run(_assume_missing(emu, clock))


async def _assume_missing(emu: Emulator, clock: Clock) -> None:
    async with StsClient(emu.url, SCHEDULER, FAST, clock=clock) as sts:
        await sts.assume_role(f"acs:ram::{MEMBER}:role/missing", "esa-scheduler-run1", 900)
