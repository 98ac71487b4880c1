"""STS ``AssumeRole`` over loopback: our ``StsClient`` and the official SDK against the emulator's
accounts and roles, the credentials' reach and lifetime, ``RoleSessionCache``, and the mask."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import iso, official_sdk_config, write_schedule

from esa_scheduler import logs
from esa_scheduler.edge import sts
from esa_scheduler.edge.acs import AcsClient, ApiRequest, ClientSettings
from esa_scheduler.edge.client import EsaApiError, EsaClient
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.sts import RoleSessionCache, StsClient, sanitize_session_name
from esa_scheduler.emulator import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    EMULATOR_ACCOUNT_ID,
    STS_API_VERSION,
    EmulatedAccount,
    EmulatedRole,
    EmulatedTask,
    Emulator,
    Faults,
)
from esa_scheduler.invocation import fleet as fleet_run
from esa_scheduler.invocation.connection import Target
from esa_scheduler.invocation.function import execute
from esa_scheduler.timeutil import parse_instant

MEMBER = "2000000000000002"
OTHER = "3000000000000003"
TARGET_ROLE = f"acs:ram::{MEMBER}:role/esa-scheduler-target"
DENIED_ROLE = f"acs:ram::{MEMBER}:role/denied"
OTHERS_ONLY_ROLE = f"acs:ram::{MEMBER}:role/trusts-other-only"
THROTTLED_ROLE = f"acs:ram::{MEMBER}:role/throttled"
MISSING_ROLE = f"acs:ram::{MEMBER}:role/missing"
SCHEDULER = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)
START = datetime.fromisoformat("2026-12-03T09:00:00+00:00")
FAST = ClientSettings(max_rps=0, max_attempts=2, base_delay=0.01, max_delay=0.01)


class Clock:
    """One adjustable clock for the emulator and the clients, so signatures stay within the skew."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def accounts() -> list[EmulatedAccount]:
    return [
        EmulatedAccount(
            id=MEMBER,
            access_key_id="member-key-id",
            access_key_secret="member-permanent-secret",
            tasks=[EmulatedTask(TaskName="member-access", Status="online")],
        ),
        EmulatedAccount(id=OTHER, access_key_id="other-key-id", access_key_secret="other-permanent-secret"),
    ]


def roles() -> list[EmulatedRole]:
    return [
        EmulatedRole(arn=TARGET_ROLE, trusted_accounts=[EMULATOR_ACCOUNT_ID]),
        EmulatedRole(arn=DENIED_ROLE, deny=True),
        EmulatedRole(arn=OTHERS_ONLY_ROLE, trusted_accounts=[OTHER]),
        EmulatedRole(arn=THROTTLED_ROLE, throttle=True),
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fleet(clock: Clock) -> Iterator[Emulator]:
    """The scheduler's account (default, one task), a member account with a role it trusts, another."""
    default_tasks = [EmulatedTask(TaskName="own-access", Status="online")]
    with Emulator(tasks=default_tasks, accounts=accounts(), roles=roles(), clock=clock) as running:
        yield running


def sts_client(emu: Emulator, clock: Clock, credentials: Credentials = SCHEDULER) -> StsClient:
    return StsClient(emu.url, credentials, FAST, clock=clock)


def assume(emu: Emulator, clock: Clock, role_arn: str, duration_s: int = 3600) -> sts.AssumedRole:
    async def go() -> sts.AssumedRole:
        async with sts_client(emu, clock) as client:
            return await client.assume_role(role_arn, "esa-scheduler-run1", duration_s)

    return asyncio.run(go())


def refusal(emu: Emulator, clock: Clock, role_arn: str) -> EsaApiError:
    with pytest.raises(EsaApiError) as info:
        assume(emu, clock, role_arn)
    return info.value


# --- AssumeRole ---------------------------------------------------------------------------------


def test_assume_role_issues_credentials_that_act_on_the_roles_account(fleet: Emulator, clock: Clock) -> None:
    assumed = assume(fleet, clock, TARGET_ROLE, duration_s=900)

    creds = assumed.credentials
    assert creds.access_key_id.startswith("STS.")
    assert creds.security_token and creds.source == f"sts:{TARGET_ROLE}"
    assert assumed.expiration == START + timedelta(seconds=900)
    assert assumed.expiration.utcoffset() == timedelta(0)

    async def member_view() -> list[str]:
        async with EsaClient(fleet.url, creds, FAST, clock=clock) as esa:
            await esa.update_user_delivery_task_status("member-access", "offline")
            return [task.task_name for task in await esa.list_user_delivery_tasks()]

    assert asyncio.run(member_view()) == ["member-access"]
    assert fleet.status("member-access", account=MEMBER) == "offline"
    assert fleet.status("own-access") == "online"
    by_account = fleet.stats["by_account"]
    assert by_account[EMULATOR_ACCOUNT_ID]["by_action"] == {"AssumeRole": 1}
    assert by_account[MEMBER]["by_action"] == {"UpdateUserDeliveryTaskStatus": 1, "ListUserDeliveryTasks": 1}
    assert fleet.stats["total"] == 3


def test_the_emulator_keeps_assumed_credentials_to_the_roles_account(fleet: Emulator, clock: Clock) -> None:
    creds = assume(fleet, clock, TARGET_ROLE).credentials

    async def poke_default_task() -> None:
        async with EsaClient(fleet.url, creds, FAST, clock=clock) as esa:
            await esa.update_user_delivery_task_status("own-access", "offline")

    with pytest.raises(EsaApiError) as info:
        asyncio.run(poke_default_task())
    assert (info.value.code, info.value.http_status) == ("InvalidParameter", 400)
    assert "own-access" in info.value.message
    assert fleet.status("own-access") == "online"
    assert fleet.tasks_of(MEMBER).keys() == {(None, "member-access")}


FLEET_SCHEDULE = f"""\
version: 1
timezone: UTC
targets:
  - name: own
    region: cn-hangzhou
  - name: member
    role_arn: "{TARGET_ROLE}"
    region: cn-hangzhou
tasks:
  - pattern: "*-access"
windows:
  - name: morning
    tasks: ["*-access"]
    status: offline
    cron: "0 9 * * *"
    duration: 1h
"""


def test_a_fleet_run_acts_on_each_account_with_that_accounts_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fleet: Emulator, clock: Clock
) -> None:
    """The scheduler's routing, seen from ESA: each target's calls arrive in its own account."""
    monkeypatch.setattr(fleet_run, "_sessions", None)  # no credentials cached by another test
    clock.now = datetime.now(START.tzinfo).replace(microsecond=0)  # the run signs with the real time
    schedule = write_schedule(tmp_path / "schedule", FLEET_SCHEDULE)

    summary = execute(
        {"action": "reconcile", "at": iso(START)},
        target=Target(fleet.url, SCHEDULER, sts_endpoint=fleet.url),
        schedule_path=str(schedule),
        state=str(tmp_path / "state"),
        stream=io.StringIO(),
        environ={"ESA_MAX_RPS": "0"},
    )

    assert not summary.failed, summary.error
    by_account = {account: stats["by_action"] for account, stats in fleet.stats["by_account"].items()}
    assert by_account == {
        EMULATOR_ACCOUNT_ID: {"AssumeRole": 1, "ListUserDeliveryTasks": 1, "UpdateUserDeliveryTaskStatus": 1},
        MEMBER: {"ListUserDeliveryTasks": 1, "UpdateUserDeliveryTaskStatus": 1},
        OTHER: {},
    }
    assert fleet.status("own-access") == "offline"
    assert fleet.status("member-access", account=MEMBER) == "offline"


@pytest.mark.parametrize(
    ("role_arn", "code", "status"),
    [
        (MISSING_ROLE, "EntityNotExist.Role", 404),
        (DENIED_ROLE, "NoPermission", 403),
        (OTHERS_ONLY_ROLE, "NoPermission", 403),
    ],
)
def test_refusals_carry_stss_code(fleet: Emulator, clock: Clock, role_arn: str, code: str, status: int) -> None:
    error = refusal(fleet, clock, role_arn)

    assert (error.code, error.http_status, error.action, error.attempts) == (code, status, "AssumeRole", 1)
    assert fleet.stats["by_outcome"] == {code: 1}


def test_throttled_assume_role_is_retried_then_reported(fleet: Emulator, clock: Clock) -> None:
    error = refusal(fleet, clock, THROTTLED_ROLE)

    assert (error.code, error.attempts, error.throttled) == ("Throttling.User", 2, True)
    assert fleet.stats["by_action"] == {"AssumeRole": 2}


def test_another_accounts_caller_may_assume_a_role_that_trusts_it(fleet: Emulator, clock: Clock) -> None:
    other = Credentials("other-key-id", "other-permanent-secret")

    async def go() -> sts.AssumedRole:
        async with sts_client(fleet, clock, other) as client:
            return await client.assume_role(OTHERS_ONLY_ROLE, "other-session")

    assert asyncio.run(go()).credentials.source == f"sts:{OTHERS_ONLY_ROLE}"
    assert fleet.stats["by_account"][OTHER]["by_outcome"] == {"ok": 1}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"RoleArn": TARGET_ROLE, "RoleSessionName": "s1", "DurationSeconds": "899"},
            "InvalidParameter.DurationSeconds",
        ),
        (
            {"RoleArn": TARGET_ROLE, "RoleSessionName": "s1", "DurationSeconds": "3601"},
            "InvalidParameter.DurationSeconds",
        ),
        (
            {"RoleArn": TARGET_ROLE, "RoleSessionName": "s1", "DurationSeconds": "1h"},
            "InvalidParameter.DurationSeconds",
        ),
        ({"RoleArn": TARGET_ROLE, "RoleSessionName": "a"}, "InvalidParameter.RoleSessionName"),
        ({"RoleArn": TARGET_ROLE, "RoleSessionName": "bad name"}, "InvalidParameter.RoleSessionName"),
        ({"RoleArn": "acs:ram::12:role/x", "RoleSessionName": "s1"}, "InvalidParameter.RoleArn"),
        ({"RoleSessionName": "s1"}, "InvalidParameter.RoleArn"),
    ],
)
def test_emulator_checks_parameters_like_sts(fleet: Emulator, clock: Clock, params: dict[str, str], code: str) -> None:
    async def raw() -> None:
        async with AcsClient(fleet.url, SCHEDULER, STS_API_VERSION, FAST, clock=clock) as client:
            await client.call(ApiRequest("AssumeRole", params))

    with pytest.raises(EsaApiError) as info:
        asyncio.run(raw())
    assert (info.value.code, info.value.http_status) == (code, 400)


@pytest.mark.parametrize("duration_s", [0, 899, 3601])
def test_client_refuses_durations_sts_would(fleet: Emulator, clock: Clock, duration_s: int) -> None:
    with pytest.raises(ValueError, match=f"duration_s must be between 900 and 3600, not {duration_s}"):
        assume(fleet, clock, TARGET_ROLE, duration_s)
    assert fleet.stats["total"] == 0


def test_client_refuses_a_malformed_role_arn(fleet: Emulator, clock: Clock) -> None:
    with pytest.raises(ValueError, match=r"role_arn 'arn:aws:iam::1:role/x' is not like acs:ram::"):
        assume(fleet, clock, "arn:aws:iam::1:role/x")


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("esa-scheduler-0123abcd", "esa-scheduler-0123abcd"),
        ("esa scheduler/run:1", "esa-scheduler-run-1"),
        ("user@example.com_x.y", "user@example.com_x.y"),
        ("r" * 80, "r" * 64),
        ("任务", "--"),
    ],
)
def test_session_names_are_made_acceptable(raw: str, sent: str) -> None:
    assert sanitize_session_name(raw) == sent


@pytest.mark.parametrize("raw", ["", "x"])
def test_too_short_session_names_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="at least 2 characters"):
        sanitize_session_name(raw)


# --- lifetime ------------------------------------------------------------------------------------


def test_issued_credentials_expire_on_the_emulators_clock(fleet: Emulator, clock: Clock) -> None:
    creds = assume(fleet, clock, TARGET_ROLE, duration_s=900).credentials

    async def list_member() -> int:
        async with EsaClient(fleet.url, creds, FAST, clock=clock) as esa:
            return len(await esa.list_user_delivery_tasks())

    clock.advance(899)
    assert asyncio.run(list_member()) == 1
    clock.advance(1)
    with pytest.raises(EsaApiError) as info:
        asyncio.run(list_member())
    assert (info.value.code, info.value.http_status) == ("InvalidSecurityToken.Expired", 400)


def test_cache_reuses_within_the_lifetime_and_refreshes_before_the_end(fleet: Emulator, clock: Clock) -> None:
    cache = RoleSessionCache(clock=clock, refresh_before=timedelta(minutes=5))

    async def get() -> Credentials:
        async with sts_client(fleet, clock) as client:
            return await cache.credentials(client, TARGET_ROLE, "esa-scheduler-run1", 900)

    first = asyncio.run(get())
    clock.advance(9 * 60)  # 10 minutes before expiry: still fresh
    assert asyncio.run(get()) is first
    assert cache.assume_calls == 1
    clock.advance(60)  # 5 minutes before expiry: refreshed
    second = asyncio.run(get())
    assert second.access_key_id != first.access_key_id
    assert cache.assume_calls == 2
    assert fleet.stats["by_action"] == {"AssumeRole": 2}


def test_cache_makes_one_call_when_twenty_coroutines_ask_at_once(fleet: Emulator, clock: Clock) -> None:
    cache = RoleSessionCache(clock=clock)

    async def many() -> list[Credentials]:
        async with sts_client(fleet, clock) as client:
            return await asyncio.gather(*(cache.credentials(client, TARGET_ROLE, f"run-{i}") for i in range(20)))

    results = asyncio.run(many())
    assert len({id(creds) for creds in results}) == 1
    assert cache.assume_calls == 1
    assert fleet.stats["by_action"] == {"AssumeRole": 1}


def test_cache_keeps_callers_apart_and_does_not_keep_failures(fleet: Emulator, clock: Clock) -> None:
    cache = RoleSessionCache(clock=clock)
    other = Credentials("other-key-id", "other-permanent-secret")

    async def get(caller: Credentials, role_arn: str) -> Credentials:
        async with sts_client(fleet, clock, caller) as client:
            return await cache.credentials(client, role_arn, "esa-scheduler-run1")

    for _ in range(2):
        with pytest.raises(EsaApiError, match="NoPermission"):
            asyncio.run(get(SCHEDULER, DENIED_ROLE))
    scheduler_creds = asyncio.run(get(SCHEDULER, TARGET_ROLE))
    with pytest.raises(EsaApiError, match="NoPermission"):
        asyncio.run(get(other, TARGET_ROLE))
    assert asyncio.run(get(SCHEDULER, TARGET_ROLE)) is scheduler_creds
    assert cache.assume_calls == 4


# --- secrets --------------------------------------------------------------------------------------


def test_issued_secret_and_token_are_masked_even_when_a_server_echoes_them(clock: Clock) -> None:
    own_role = f"acs:ram::{EMULATOR_ACCOUNT_ID}:role/self"
    roles = [EmulatedRole(arn=own_role), EmulatedRole(arn=f"acs:ram::{EMULATOR_ACCOUNT_ID}:role/no", deny=True)]
    with Emulator(roles=roles, clock=clock) as emu:
        creds = assume(emu, clock, own_role).credentials
        emu.faults = Faults(echo_credentials=True)
        error = refusal(emu, clock, f"acs:ram::{EMULATOR_ACCOUNT_ID}:role/no")

    assert creds.security_token is not None
    for value in (creds.access_key_secret, creds.security_token):
        assert value in logs._secrets.values
        assert value not in str(error)
    assert logs.MASK in error.message


# --- the official SDK as the oracle of the wire format --------------------------------------------


def test_official_sts_sdk_assumes_a_role_on_the_emulator(
    monkeypatch: pytest.MonkeyPatch, fleet: Emulator, clock: Clock
) -> None:
    from alibabacloud_sts20150401 import models
    from alibabacloud_sts20150401.client import Client
    from alibabacloud_tea_openapi.exceptions import ClientException

    clock.now = datetime.now(START.tzinfo).replace(microsecond=0)  # the SDK signs with the real time
    sdk = Client(official_sdk_config(monkeypatch, fleet.url))
    request = models.AssumeRoleRequest(role_arn=TARGET_ROLE, role_session_name="sdk-session", duration_seconds=1200)
    answer: Any = sdk.assume_role(request).body
    issued = answer.credentials
    logs.register_secret(issued.access_key_secret)
    logs.register_secret(issued.security_token)

    assert issued.access_key_id.startswith("STS.")
    assert parse_instant(issued.expiration) == clock.now + timedelta(seconds=1200)
    assert answer.assumed_role_user.arn == f"acs:ram::{MEMBER}:assumed-role/esa-scheduler-target/sdk-session"
    assert answer.request_id

    async def member_tasks() -> list[str]:
        creds = Credentials(issued.access_key_id, issued.access_key_secret, issued.security_token)
        async with EsaClient(fleet.url, creds, FAST) as esa:
            return [task.task_name for task in await esa.list_user_delivery_tasks()]

    assert asyncio.run(member_tasks()) == ["member-access"]
    with pytest.raises(ClientException) as denied:
        sdk.assume_role(models.AssumeRoleRequest(role_arn=DENIED_ROLE, role_session_name="sdk-session"))
    assert (denied.value.code, denied.value.status_code) == ("NoPermission", 403)


@pytest.mark.parametrize(
    ("credentials", "what"),
    [
        ({"AccessKeySecret": "issued-secret-value", "SecurityToken": "issued-token-value"}, "missing Credentials"),
        (
            {
                "AccessKeyId": "STS.x",
                "AccessKeySecret": "issued-secret-value",
                "SecurityToken": "issued-token-value",
                "Expiration": "soon",
            },
            "Credentials.Expiration 'soon' is not an instant",
        ),
    ],
)
def test_a_malformed_answer_fails_closed_without_showing_what_it_issued(credentials: dict[str, str], what: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"RequestId": "r-1", "Credentials": credentials})

    async def go() -> None:
        transport = httpx.MockTransport(answer)
        async with StsClient("https://sts.aliyuncs.com", SCHEDULER, FAST, transport=transport) as client:
            await client.assume_role(TARGET_ROLE, "esa-scheduler-run1")

    with pytest.raises(EsaApiError) as info:
        asyncio.run(go())
    assert info.value.code == "MalformedResponse"
    assert what in info.value.message
    assert {"issued-secret-value", "issued-token-value"} <= logs._secrets.values
