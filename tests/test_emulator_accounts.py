"""The emulator's accounts: configuration checks, per-account state, faults and counters, and an
account that refuses every ESA call while the others work."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from esa_scheduler.edge.acs import ClientSettings
from esa_scheduler.edge.client import EsaApiError, EsaClient
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.fc_invoke import FC_API_VERSION as CLIENT_FC_VERSION
from esa_scheduler.edge.sts import STS_API_VERSION as CLIENT_STS_VERSION
from esa_scheduler.emulator import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    EMULATOR_ACCOUNT_ID,
    FC_API_VERSION,
    STS_API_VERSION,
    EmulatedAccount,
    EmulatedRole,
    EmulatedTask,
    Emulator,
)
from esa_scheduler.errors import ConfigError

A = "2000000000000002"
B = "3000000000000003"
FAST = ClientSettings(max_rps=0, max_attempts=1)
SAME_NAME = EmulatedTask(TaskName="access", Status="online")


def account(account_id: str, **fields: Any) -> EmulatedAccount:
    return EmulatedAccount(
        id=account_id, access_key_id=f"key-{account_id}", access_key_secret=f"secret-{account_id}", **fields
    )


def creds(account_id: str) -> Credentials:
    return Credentials(f"key-{account_id}", f"secret-{account_id}")


def run_esa(emu: Emulator, credentials: Credentials, task: str, method: str) -> str:
    async def go() -> str:
        async with EsaClient(emu.url, credentials, FAST) as esa:
            return (await esa.update_user_delivery_task_status(task, method)).status

    return asyncio.run(go())


def test_the_emulator_speaks_the_clients_api_versions() -> None:
    assert (STS_API_VERSION, FC_API_VERSION) == (CLIENT_STS_VERSION, CLIENT_FC_VERSION)


def test_each_account_has_its_own_tasks_faults_and_counters() -> None:
    with Emulator(tasks=[SAME_NAME], accounts=[account(A, tasks=[SAME_NAME]), account(B)]) as emu:
        emu.script_fault("access", "ServiceUnavailable", account=A)
        with pytest.raises(EsaApiError, match="ServiceUnavailable"):
            run_esa(emu, creds(A), "access", "offline")
        assert run_esa(emu, creds(A), "access", "offline") == "offline"
        assert run_esa(emu, Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET), "access", "online")
        emu.set_status("access", "online", account=A)

        assert emu.accounts == [EMULATOR_ACCOUNT_ID, A, B]
        assert (emu.status("access", account=A), emu.status("access")) == ("online", "online")
        assert emu.tasks == emu.tasks_of(EMULATOR_ACCOUNT_ID) and emu.tasks_of(B) == {}
        stats = emu.stats
        assert stats["total"] == 3
        assert stats["by_account"][A]["by_outcome"] == {"ServiceUnavailable": 1, "ok": 1}
        assert stats["by_account"][EMULATOR_ACCOUNT_ID]["by_outcome"] == {"ok": 1}
        assert stats["by_account"][B]["total"] == 0


def test_an_account_that_refuses_every_call_leaves_the_others_working() -> None:
    accounts = [account(A, tasks=[SAME_NAME], error="EsaService.NotOpen"), account(B, tasks=[SAME_NAME])]
    with Emulator(accounts=accounts) as emu:
        with pytest.raises(EsaApiError) as info:
            run_esa(emu, creds(A), "access", "offline")
        assert run_esa(emu, creds(B), "access", "offline") == "offline"

    assert (info.value.code, info.value.http_status) == ("EsaService.NotOpen", 403)
    assert emu.status("access", account=A) == "online"


def test_per_account_helpers_refuse_unknown_accounts_and_tasks() -> None:
    with Emulator(accounts=[account(A)]) as emu:
        with pytest.raises(KeyError, match="no account '4000000000000004'"):
            emu.status("access", account="4000000000000004")
        with pytest.raises(KeyError, match=f"no task 'access' with SiteId None in account {A}"):
            emu.script_fault("access", "InternalError", account=A)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"accounts": [account(A), account(A)]}, f"account {A} is configured twice"),
        ({"accounts": [account(EMULATOR_ACCOUNT_ID)]}, f"account {EMULATOR_ACCOUNT_ID} is configured twice"),
        (
            {"accounts": [EmulatedAccount(id=A, access_key_id=EMULATOR_ACCESS_KEY_ID, access_key_secret="s1234")]},
            f"AccessKeyId {EMULATOR_ACCESS_KEY_ID!r} is configured twice",
        ),
        (
            {"roles": [EmulatedRole(arn=f"acs:ram::{A}:role/r")]},
            f"role acs:ram::{A}:role/r names account(s) the emulator does not serve: ['{A}']",
        ),
        (
            {"roles": [EmulatedRole(arn=f"acs:ram::{EMULATOR_ACCOUNT_ID}:role/r", trusted_accounts=[B])]},
            f"does not serve: ['{B}']",
        ),
        (
            {"roles": [EmulatedRole(arn=f"acs:ram::{EMULATOR_ACCOUNT_ID}:role/r")] * 2},
            "role acs:ram::1000000000000001:role/r is configured twice",
        ),
        ({"accounts": [account(A, tasks=[SAME_NAME, SAME_NAME])]}, f"account {A} tasks: [1].TaskName: duplicate"),
    ],
)
def test_configuration_mistakes_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Emulator(**options)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (EmulatedAccount, {"id": "123", "access_key_id": "k", "access_key_secret": "s"}),
        (EmulatedAccount, {"id": A, "access_key_id": "", "access_key_secret": "s"}),
        (EmulatedRole, {"arn": "acs:ram::123:role/r"}),
        (EmulatedRole, {"arn": f"acs:ram::{A}:role/"}),
        (EmulatedRole, {"arn": f"acs:ram::{A}:user/r"}),
    ],
)
def test_malformed_accounts_and_roles_are_refused(model: type[Any], fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model(**fields)


def test_role_names_its_account_and_its_name() -> None:
    role = EmulatedRole(arn=f"acs:ram::{A}:role/esa-scheduler-target")
    assert (role.account, role.name) == (A, "esa-scheduler-target")
