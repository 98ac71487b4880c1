"""The ESA emulator over real HTTP on loopback: API shapes, strict V3 verification, faults, stats,
the loopback-only bind, the CLI, and interoperability with the official SDK."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from esa_scheduler import cli
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.signer import AcsV3Auth, authorization, canonical_request, new_nonce, signature
from esa_scheduler.emulator import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    EMULATOR_ACCOUNT_ID,
    STATS_PATH,
    EmulatedTask,
    Emulator,
    Faults,
    load_tasks,
)
from esa_scheduler.emulator.verify import HttpRequest, NonceCache
from esa_scheduler.errors import ConfigError
from esa_scheduler.timeutil import now_utc

VERSION = "2024-09-10"
DEFAULT = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)
WRONG_SECRET = Credentials(EMULATOR_ACCESS_KEY_ID, "guessed-secret")
STS = ("sts-access-key-id", "sts-access-key-secret", "sts-security-token")
SPACED = "a b*c~d/e+f=g&h 任务"
REQUEST_ID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
ERROR_KEYS = {"RequestId", "Code", "Message", "HostId", "Recommend"}


def signed(
    url: str,
    action: str,
    params: dict[str, str] | None = None,
    *,
    credentials: Credentials = DEFAULT,
    clock: Callable[[], datetime] = now_utc,
    nonce: Callable[[], str] = new_nonce,
    form: bool = False,
    version: str = VERSION,
) -> httpx.Request:
    """A request signed by our own ``AcsV3Auth``, ready to be tampered with before sending."""
    headers = {"x-acs-action": action, "x-acs-version": version}
    if form:
        request = httpx.Request("POST", f"{url}/", data=params or {}, headers=headers)
    else:
        request = httpx.Request("GET", f"{url}/", params=params or {}, headers=headers)
    AcsV3Auth(credentials, clock=clock, nonce=nonce).sign(request)
    return request


def resign(request: httpx.Request, names: list[str] | None = None) -> None:
    """Sign again over exactly ``names``, by default host and every x-acs header now present
    (the query is already canonical after ``AcsV3Auth``)."""
    if names is None:
        names = sorted(["host", *(k for k in request.headers if k.startswith("x-acs-"))])
    lowered = {k.lower(): v for k, v in request.headers.items()}
    body_hash = lowered.get("x-acs-content-sha256", "")
    canonical = canonical_request(
        request.method, request.url.path, request.url.query.decode(), lowered, names, body_hash
    )
    sig = signature(DEFAULT.access_key_secret, canonical)
    request.headers["Authorization"] = authorization(DEFAULT.access_key_id, names, sig)


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client(trust_env=False) as client:
        return client.send(request)


def call(emu: Emulator, action: str, params: dict[str, str] | None = None, **options: Any) -> httpx.Response:
    return send(signed(emu.url, action, params, **options))


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert REQUEST_ID.fullmatch(body["RequestId"])
    return str(body["Code"])


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, error_code(response)) == (status, code), response.text


# --- the API ---------------------------------------------------------------------------------------


def test_update_by_get_changes_state_and_answers_esa_shape(emulator: Emulator) -> None:
    response = call(emulator, "UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn", "Method": "offline"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"RequestId", "TaskName", "Status"}
    assert REQUEST_ID.fullmatch(body["RequestId"])
    assert (body["TaskName"], body["Status"]) == ("access-cn", "offline")
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    assert emulator.status("access-cn") == "offline"


def test_update_by_post_form_is_accepted(emulator: Emulator) -> None:
    response = call(emulator, "UpdateUserDeliveryTaskStatus", {"TaskName": "waf-sg", "Method": "online"}, form=True)

    assert response.status_code == 200, response.text
    assert response.json()["Status"] == "online"
    assert emulator.status("waf-sg") == "online"


@pytest.mark.parametrize("space", ["%20", "+"])
def test_both_space_encodings_verify(space: str) -> None:
    with Emulator(tasks=[EmulatedTask(TaskName=SPACED, Status="online")]) as emu:
        request = signed(emu.url, "UpdateUserDeliveryTaskStatus", {"TaskName": SPACED, "Method": "offline"})
        assert b"%20" in request.url.query
        request.url = request.url.copy_with(query=request.url.query.replace(b"%20", space.encode()))

        response = send(request)

        assert response.status_code == 200, response.text
        assert emu.status(SPACED) == "offline"


def test_form_body_with_plus_for_spaces_verifies() -> None:
    with Emulator(tasks=[EmulatedTask(TaskName=SPACED, Status="online")]) as emu:
        request = signed(emu.url, "UpdateUserDeliveryTaskStatus", {"TaskName": SPACED, "Method": "offline"}, form=True)
        assert b"a+b" in request.content

        assert send(request).status_code == 200
        assert emu.status(SPACED) == "offline"


def test_get_returns_the_task_fields(emulator: Emulator) -> None:
    body = call(emulator, "GetUserDeliveryTask", {"TaskName": "er-http"}).json()

    assert body.pop("RequestId")
    assert body == {
        "TaskName": "er-http",
        "Status": "online",
        "BusinessType": "dcdn_log_er",
        "DataCenter": "cn",
        "DeliveryType": "http",
    }


def test_operator_change_shows_in_get(emulator: Emulator) -> None:
    emulator.set_status("access-cn", "offline")

    assert call(emulator, "GetUserDeliveryTask", {"TaskName": "access-cn"}).json()["Status"] == "offline"
    assert emulator.tasks[(None, "access-cn")].Status == "offline"
    with pytest.raises(KeyError):
        emulator.set_status("missing", "online")
    with pytest.raises(ValueError, match="online or offline"):
        emulator.set_status("access-cn", "paused")  # type: ignore[arg-type]


def test_user_list_pages_through_account_tasks_only(emulator: Emulator) -> None:
    first = call(emulator, "ListUserDeliveryTasks", {"PageSize": "2"}).json()
    second = call(emulator, "ListUserDeliveryTasks", {"PageSize": "2", "PageNumber": "2"}).json()

    assert (first["TotalCount"], first["PageNumber"], first["PageSize"]) == (3, 1, 2)
    assert (second["TotalCount"], second["PageNumber"], second["PageSize"]) == (3, 2, 2)
    names = [t["TaskName"] for t in first["Tasks"] + second["Tasks"]]
    assert names == ["access-cn", "waf-sg", "er-http"]
    assert set(first["Tasks"][1]) == {"TaskName", "Status", "BusinessType", "DataCenter", "DeliveryType"}
    assert first["Tasks"][1]["DataCenter"] == "sg"


def test_user_list_defaults_and_filter(emulator: Emulator) -> None:
    body = call(emulator, "ListUserDeliveryTasks").json()
    assert (body["PageNumber"], body["PageSize"], body["TotalCount"]) == (1, 20, 3)

    waf = call(emulator, "ListUserDeliveryTasks", {"BusinessType": "dcdn_log_waf"}).json()
    assert [t["TaskName"] for t in waf["Tasks"]] == ["waf-sg"]


@pytest.mark.parametrize("params", [{"PageSize": "501"}, {"PageSize": "0"}, {"PageNumber": "x"}])
def test_user_list_rejects_bad_paging(emulator: Emulator, params: dict[str, str]) -> None:
    assert_error(call(emulator, "ListUserDeliveryTasks", params), 400, "InvalidParameter")


def test_user_list_accepts_page_size_500(emulator: Emulator) -> None:
    assert call(emulator, "ListUserDeliveryTasks", {"PageSize": "500"}).json()["PageSize"] == 500


def test_site_list_and_update(emulator: Emulator) -> None:
    listed = call(emulator, "ListSiteDeliveryTasks", {"SiteId": "1001"}).json()
    assert [t["TaskName"] for t in listed["Tasks"]] == ["site-access", "site-waf"]
    assert call(emulator, "ListSiteDeliveryTasks", {"SiteId": "2002"}).json()["TotalCount"] == 0

    response = call(
        emulator, "UpdateSiteDeliveryTaskStatus", {"SiteId": "1001", "TaskName": "site-waf", "Method": "online"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["Status"] == "online"
    assert emulator.status("site-waf", site_id=1001) == "online"


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("ListSiteDeliveryTasks", {}),
        ("ListSiteDeliveryTasks", {"SiteId": "abc"}),
        ("UpdateSiteDeliveryTaskStatus", {"TaskName": "site-waf", "Method": "online"}),
        ("UpdateSiteDeliveryTaskStatus", {"SiteId": "1001", "TaskName": "access-cn", "Method": "online"}),
        ("UpdateUserDeliveryTaskStatus", {"TaskName": "site-waf", "Method": "online"}),
        ("UpdateUserDeliveryTaskStatus", {"TaskName": "no-such-task", "Method": "online"}),
        ("UpdateUserDeliveryTaskStatus", {"Method": "online"}),
        ("UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn", "Method": "pause"}),
        ("UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn"}),
        ("GetUserDeliveryTask", {"TaskName": "no-such-task"}),
        ("GetUserDeliveryTask", {}),
    ],
)
def test_invalid_parameters(emulator: Emulator, action: str, params: dict[str, str]) -> None:
    assert_error(call(emulator, action, params), 400, "InvalidParameter")
    assert emulator.status("access-cn") == "online"
    assert emulator.status("site-waf", site_id=1001) == "offline"


def test_unknown_action(emulator: Emulator) -> None:
    assert_error(call(emulator, "DeleteUserDeliveryTask", {"TaskName": "access-cn"}), 404, "InvalidApi.NotFound")


def test_wrong_version(emulator: Emulator) -> None:
    assert_error(call(emulator, "ListUserDeliveryTasks", version="2022-01-01"), 400, "InvalidVersion")


def test_unsupported_http_method(emulator: Emulator) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    request.method = "PUT"
    assert_error(send(request), 400, "UnsupportedHTTPMethod")


# --- signature verification -----------------------------------------------------------------------


def test_missing_authorization(emulator: Emulator) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    del request.headers["Authorization"]
    assert_error(send(request), 400, "IncompleteSignature")


@pytest.mark.parametrize(
    "value",
    [
        "ACS3-HMAC-SHA256 Credential=emulator-access-key-id",
        "ACS3-HMAC-SHA1 Credential=a,SignedHeaders=host,Signature=00",
        "Bearer abc",
        "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;x-acs-date,Signature=00",
    ],
)
def test_garbled_authorization(emulator: Emulator, value: str) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    request.headers["Authorization"] = value
    assert_error(send(request), 400, "IncompleteSignature")


def test_signed_headers_must_include_host(emulator: Emulator) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    names = sorted(k.lower() for k in request.headers if k.lower().startswith("x-acs-"))
    resign(request, names)
    assert_error(send(request), 400, "IncompleteSignature")


def test_every_x_acs_header_must_be_signed(emulator: Emulator) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    request.headers["x-acs-extra"] = "smuggled"
    assert_error(send(request), 400, "IncompleteSignature")


def test_signed_header_must_be_present(emulator: Emulator) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    request.headers["x-b"] = "signed, then removed"
    resign(request, sorted(["host", "x-b", *(k for k in request.headers if k.startswith("x-acs-"))]))
    del request.headers["x-b"]
    assert_error(send(request), 400, "IncompleteSignature")


def test_minimal_and_wider_signed_header_sets_both_verify(emulator: Emulator) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    request.headers["user-agent"] = "test"
    request.headers["accept"] = "application/json"
    resign(request, sorted(["accept", "host", "user-agent", *(k for k in request.headers if k.startswith("x-acs-"))]))
    assert send(request).status_code == 200


def test_missing_date(emulator: Emulator) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    del request.headers["x-acs-date"]
    resign(request)
    assert_error(send(request), 400, "InvalidTimeStamp.Format")


@pytest.mark.parametrize("value", ["2025-01-01 00:00:00", "2025-01-01T00:00:00+00:00", "yesterday", ""])
def test_malformed_date(emulator: Emulator, value: str) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    request.headers["x-acs-date"] = value
    resign(request)
    assert_error(send(request), 400, "InvalidTimeStamp.Format")


@pytest.mark.parametrize("skew", [timedelta(minutes=16), timedelta(minutes=-16)])
def test_date_more_than_15_minutes_off(emulator: Emulator, skew: timedelta) -> None:
    response = call(emulator, "ListUserDeliveryTasks", clock=lambda: now_utc() + skew)
    assert_error(response, 400, "InvalidTimeStamp.Expired")


def test_date_14_minutes_off_is_accepted(emulator: Emulator) -> None:
    response = call(emulator, "ListUserDeliveryTasks", clock=lambda: now_utc() - timedelta(minutes=14))
    assert response.status_code == 200


def test_server_clock_is_injectable() -> None:
    with Emulator(clock=lambda: now_utc() + timedelta(hours=1)) as emu:
        assert_error(call(emu, "ListUserDeliveryTasks"), 400, "InvalidTimeStamp.Expired")
        hour_ahead = call(emu, "ListUserDeliveryTasks", clock=lambda: now_utc() + timedelta(hours=1))
        assert hour_ahead.status_code == 200


def test_replayed_nonce(emulator: Emulator) -> None:
    request = signed(emulator.url, "UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn", "Method": "offline"})
    with httpx.Client(trust_env=False) as client:
        assert client.send(request).status_code == 200
        assert_error(client.send(request), 400, "SignatureNonceUsed")


def test_forged_request_does_not_burn_the_nonce(emulator: Emulator) -> None:
    nonce = new_nonce()

    forged = call(emulator, "ListUserDeliveryTasks", credentials=WRONG_SECRET, nonce=lambda: nonce)
    genuine = call(emulator, "ListUserDeliveryTasks", nonce=lambda: nonce)

    assert_error(forged, 403, "SignatureDoesNotMatch")
    assert genuine.status_code == 200


def test_unknown_access_key(emulator: Emulator) -> None:
    response = call(emulator, "ListUserDeliveryTasks", credentials=Credentials("nobody", "x"))
    assert_error(response, 404, "InvalidAccessKeyId.NotFound")


def test_wrong_secret(emulator: Emulator) -> None:
    response = call(emulator, "ListUserDeliveryTasks", credentials=WRONG_SECRET)
    assert_error(response, 403, "SignatureDoesNotMatch")


def test_non_ascii_signature_is_just_a_mismatch(emulator: Emulator) -> None:
    request = signed(emulator.url, "ListUserDeliveryTasks")
    raw = [(k, v) for k, v in request.headers.raw if k.lower() != b"authorization"]
    mangled = request.headers["Authorization"].rsplit("=", 1)[0] + "=é1"
    tampered = httpx.Request("GET", request.url, headers=[*raw, (b"authorization", mangled.encode())])
    assert_error(send(tampered), 403, "SignatureDoesNotMatch")


def test_tampered_query(emulator: Emulator) -> None:
    request = signed(emulator.url, "UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn", "Method": "offline"})
    request.url = request.url.copy_with(query=request.url.query.replace(b"access-cn", b"er-http"))
    assert_error(send(request), 403, "SignatureDoesNotMatch")
    assert emulator.status("er-http") == "online"


def test_body_not_matching_content_hash(emulator: Emulator) -> None:
    original = signed(
        emulator.url, "UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn", "Method": "offline"}, form=True
    )
    tampered = httpx.Request(
        "POST", original.url, headers=original.headers, content=original.content.replace(b"access-cn", b"access-cm")
    )
    assert_error(send(tampered), 403, "SignatureDoesNotMatch")
    assert emulator.status("access-cn") == "online"


def test_content_hash_header_rewritten_to_match_tampered_body(emulator: Emulator) -> None:
    original = signed(
        emulator.url, "UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn", "Method": "offline"}, form=True
    )
    body = original.content.replace(b"offline", b"online!")
    tampered = httpx.Request("POST", original.url, headers=original.headers, content=body)
    tampered.headers["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
    assert_error(send(tampered), 403, "SignatureDoesNotMatch")


def test_sts_triple_needs_its_token() -> None:
    ak, secret, token = STS
    with Emulator(tasks=[EmulatedTask(TaskName="t", Status="online")], sts_credentials=[STS]) as emu:
        good = call(emu, "GetUserDeliveryTask", {"TaskName": "t"}, credentials=Credentials(ak, secret, token))
        missing = call(emu, "GetUserDeliveryTask", {"TaskName": "t"}, credentials=Credentials(ak, secret))
        wrong = call(emu, "GetUserDeliveryTask", {"TaskName": "t"}, credentials=Credentials(ak, secret, "other"))
        stray = call(
            emu,
            "GetUserDeliveryTask",
            {"TaskName": "t"},
            credentials=Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, token),
        )

    assert good.status_code == 200
    assert_error(missing, 400, "InvalidSecurityToken.Malformed")
    assert_error(wrong, 400, "InvalidSecurityToken.Mismatch")
    assert_error(stray, 400, "InvalidSecurityToken.Mismatch")


def test_custom_key_pair_replaces_the_default() -> None:
    with Emulator(access_key_id="mine", access_key_secret="s3cret") as emu:
        assert call(emu, "ListUserDeliveryTasks", credentials=Credentials("mine", "s3cret")).status_code == 200
        assert_error(call(emu, "ListUserDeliveryTasks"), 404, "InvalidAccessKeyId.NotFound")


def test_duplicate_access_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="configured twice"):
        Emulator(sts_credentials=[(EMULATOR_ACCESS_KEY_ID, "x", "y")])


def test_nonce_cache_forgets_after_expiry_and_stays_bounded() -> None:
    cache = NonceCache(capacity=3)
    assert cache.claim("a", expires=100.0, now=0.0)
    assert not cache.claim("a", expires=100.0, now=50.0)
    assert cache.claim("a", expires=200.0, now=100.0)
    for nonce in "bcdef":
        assert cache.claim(nonce, expires=300.0, now=150.0)
    assert len(cache) == 3


# --- faults -----------------------------------------------------------------------------------------


FAULT_TASKS = [EmulatedTask(TaskName=f"task-{i}", Status="online") for i in range(4)]


def outcome_sequence(faults: Faults, requests: int = 80) -> tuple[list[str], dict[str, Any]]:
    """Outcomes of a fixed request sequence: ``ok``, the error code, or ``dropped``."""
    outcomes = []
    with Emulator(tasks=FAULT_TASKS, faults=faults) as emu:
        for i in range(requests):
            params = {"TaskName": f"task-{i % 4}", "Method": ("online", "offline")[i % 2]}
            try:
                response = call(emu, "UpdateUserDeliveryTaskStatus", params)
            except httpx.RemoteProtocolError:
                outcomes.append("dropped")
                continue
            outcomes.append("ok" if response.status_code == 200 else error_code(response))
        return outcomes, emu.stats


def test_seeded_faults_are_reproducible() -> None:
    faults = Faults(unavailable_rate=0.2, internal_error_rate=0.2, drop_rate=0.1, seed=7)

    first, first_stats = outcome_sequence(faults)
    second, second_stats = outcome_sequence(faults)
    other, _ = outcome_sequence(faults.model_copy(update={"seed": 8}))

    assert first == second
    assert first_stats == second_stats
    assert other != first
    assert set(first) == {"ok", "ServiceUnavailable", "InternalError", "dropped"}
    assert first_stats["by_outcome"] == dict(Counter(first))
    assert first_stats["total"] == 80


def test_injected_error_statuses(emulator: Emulator) -> None:
    emulator.faults = Faults(unavailable_rate=1.0)
    assert_error(call(emulator, "ListUserDeliveryTasks"), 503, "ServiceUnavailable")
    emulator.faults = Faults(internal_error_rate=1.0)
    assert_error(call(emulator, "ListUserDeliveryTasks"), 400, "InternalError")
    emulator.faults = Faults(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        call(emulator, "ListUserDeliveryTasks")


def test_faults_apply_only_after_verification(emulator: Emulator) -> None:
    emulator.faults = Faults(unavailable_rate=1.0)
    response = call(emulator, "ListUserDeliveryTasks", credentials=WRONG_SECRET)
    assert_error(response, 403, "SignatureDoesNotMatch")


def test_rate_limit_answers_throttling_with_retry_after(emulator: Emulator) -> None:
    emulator.faults = Faults(throttle_rps=0.5)

    first = call(emulator, "ListUserDeliveryTasks")
    second = call(emulator, "ListUserDeliveryTasks")
    unsigned = send(httpx.Request("GET", f"{emulator.url}/"))

    assert first.status_code == 200
    assert_error(second, 400, "Throttling.User")
    assert 0 < int(second.headers["x-acs-retry-after"]) <= 2000
    assert_error(unsigned, 400, "Throttling.User")
    emulator.faults = Faults()
    assert call(emulator, "ListUserDeliveryTasks").status_code == 200


def test_latency_is_added(emulator: Emulator) -> None:
    emulator.faults = Faults(latency_ms=150, jitter_ms=20)
    started = time.perf_counter()
    assert call(emulator, "ListUserDeliveryTasks").status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_scripted_faults_hit_the_next_calls_for_that_task(emulator: Emulator) -> None:
    emulator.script_fault("access-cn", "InternalError", count=2)
    emulator.script_fault("access-cn", "ServiceUnavailable")
    update = {"TaskName": "access-cn", "Method": "offline"}

    assert_error(call(emulator, "UpdateUserDeliveryTaskStatus", update), 400, "InternalError")
    assert call(emulator, "ListUserDeliveryTasks").status_code == 200
    assert call(emulator, "GetUserDeliveryTask", {"TaskName": "waf-sg"}).status_code == 200
    assert_error(call(emulator, "GetUserDeliveryTask", {"TaskName": "access-cn"}), 400, "InternalError")
    assert_error(call(emulator, "UpdateUserDeliveryTaskStatus", update), 503, "ServiceUnavailable")
    assert emulator.status("access-cn") == "online"
    assert call(emulator, "UpdateUserDeliveryTaskStatus", update).status_code == 200
    assert emulator.status("access-cn") == "offline"


def test_scripted_throttling_drop_and_site_faults(emulator: Emulator) -> None:
    emulator.script_fault("waf-sg", "Throttling.User")
    emulator.script_fault("waf-sg", "dropped")
    emulator.script_fault("site-access", "EsaService.NotOpen", site_id=1001)

    throttled = call(emulator, "GetUserDeliveryTask", {"TaskName": "waf-sg"})
    assert_error(throttled, 400, "Throttling.User")
    assert throttled.headers["x-acs-retry-after"] == "1000"
    with pytest.raises(httpx.RemoteProtocolError):
        call(emulator, "GetUserDeliveryTask", {"TaskName": "waf-sg"})
    site_update = {"SiteId": "1001", "TaskName": "site-access", "Method": "offline"}
    assert_error(call(emulator, "UpdateSiteDeliveryTaskStatus", site_update), 403, "EsaService.NotOpen")
    assert call(emulator, "UpdateSiteDeliveryTaskStatus", site_update).status_code == 200
    assert emulator.stats["by_outcome"] == {"Throttling.User": 1, "dropped": 1, "EsaService.NotOpen": 1, "ok": 1}


def test_script_fault_checks_its_arguments(emulator: Emulator) -> None:
    with pytest.raises(KeyError):
        emulator.script_fault("access-cn", "InternalError", site_id=1001)
    with pytest.raises(ValueError, match="at least 1"):
        emulator.script_fault("access-cn", "InternalError", count=0)


@pytest.mark.parametrize(
    "settings",
    [{"drop_rate": 0.6, "unavailable_rate": 0.6}, {"latency_ms": -1}, {"throttle_rps": 0}, {"nonsense": 1}],
)
def test_bad_fault_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Faults(**settings)


# --- stats ------------------------------------------------------------------------------------------


def test_stats_count_by_action_and_outcome(emulator: Emulator) -> None:
    call(emulator, "UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn", "Method": "offline"})
    call(emulator, "UpdateUserDeliveryTaskStatus", {"TaskName": "access-cn", "Method": "nope"})
    call(emulator, "ListUserDeliveryTasks")
    call(emulator, "Nope")

    expected = {
        "total": 4,
        "by_action": {"UpdateUserDeliveryTaskStatus": 2, "ListUserDeliveryTasks": 1, "unknown": 1},
        "by_outcome": {"ok": 2, "InvalidParameter": 1, "InvalidApi.NotFound": 1},
        "by_action_outcome": {
            "UpdateUserDeliveryTaskStatus": {"ok": 1, "InvalidParameter": 1},
            "ListUserDeliveryTasks": {"ok": 1},
            "unknown": {"InvalidApi.NotFound": 1},
        },
    }
    expected["by_account"] = {EMULATOR_ACCOUNT_ID: dict(expected)}
    assert emulator.stats == expected
    over_http = httpx.get(f"{emulator.url}{STATS_PATH}", trust_env=False)
    assert over_http.status_code == 200
    assert over_http.json() == expected
    assert emulator.stats["total"] == 4

    emulator.reset_stats()
    empty = {"total": 0, "by_action": {}, "by_outcome": {}, "by_action_outcome": {}}
    assert emulator.stats == {**empty, "by_account": {EMULATOR_ACCOUNT_ID: empty}}


def test_stats_refused_to_non_loopback_peers(emulator: Emulator) -> None:
    request = HttpRequest("GET", STATS_PATH, "", {"host": "esa"}, b"", peer="192.0.2.7")
    reply = emulator.handle(request)
    assert reply.status == 403
    assert json.loads(reply.body)["Code"] == "Forbidden"
    assert emulator.handle(HttpRequest("GET", STATS_PATH, "", {}, b"", peer="::1")).status == 200


# --- binding, lifecycle and task files --------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", "::ffff:127.0.0.1"])
def test_only_loopback_binds(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Emulator(host=host)
    assert "\n" not in str(caught.value)
    assert host in str(caught.value)


@pytest.mark.parametrize(
    ("host", "url_host"), [("localhost", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("::1", "[::1]")]
)
def test_loopback_hosts_serve(host: str, url_host: str) -> None:
    with Emulator(host=host) as emu:
        assert emu.url.startswith(f"http://{url_host}:")
        assert call(emu, "ListUserDeliveryTasks").status_code == 200


def test_cli_refuses_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["emulator", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "0.0.0.0" in err


def test_port_in_use_is_a_config_error(emulator: Emulator) -> None:
    port = int(emulator.url.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match="cannot listen"):
        Emulator(port=port).start()


def test_url_needs_a_running_emulator() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError):
        _ = emu.url
    emu.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            emu.start()
    finally:
        emu.stop()
    emu.stop()


def test_stop_closes_keep_alive_connections() -> None:
    with Emulator() as emu, httpx.Client(trust_env=False) as client:
        url = emu.url
        assert client.send(signed(url, "ListUserDeliveryTasks")).status_code == 200
        emu.stop()
        with pytest.raises(httpx.TransportError):
            client.send(signed(url, "ListUserDeliveryTasks"))


def test_load_tasks(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(
        json.dumps(
            [
                {"TaskName": "a", "Status": "online"},
                {"TaskName": "a", "Status": "offline", "SiteId": 7, "DeliveryType": "oss", "DataCenter": "sg"},
            ]
        )
    )

    tasks = load_tasks(path)

    assert tasks[0] == EmulatedTask(TaskName="a", Status="online")
    assert (tasks[1].key, tasks[1].DeliveryType, tasks[1].BusinessType) == ((7, "a"), "oss", "dcdn_log_access_l1")
    with Emulator(tasks=tasks) as emu:
        assert emu.status("a", site_id=7) == "offline"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"TaskName": "a", "Status": "online"}, {"TaskName": "b"}]', r"tasks\.json: \[1\]\.Status: Field required"),
        ('[{"TaskName": "a", "Status": "paused"}]', r"\[0\]\.Status: Input should be 'online' or 'offline'"),
        ('[{"TaskName": "a", "Status": "online", "Colour": "red"}]', r"\[0\]\.Colour: Extra inputs"),
        ('[{"TaskName": "a", "Status": "online", "SiteId": -1}]', r"\[0\]\.SiteId"),
        ('[{"TaskName": "a", "Status": "online"}, {"TaskName": "a", "Status": "offline"}]', r"\[1\]\.TaskName: dup"),
        ('["a"]', r"\[0\]\.task: Input should be a valid dictionary"),
        ('{"TaskName": "a"}', r"tasks\.json: expected a JSON list"),
        ("[{", r"tasks\.json: not valid JSON"),
    ],
)
def test_bad_task_files_name_file_index_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_tasks(path)


def test_missing_task_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read tasks file"):
        load_tasks(tmp_path / "absent.json")


def test_tasks_seed_from_dicts() -> None:
    emu = Emulator(tasks=[{"TaskName": "d", "Status": "offline"}])
    assert emu.tasks == {(None, "d"): EmulatedTask(TaskName="d", Status="offline")}
    with pytest.raises(ConfigError, match=r"tasks: \[0\]\.Status"):
        Emulator(tasks=[{"TaskName": "d"}])


# --- the CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def cli_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"TaskName": "cli-task", "Status": "online"}]))
    script = Path(sys.executable).with_name("esa-scheduler")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "esa_scheduler"]
    process = subprocess.Popen(
        [*command, "emulator", "--port", "0", "--tasks", str(tasks)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        first = process.stdout.readline().rstrip("\n")
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        yield process, match.group(1)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(
    cli_process: tuple[subprocess.Popen[str], str], stop_signal: signal.Signals
) -> None:
    process, url = cli_process

    response = send(signed(url, "GetUserDeliveryTask", {"TaskName": "cli-task"}))

    assert response.status_code == 200, response.text
    assert response.json()["Status"] == "online"
    process.send_signal(stop_signal)
    assert process.wait(timeout=15) == 0


# --- interoperability with the official SDK ---------------------------------------------------------


def test_official_sdk_interoperates(monkeypatch: pytest.MonkeyPatch) -> None:
    from alibabacloud_esa20240910 import models
    from alibabacloud_esa20240910.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_openapi.exceptions import ClientException

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    tasks = [EmulatedTask(TaskName=f"sdk-{i}", Status="online") for i in range(5)]
    tasks.append(EmulatedTask(TaskName=SPACED, Status="offline", BusinessType="dcdn_log_waf"))
    ak, secret, token = STS

    def client(access_key_secret: str, security_token: str | None = None, key_id: str = EMULATOR_ACCESS_KEY_ID) -> Any:
        config = open_api_models.Config(
            access_key_id=key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            endpoint=emu.url.removeprefix("http://"),
            protocol="http",
        )
        return Client(config)

    with Emulator(tasks=tasks, sts_credentials=[STS]) as emu:
        sdk = client(EMULATOR_ACCESS_KEY_SECRET)
        pages = [
            sdk.list_user_delivery_tasks(models.ListUserDeliveryTasksRequest(page_number=n, page_size=4)).body
            for n in (1, 2)
        ]
        assert [p.total_count for p in pages] == [6, 6]
        assert [t.task_name for p in pages for t in p.tasks] == [t.TaskName for t in tasks]
        assert pages[1].tasks[1].business_type == "dcdn_log_waf"

        got = sdk.get_user_delivery_task(models.GetUserDeliveryTaskRequest(task_name=SPACED)).body
        assert (got.task_name, got.status, got.data_center) == (SPACED, "offline", "cn")

        updated = sdk.update_user_delivery_task_status(
            models.UpdateUserDeliveryTaskStatusRequest(task_name=SPACED, method="online")
        ).body
        assert (updated.task_name, updated.status) == (SPACED, "online")
        assert emu.status(SPACED) == "online"

        with pytest.raises(ClientException) as bad_method:
            sdk.update_user_delivery_task_status(
                models.UpdateUserDeliveryTaskStatusRequest(task_name="sdk-0", method="pause")
            )
        assert (bad_method.value.code, bad_method.value.status_code) == ("InvalidParameter", 400)

        with pytest.raises(ClientException) as bad_secret:
            client("wrong-secret").get_user_delivery_task(models.GetUserDeliveryTaskRequest(task_name="sdk-0"))
        assert (bad_secret.value.code, bad_secret.value.status_code) == ("SignatureDoesNotMatch", 403)

        sts = client(secret, token, key_id=ak).get_user_delivery_task(
            models.GetUserDeliveryTaskRequest(task_name="sdk-1")
        )
        assert sts.body.status == "online"

        assert emu.stats["by_outcome"] == {"ok": 5, "InvalidParameter": 1, "SignatureDoesNotMatch": 1}


def test_malformed_http_gets_an_error_document_and_a_hang_up(emulator: Emulator) -> None:
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n")
        received = b""
        while chunk := raw.recv(4096):
            received += chunk

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["Code"] == "BadRequest"


def test_pipelined_requests_are_answered_in_order(emulator: Emulator) -> None:
    host, port = emulator.url.removeprefix("http://").rsplit(":", 1)
    stats_request = f"GET {STATS_PATH} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(stats_request * 2 + stats_request.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"))
        received = b""
        while chunk := raw.recv(4096):
            received += chunk

    assert received.count(b"HTTP/1.1 200 OK") == 3
