"""The ESA client over ``httpx.MockTransport``: wire shape, errors, retries, pagination, throughput."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import re
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
import pytest
from helpers import sdk_authorization, sdk_canonical_query, wire_params

from esa_scheduler.edge.client import (
    ACTIONS,
    API_VERSION,
    ClientSettings,
    DeadlineExceeded,
    DeliveryTask,
    EsaApiError,
    EsaClient,
    StatusChange,
    TaskDetail,
    TaskPage,
    check_endpoint,
    resolve_endpoint,
)
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.pacing import Pacer
from esa_scheduler.edge.retry import Deadline
from esa_scheduler.errors import ConfigError

T = TypeVar("T")
CREDS = Credentials("testAccessKeyId", "testAccessKeySecret", "testSecurityToken")
ENDPOINT = "https://esa.cn-hangzhou.aliyuncs.com"
Handler = Callable[[httpx.Request], httpx.Response] | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class FakeSleep:
    """Records every delay; optionally moves a fake monotonic clock forward by it."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.clock is not None:
            self.clock.now += delay


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class UpperBoundRng(random.Random):
    """Full jitter at its ceiling, so tests can read the backoff caps directly."""

    def uniform(self, a: float, b: float) -> float:
        return b


class ZeroRng(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def make_client(
    handler: Handler,
    settings: ClientSettings | None = None,
    *,
    sleep: FakeSleep | None = None,
    rng: random.Random | None = None,
    monotonic: Callable[[], float] | None = None,
    deadline: float | None = None,
) -> EsaClient:
    counter = itertools.count()
    return EsaClient(
        ENDPOINT,
        CREDS,
        settings if settings is not None else ClientSettings(max_rps=None),
        transport=httpx.MockTransport(handler),
        sleep=sleep if sleep is not None else FakeSleep(),
        clock=lambda: datetime(2025, 1, 1, tzinfo=timezone.utc),
        nonce=lambda: f"{next(counter):032x}",
        rng=rng if rng is not None else random.Random(7),
        monotonic=monotonic if monotonic is not None else FakeClock(),
        deadline=deadline,
    )


def set_t_online(handler: Handler) -> StatusChange:
    """``update_user_delivery_task_status("t", "online")`` on a fresh client over ``handler``."""

    async def go() -> StatusChange:
        async with make_client(handler) as client:
            return await client.update_user_delivery_task_status("t", "online")

    return run(go())


def reply(status: int = 200, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def error(status: int, code: str, message: str = "msg", **extra: str) -> httpx.Response:
    return reply(status, {"RequestId": "REQ-1", "Code": code, "Message": message, **extra})


def response_code(response: httpx.Response) -> str:
    try:
        return str(json.loads(response.content)["Code"])
    except ValueError:
        return "no-json"


def status_ok(request: httpx.Request) -> httpx.Response:
    params = dict(request.url.params)
    return reply(body={"RequestId": "REQ-OK", "TaskName": params["TaskName"], "Status": params["Method"]})


def sequence(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler that plays the given responses (or raises the given errors) in order."""
    seen: list[httpx.Request] = []
    pending = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = pending.pop(0) if len(pending) > 1 else pending[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def verify_signature(request: httpx.Request) -> None:
    """Check what arrived the way the service would, with the official SDK's signer as the judge: the
    wire carries the SDK's canonical query, the body hash is the body's, ``host`` and every
    ``x-acs-*`` header are signed, and the ``Authorization`` is the one the SDK computes."""
    authorization = request.headers["Authorization"]
    names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", *(k.lower() for k in request.headers if k.lower().startswith("x-acs-"))} <= set(names)
    assert request.url.query.decode() == sdk_canonical_query(wire_params(request))
    assert request.headers["x-acs-content-sha256"] == hashlib.sha256(request.content).hexdigest()
    assert authorization == sdk_authorization(request, CREDS.access_key_id, CREDS.access_key_secret)


# --- constants and configuration -------------------------------------------------------------


def test_constants() -> None:
    assert API_VERSION == "2024-09-10"
    assert set(ACTIONS) == {
        "ListUserDeliveryTasks",
        "GetUserDeliveryTask",
        "UpdateUserDeliveryTaskStatus",
        "ListSiteDeliveryTasks",
        "UpdateSiteDeliveryTaskStatus",
    }
    assert len(ACTIONS) == 5


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "https://esa.cn-hangzhou.aliyuncs.com"),
        ({"ESA_REGION": "ap-southeast-1"}, "https://esa.ap-southeast-1.aliyuncs.com"),
        ({"FC_REGION": "ap-southeast-1"}, "https://esa.ap-southeast-1.aliyuncs.com"),
        ({"ESA_REGION": "cn-hangzhou", "FC_REGION": "ap-southeast-1"}, "https://esa.cn-hangzhou.aliyuncs.com"),
        ({"ESA_REGION": " ", "FC_REGION": ""}, "https://esa.cn-hangzhou.aliyuncs.com"),
        ({"ESA_NETWORK": "vpc"}, "https://esa-vpc.cn-hangzhou.aliyuncs.com"),
        ({"ESA_NETWORK": "VPC", "FC_REGION": "ap-southeast-1"}, "https://esa-vpc.ap-southeast-1.aliyuncs.com"),
        ({"ESA_NETWORK": "public"}, "https://esa.cn-hangzhou.aliyuncs.com"),
        ({"ESA_ENDPOINT": "http://127.0.0.1:8080", "ESA_REGION": "x", "ESA_NETWORK": "vpc"}, "http://127.0.0.1:8080"),
        ({"ESA_ENDPOINT": "https://esa.example.com/"}, "https://esa.example.com"),
    ],
)
def test_resolve_endpoint(env: dict[str, str], expected: str) -> None:
    assert resolve_endpoint(env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ESA_NETWORK": "intranet"}, "ESA_NETWORK='intranet' must be 'public' or 'vpc'"),
        ({"ESA_REGION": "evil.com/x"}, "ESA_REGION='evil.com/x' is not a region id"),
        ({"ESA_ENDPOINT": "http://esa.cn-hangzhou.aliyuncs.com"}, "plain http on a non-loopback host"),
    ],
)
def test_resolve_endpoint_refusals(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_endpoint(env)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://esa.cn-hangzhou.aliyuncs.com", "https://esa.cn-hangzhou.aliyuncs.com"),
        ("HTTPS://esa.cn-hangzhou.aliyuncs.com:443/", "https://esa.cn-hangzhou.aliyuncs.com:443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.10.20.30", "http://127.10.20.30"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_check_endpoint_accepts(url: str, expected: str) -> None:
    assert check_endpoint(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://esa.cn-hangzhou.aliyuncs.com",
        "http://10.0.0.1:8080",
        "http://127.0.0.1.nip.io",
        "http://localhost.example.com",
        "ftp://127.0.0.1",
        "esa.cn-hangzhou.aliyuncs.com",
        "https://",
        "https://esa.example.com/prefix",
        "https://esa.example.com/?x=1",
        "https://esa.example.com:99999",
    ],
)
def test_check_endpoint_refuses(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_endpoint(url)
    assert "\n" not in str(info.value)


def test_check_endpoint_never_echoes_a_password() -> None:
    with pytest.raises(ConfigError) as info:
        check_endpoint("https://user:hunter2@esa.example.com")
    assert "hunter2" not in str(info.value)


def test_settings_defaults_and_env() -> None:
    assert ClientSettings.from_env({}) == ClientSettings()
    defaults = ClientSettings()
    assert (defaults.connect_timeout, defaults.read_timeout, defaults.max_rps, defaults.concurrency) == (
        5.0,
        10.0,
        20.0,
        16,
    )
    assert (defaults.max_attempts, defaults.base_delay, defaults.max_delay, defaults.max_total_retry_time) == (
        8,
        0.2,
        5.0,
        30.0,
    )
    env = {"ESA_MAX_RPS": "2.5", "ESA_CONCURRENCY": "4", "ESA_CONNECT_TIMEOUT": "1", "ESA_READ_TIMEOUT": "3.5"}
    settings = ClientSettings.from_env(env)
    assert (settings.max_rps, settings.concurrency, settings.connect_timeout, settings.read_timeout) == (
        2.5,
        4,
        1.0,
        3.5,
    )
    assert ClientSettings.from_env({"ESA_MAX_RPS": "0"}).max_rps == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ESA_MAX_RPS", "fast"),
        ("ESA_MAX_RPS", "-1"),
        ("ESA_MAX_RPS", "nan"),
        ("ESA_MAX_RPS", "inf"),
        ("ESA_CONCURRENCY", "0"),
        ("ESA_CONCURRENCY", "1.5"),
        ("ESA_CONCURRENCY", "-2"),
        ("ESA_CONNECT_TIMEOUT", "0"),
        ("ESA_READ_TIMEOUT", "10s"),
    ],
)
def test_settings_bad_env_values_name_variable_and_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClientSettings.from_env({name: value})
    assert f"{name}={value!r}" in str(info.value)


def test_settings_refuse_values_that_would_stall() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ClientSettings(concurrency=0)
    with pytest.raises(ValueError, match="at least 1"):
        ClientSettings(max_attempts=0)
    with pytest.raises(ValueError, match="max_rps"):
        ClientSettings(max_rps=-1)


def test_client_refuses_plain_http_to_a_remote_host() -> None:
    with pytest.raises(ConfigError):
        EsaClient("http://esa.cn-hangzhou.aliyuncs.com", CREDS)


# --- wire shape ----------------------------------------------------------------------------


def test_update_request_shape_and_signature() -> None:
    handler, seen = sequence(reply(body={"RequestId": "R", "TaskName": "a b*c~d/e+f=g&h 任务", "Status": "offline"}))

    async def go() -> StatusChange:
        async with make_client(handler) as client:
            return await client.update_user_delivery_task_status("a b*c~d/e+f=g&h 任务", "offline")

    change = run(go())
    assert change == StatusChange(request_id="R", task_name="a b*c~d/e+f=g&h 任务", status="offline", attempts=1)
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/"
    assert request.url.query.decode() == "Method=offline&TaskName=a%20b%2Ac~d%2Fe%2Bf%3Dg%26h%20%E4%BB%BB%E5%8A%A1"
    assert request.content == b""
    assert request.headers["x-acs-action"] == "UpdateUserDeliveryTaskStatus"
    assert request.headers["x-acs-version"] == API_VERSION
    assert request.headers["Accept"] == "application/json"
    assert re.fullmatch(r"esa-scheduler/\S+ httpx/\S+ Python/\d+\.\d+\.\d+\S*", request.headers["User-Agent"])
    assert request.headers["x-acs-date"] == "2025-01-01T00:00:00Z"
    assert request.headers["x-acs-security-token"] == "testSecurityToken"
    assert "Content-Type" not in request.headers
    verify_signature(request)


def test_site_update_sends_site_id() -> None:
    handler, seen = sequence(reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"}))

    async def go() -> StatusChange:
        async with make_client(handler) as client:
            return await client.update_site_delivery_task_status(12345, "t", "online")

    assert run(go()).status == "online"
    assert dict(seen[0].url.params) == {"SiteId": "12345", "TaskName": "t", "Method": "online"}
    assert seen[0].headers["x-acs-action"] == "UpdateSiteDeliveryTaskStatus"


def test_get_task_ignores_extra_fields() -> None:
    body = {
        "RequestId": "R",
        "TaskName": "t",
        "Status": "online",
        "BusinessType": "dcdn_log_er",
        "DataCenter": "cn",
        "DeliveryType": "sls",
        "SinkConfig": {"Project": "p"},
        "DiscardRate": 0.0,
    }
    handler, seen = sequence(reply(body=body))

    async def go() -> TaskDetail:
        async with make_client(handler) as client:
            return await client.get_user_delivery_task("t")

    detail = run(go())
    assert (detail.task_name, detail.status, detail.delivery_type, detail.request_id) == ("t", "online", "sls", "R")
    assert dict(seen[0].url.params) == {"TaskName": "t"}


def test_method_and_page_size_are_checked_before_sending() -> None:
    handler, seen = sequence(reply(body={}))

    async def go() -> None:
        async with make_client(handler) as client:
            with pytest.raises(ValueError, match="method"):
                await client.update_user_delivery_task_status("t", "on")
            with pytest.raises(ValueError, match="page_size"):
                await client.list_user_delivery_tasks(page_size=0)

    run(go())
    assert seen == []


def test_closed_client_refuses_to_send() -> None:
    handler, _ = sequence(reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"}))

    async def go() -> None:
        async with make_client(handler) as client:
            await client.update_user_delivery_task_status("t", "online")
        with pytest.raises(RuntimeError):
            await client.update_user_delivery_task_status("t", "online")

    run(go())


def test_models_accept_field_names_too() -> None:
    task = DeliveryTask(task_name="t", status="online")
    assert task.model_dump(by_alias=True)["TaskName"] == "t"
    page = TaskPage.model_validate({"TotalCount": 0, "Unknown": 1})
    assert page.tasks == []


# --- errors --------------------------------------------------------------------------------


def test_error_body_becomes_a_one_line_error() -> None:
    handler, _ = sequence(
        error(
            400,
            "InvalidParameter",
            "The specified parameter is invalid.",
            RequestId="34DCBC8A-6DAA11D7DDBD",
            HostId="esa.cn-hangzhou.aliyuncs.com",
            Recommend="https://api.aliyun.com/troubleshoot?q=InvalidParameter",
        )
    )

    with pytest.raises(EsaApiError) as info:
        set_t_online(handler)
    err = info.value
    assert str(err) == (
        "UpdateUserDeliveryTaskStatus failed: InvalidParameter (HTTP 400): "
        "The specified parameter is invalid. [RequestId 34DCBC8A-6DAA11D7DDBD]"
    )
    assert (err.action, err.code, err.http_status, err.request_id) == (
        "UpdateUserDeliveryTaskStatus",
        "InvalidParameter",
        400,
        "34DCBC8A-6DAA11D7DDBD",
    )
    assert err.host_id == "esa.cn-hangzhou.aliyuncs.com"
    assert err.recommend is not None
    assert (err.retryable, err.attempts) == (False, 1)


def test_multi_line_server_message_stays_one_line() -> None:
    handler, _ = sequence(error(403, "Forbidden.RAM", "You are not authorized\n to do this operation."))

    async def go() -> None:
        async with make_client(handler) as client:
            await client.get_user_delivery_task("t")

    with pytest.raises(EsaApiError) as info:
        run(go())
    assert "\n" not in str(info.value)
    assert "You are not authorized to do this operation." in str(info.value)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "InvalidParameter"),
        (403, "SignatureDoesNotMatch"),
        (400, "SignatureDoesNotMatch"),
        (404, "InvalidAccessKeyId.NotFound"),
        (403, "Forbidden.RAM"),
        (403, "EsaService.NotOpen"),
        (400, "IncompleteSignature"),
        (400, "InvalidTimeStamp.Expired"),
        (404, "InvalidApi.NotFound"),
        (400, "MissingTaskName"),
    ],
)
def test_permanent_errors_are_attempted_once(status: int, code: str) -> None:
    response = error(status, code)
    response.headers["x-acs-retry-after"] = "100"  # a retry hint does not make a permanent error transient
    handler, seen = sequence(response)
    sleep = FakeSleep()

    async def go() -> EsaClient:
        async with make_client(handler, sleep=sleep) as client:
            with pytest.raises(EsaApiError) as info:
                await client.update_user_delivery_task_status("t", "online")
            assert (info.value.code, info.value.retryable, info.value.attempts) == (code, False, 1)
            return client

    client = run(go())
    assert len(seen) == 1
    assert client.api_calls == 1
    assert sleep.delays == []


def test_non_json_error_page() -> None:
    handler, _ = sequence(httpx.Response(403, text="<html>\n<h1>Forbidden</h1></html>"))

    async def go() -> None:
        async with make_client(handler) as client:
            await client.get_user_delivery_task("t")

    with pytest.raises(EsaApiError) as info:
        run(go())
    assert info.value.code == "HTTPError"
    assert info.value.http_status == 403
    assert "<h1>Forbidden</h1>" in info.value.message
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("response", "what"),
    [
        (httpx.Response(200, text="<xml/>"), "body is not JSON"),
        (httpx.Response(200, json=["x"]), "body is a JSON list, not an object"),
        (reply(body={"RequestId": "R", "TaskName": "t"}), "missing Status"),
        (reply(body={"RequestId": "R", "TaskName": "t", "Status": 1}), "Status: Input should be a valid string"),
        (
            reply(body={"RequestId": "R", "Code": "Throttling.User", "Message": "Request was denied"}),
            "HTTP 200 carried an error body: Throttling.User: Request was denied",
        ),
    ],
)
def test_malformed_success_responses(response: httpx.Response, what: str) -> None:
    handler, seen = sequence(response)

    with pytest.raises(EsaApiError) as info:
        set_t_online(handler)
    err = info.value
    assert err.code == "MalformedResponse"
    assert err.message == f"malformed UpdateUserDeliveryTaskStatus response: {what}"
    assert str(err).startswith("UpdateUserDeliveryTaskStatus failed: MalformedResponse (HTTP 200): ")
    assert not err.retryable
    assert len(seen) == 1


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        error(400, "Throttling"),
        error(400, "Throttling.User"),
        error(429, "Throttling.Api"),
        error(503, "ServiceUnavailable"),
        error(400, "InternalError", "An internal exception occurred, please try again later."),
        error(500, "InternalError"),
        error(500, "UnknownServerFault"),
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(504),
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=lambda f: type(f).__name__ if isinstance(f, Exception) else f"{f.status_code}-{response_code(f)}",
)
def test_transient_failures_are_retried_with_full_jitter(failure: httpx.Response | Exception) -> None:
    ok = reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    handler, seen = sequence(failure, failure, failure, ok)
    clock = FakeClock()
    sleep = FakeSleep(clock)  # backoff sleeps move the clock the pacer reads, as real time does

    async def go() -> tuple[StatusChange, int]:
        async with make_client(handler, sleep=sleep, rng=random.Random(42), monotonic=clock) as client:
            return await client.update_user_delivery_task_status("t", "online"), client.api_calls

    change, calls = run(go())
    assert change.attempts == 4
    assert calls == 4
    twin = random.Random(42)
    backoff = [twin.uniform(0, min(5.0, 0.2 * 2**n)) for n in range(3)]
    assert [d for d in sleep.delays if d in backoff] == backoff
    # throttling also widens the shared pacing (0.05 s, then 0.1 s, ...): any other sleep is that
    assert all(0 < d <= 0.2 for d in sleep.delays if d not in backoff)
    # every attempt is signed afresh
    assert len({r.headers["x-acs-signature-nonce"] for r in seen}) == 4
    for request in seen:
        verify_signature(request)


def test_backoff_caps_grow_exponentially_up_to_max_delay() -> None:
    handler, _ = sequence(error(500, "InternalError"))
    sleep = FakeSleep()
    settings = ClientSettings(max_rps=None, max_attempts=6, base_delay=1.0, max_delay=3.0, max_total_retry_time=1000)

    async def go() -> EsaApiError:
        async with make_client(handler, settings, sleep=sleep, rng=UpperBoundRng()) as client:
            with pytest.raises(EsaApiError) as info:
                await client.get_user_delivery_task("t")
            return info.value

    err = run(go())
    assert sleep.delays == [1.0, 2.0, 3.0, 3.0, 3.0]
    assert (err.code, err.attempts, err.retryable) == ("InternalError", 6, True)


def test_gives_up_after_max_attempts() -> None:
    handler, seen = sequence(error(400, "Throttling.User", "Request was denied due to user flow control."))
    clock = FakeClock()
    sleep = FakeSleep(clock)

    async def go() -> EsaApiError:
        settings = ClientSettings(max_rps=None, max_attempts=5)
        async with make_client(handler, settings, sleep=sleep, rng=UpperBoundRng(), monotonic=clock) as client:
            with pytest.raises(EsaApiError) as info:
                await client.update_user_delivery_task_status("t", "online")
            return info.value

    err = run(go())
    assert len(seen) == 5
    assert sleep.delays == pytest.approx([0.2, 0.4, 0.8, 1.6])
    assert err.attempts == 5
    assert str(err) == (
        "UpdateUserDeliveryTaskStatus failed after 5 attempts: Throttling.User (HTTP 400): "
        "Request was denied due to user flow control. [RequestId REQ-1]"
    )


def test_total_retry_time_is_bounded() -> None:
    clock = FakeClock()
    sleep = FakeSleep(clock)
    handler, seen = sequence(error(503, "ServiceUnavailable"))
    settings = ClientSettings(max_rps=None, max_attempts=10, max_total_retry_time=1.0)

    async def go() -> EsaApiError:
        async with make_client(handler, settings, sleep=sleep, rng=UpperBoundRng(), monotonic=clock) as client:
            with pytest.raises(EsaApiError) as info:
                await client.get_user_delivery_task("t")
            return info.value

    err = run(go())
    # 0.2 + 0.4 spent; waiting 0.8 more would pass the 1.0 s budget
    assert sleep.delays == pytest.approx([0.2, 0.4])
    assert len(seen) == 3
    assert err.attempts == 3


def test_timeouts_become_retryable_timeout_errors() -> None:
    handler, seen = sequence(httpx.ReadTimeout("read timed out"))

    async def go() -> EsaApiError:
        async with make_client(handler, ClientSettings(max_rps=None, max_attempts=5)) as client:
            with pytest.raises(EsaApiError) as info:
                await client.list_user_delivery_tasks()
            return info.value

    err = run(go())
    assert (err.code, err.retryable, err.attempts, err.http_status) == ("Timeout", True, 5, None)
    assert str(err) == "ListUserDeliveryTasks failed after 5 attempts: Timeout: ReadTimeout: read timed out"
    assert len(seen) == 5


def test_connection_errors_become_connection_error() -> None:
    handler, _ = sequence(httpx.ConnectError("[Errno 111] Connection refused"))

    async def go() -> EsaApiError:
        async with make_client(handler, ClientSettings(max_rps=None, max_attempts=2)) as client:
            with pytest.raises(EsaApiError) as info:
                await client.get_user_delivery_task("t")
            return info.value

    assert run(go()).code == "ConnectionError"


def test_throttling_slows_every_caller_down_and_success_eases_back() -> None:
    """After a throttle the shared pacer spaces calls out; successes bring it back to the set rate."""
    ok = reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    handler, _ = sequence(error(400, "Throttling.User"), *([ok] * 40))
    clock = FakeClock()
    sleep = FakeSleep(clock)

    async def go() -> None:
        async with make_client(handler, ClientSettings(max_rps=None), sleep=sleep, rng=ZeroRng(), monotonic=clock) as c:
            for _ in range(40):
                await c.update_user_delivery_task_status("t", "online")

    run(go())
    pacing = [d for d in sleep.delays if d > 0]
    assert pacing[0] == pytest.approx(0.05)  # unlimited rate, but throttled once: 20/s for a start
    assert len(pacing) < 40  # ...eased back to unlimited after enough successes
    assert pacing == sorted(pacing, reverse=True)


def test_retry_after_header_is_honoured_in_milliseconds() -> None:
    ok = reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    throttled = error(400, "Throttling.User")
    throttled.headers["x-acs-retry-after"] = "1500"
    handler, _ = sequence(throttled, ok)
    sleep, spread = FakeSleep(), FakeSleep()

    async def go(rng: random.Random, fake: FakeSleep) -> StatusChange:
        async with make_client(handler, sleep=fake, rng=rng) as client:
            return await client.update_user_delivery_task_status("t", "online")

    assert run(go(ZeroRng(), sleep)).attempts == 2
    assert sleep.delays[0] == 1.5  # never earlier than the server asked
    handler, _ = sequence(throttled, ok)
    run(go(UpperBoundRng(), spread))
    assert spread.delays[0] == pytest.approx(2.25)  # at most half again, to spread callers out


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5", "²"])
def test_unreadable_retry_after_falls_back_to_backoff(value: str) -> None:
    ok = reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    throttled = httpx.Response(
        503,
        json={"Code": "ServiceUnavailable", "Message": "busy"},
        headers=[(b"x-acs-retry-after", value.encode())],
    )
    handler, _ = sequence(throttled, ok)
    sleep = FakeSleep()

    async def go() -> None:
        async with make_client(handler, sleep=sleep, rng=UpperBoundRng()) as client:
            await client.update_user_delivery_task_status("t", "online")

    run(go())
    assert sleep.delays == [0.2]


def test_signature_nonce_used_is_retried_once_with_a_fresh_nonce() -> None:
    ok = reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    handler, seen = sequence(error(400, "SignatureNonceUsed"), ok)
    sleep = FakeSleep()

    async def go() -> StatusChange:
        async with make_client(handler, sleep=sleep) as client:
            return await client.update_user_delivery_task_status("t", "online")

    assert run(go()).attempts == 2
    assert seen[0].headers["x-acs-signature-nonce"] != seen[1].headers["x-acs-signature-nonce"]
    assert seen[0].headers["Authorization"] != seen[1].headers["Authorization"]
    verify_signature(seen[1])
    assert sleep.delays == []


def test_signature_nonce_used_twice_is_final() -> None:
    handler, seen = sequence(error(400, "SignatureNonceUsed"))

    async def go() -> EsaApiError:
        async with make_client(handler) as client:
            with pytest.raises(EsaApiError) as info:
                await client.update_user_delivery_task_status("t", "online")
            return info.value

    err = run(go())
    assert len(seen) == 2
    assert (err.code, err.attempts) == ("SignatureNonceUsed", 2)


def test_signature_nonce_used_after_a_throttle_still_gets_its_one_retry() -> None:
    ok = reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    handler, seen = sequence(error(400, "Throttling"), error(400, "SignatureNonceUsed"), ok)

    assert set_t_online(handler).attempts == 3
    assert len(seen) == 3


# --- pagination ----------------------------------------------------------------------------


def paged_server(total: int, *, announced: Callable[[int], int] | None = None) -> tuple[Handler, list[dict[str, str]]]:
    """A list endpoint over ``total`` tasks; ``announced`` can lie about TotalCount per page."""
    calls: list[dict[str, str]] = []
    names = [f"task-{i:04d}" for i in range(total)]

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        calls.append(params)
        number, size = int(params["PageNumber"]), int(params["PageSize"])
        chunk = names[(number - 1) * size : number * size]
        tasks = [{"TaskName": n, "Status": "online", "BusinessType": "dcdn_log_er", "Extra": 1} for n in chunk]
        count = announced(number) if announced else total
        return reply(
            body={
                "RequestId": f"R{number}",
                "TotalCount": count,
                "PageNumber": number,
                "PageSize": size,
                "Tasks": tasks,
            }
        )

    return handler, calls


def list_user_tasks(handler: Handler, **kwargs: Any) -> list[DeliveryTask]:
    """``list_user_delivery_tasks(**kwargs)`` on a fresh client over ``handler``."""

    async def go() -> list[DeliveryTask]:
        async with make_client(handler) as client:
            return await client.list_user_delivery_tasks(**kwargs)

    return run(go())


def test_pagination_follows_every_page() -> None:
    handler, calls = paged_server(250)

    async def go() -> tuple[list[DeliveryTask], int]:
        async with make_client(handler) as client:
            return await client.list_user_delivery_tasks(business_type="dcdn_log_er", page_size=100), client.api_calls

    tasks, api_calls = run(go())
    assert [t.task_name for t in tasks] == [f"task-{i:04d}" for i in range(250)]
    assert [(c["PageNumber"], c["PageSize"], c["BusinessType"]) for c in calls] == [
        ("1", "100", "dcdn_log_er"),
        ("2", "100", "dcdn_log_er"),
        ("3", "100", "dcdn_log_er"),
    ]
    assert api_calls == 3


def test_pagination_stops_when_total_count_is_reached_on_a_full_page() -> None:
    handler, calls = paged_server(200)

    assert len(list_user_tasks(handler, page_size=100)) == 200
    assert len(calls) == 2


def test_a_stale_total_count_fails_closed() -> None:
    # tasks deleted while we page: the last page is short and TotalCount is stale. The inventory
    # cannot be proven complete, so the listing is refused rather than trusted.
    handler, calls = paged_server(250, announced=lambda n: 260)

    with pytest.raises(EsaApiError) as info:
        list_user_tasks(handler, page_size=100)
    assert info.value.code == "IncompleteListing"
    assert "TotalCount is 260 but 3 page(s) of up to 100 held 250 distinct tasks" in info.value.message
    assert len(calls) == 3


def test_empty_account() -> None:
    handler, calls = paged_server(0)

    assert list_user_tasks(handler) == []
    assert len(calls) == 1


def test_truncated_page_is_refused() -> None:
    handler, _ = paged_server(150, announced=lambda n: 250)

    with pytest.raises(EsaApiError) as info:
        list_user_tasks(handler, page_size=50)
    assert info.value.code == "IncompleteListing"
    assert info.value.message == (
        "incomplete ListUserDeliveryTasks listing: TotalCount is 250 but 5 page(s) of up to 50 held 150 distinct tasks"
    )
    assert info.value.request_id == "R5"  # pages 4 and 5 came in one batch; both were empty


def test_an_absurd_total_count_costs_a_few_calls_then_fails_closed() -> None:
    # page 1 announces far more than the account has: later pages come in small growing batches,
    # so the first short page ends the listing after a handful of calls instead of a fan-out
    handler, calls = paged_server(240, announced=lambda n: 100_000)

    with pytest.raises(EsaApiError) as info:
        list_user_tasks(handler, page_size=10)
    assert info.value.code == "IncompleteListing"
    assert "TotalCount is 100000" in info.value.message and "held 240 distinct tasks" in info.value.message
    assert 25 <= len(calls) <= 25 + 3  # 25 pages are needed; at most a batch of 4 minus the page that ended it


def test_site_list_sends_site_id_and_follows_pages() -> None:
    handler, calls = paged_server(3)

    async def go() -> list[DeliveryTask]:
        async with make_client(handler) as client:
            return await client.list_site_delivery_tasks(777, page_size=2)

    assert len(run(go())) == 3
    assert [(c["SiteId"], c["PageNumber"]) for c in calls] == [("777", "1"), ("777", "2")]
    assert "BusinessType" not in calls[0]


def test_list_page_with_error_body_is_malformed() -> None:
    handler, _ = sequence(reply(body={"Code": "InternalError", "Message": "try again"}))

    with pytest.raises(EsaApiError, match="HTTP 200 carried an error body: InternalError: try again"):
        list_user_tasks(handler)


# --- throughput ----------------------------------------------------------------------------


def test_rate_limit_paces_concurrent_calls() -> None:
    # GIVEN a frozen clock, every pacing wait is exactly what the limiter asked for
    sleep = FakeSleep()

    async def go() -> None:
        settings = ClientSettings(max_rps=10.0, concurrency=16)
        async with make_client(status_ok, settings, sleep=sleep) as client:
            await asyncio.gather(*(client.update_user_delivery_task_status(f"t{i}", "online") for i in range(20)))

    run(go())
    # 10 rps leaves no burst: the first call goes at once, then one every 100 ms
    assert sorted(sleep.delays) == pytest.approx([k / 10 for k in range(1, 20)])


def test_rate_limit_allows_a_small_burst() -> None:
    sleep = FakeSleep()

    async def go() -> None:
        async with make_client(status_ok, ClientSettings(max_rps=50.0), sleep=sleep) as client:
            await asyncio.gather(*(client.update_user_delivery_task_status(f"t{i}", "online") for i in range(30)))

    run(go())
    # 50 rps allows a burst of 5 requests, after which they are spaced 20 ms apart
    assert len([d for d in sleep.delays if d > 1e-9]) == 25
    assert max(sleep.delays) == pytest.approx(25 / 50)


def test_rate_limit_with_a_moving_clock_keeps_the_average_rate() -> None:
    clock = FakeClock()
    sleep = FakeSleep(clock)

    async def go() -> None:
        async with make_client(status_ok, ClientSettings(max_rps=20.0), sleep=sleep, monotonic=clock) as client:
            for i in range(41):
                await client.update_user_delivery_task_status(f"t{i}", "online")

    start = clock.now
    run(go())
    # 41 sequential calls at 20 rps with a burst of 2 take 39 intervals of 50 ms
    assert clock.now - start == pytest.approx(39 * 0.05)


def test_idle_time_does_not_bank_an_unbounded_burst() -> None:
    clock = FakeClock()
    sleep = FakeSleep()

    async def go() -> None:
        async with make_client(status_ok, ClientSettings(max_rps=10.0), sleep=sleep, monotonic=clock) as client:
            await client.update_user_delivery_task_status("first", "online")
            clock.now += 3600
            await asyncio.gather(*(client.update_user_delivery_task_status(f"t{i}", "online") for i in range(5)))

    run(go())
    assert sorted(sleep.delays) == pytest.approx([0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("max_rps", [None, 0.0])
def test_unlimited_rate(max_rps: float | None) -> None:
    sleep = FakeSleep()

    async def go() -> None:
        async with make_client(status_ok, ClientSettings(max_rps=max_rps), sleep=sleep) as client:
            await asyncio.gather(*(client.update_user_delivery_task_status(f"t{i}", "online") for i in range(50)))

    run(go())
    assert sleep.delays == []


def test_retried_attempts_also_go_through_the_limiter() -> None:
    ok = reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    handler, seen = sequence(error(500, "InternalError"), error(500, "InternalError"), ok)
    sleep = FakeSleep()

    async def go() -> None:
        # zero backoff and a failure that is not throttling isolate the pacing waits
        async with make_client(handler, ClientSettings(max_rps=10.0), sleep=sleep, rng=ZeroRng()) as client:
            await client.update_user_delivery_task_status("t", "online")

    run(go())
    assert len(seen) == 3
    assert sleep.delays == pytest.approx([0.1, 0.2])


def test_concurrency_is_capped() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight -= 1
        return status_ok(request)

    async def go() -> int:
        async with make_client(handler, ClientSettings(max_rps=None, concurrency=3)) as client:
            await asyncio.gather(*(client.update_user_delivery_task_status(f"t{i}", "online") for i in range(20)))
            return client.api_calls

    assert run(go()) == 20
    assert peak == 3


def test_backoff_sleeps_do_not_hold_a_concurrency_slot() -> None:
    # with one slot, a call sleeping in backoff must not block another call from being sent
    order: list[str] = []
    failed: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.params["TaskName"]
        order.append(name)
        if name == "slow" and name not in failed:
            failed.add(name)
            return error(503, "ServiceUnavailable")
        return status_ok(request)

    gate = asyncio.Event()

    async def sleep(delay: float) -> None:
        await gate.wait()

    async def go() -> None:
        client = EsaClient(
            ENDPOINT,
            CREDS,
            ClientSettings(max_rps=None, concurrency=1),
            transport=httpx.MockTransport(handler),
            sleep=sleep if sleep is not None else FakeSleep(),
            rng=UpperBoundRng(),
        )
        async with client:
            slow = asyncio.ensure_future(client.update_user_delivery_task_status("slow", "online"))
            await asyncio.sleep(0.01)
            await client.update_user_delivery_task_status("fast", "online")
            gate.set()
            await slow

    run(go())
    assert order == ["slow", "fast", "slow"]


def test_api_calls_counts_retries() -> None:
    handler, _ = sequence(
        error(503, "ServiceUnavailable"), reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    )

    async def go() -> int:
        async with make_client(handler) as client:
            await client.update_user_delivery_task_status("t", "online")
            return client.api_calls

    assert run(go()) == 2


# --- throttling by status and the run's deadline (issue 14) ---------------------------------------


@pytest.mark.parametrize(
    "throttled",
    [
        httpx.Response(429, text="slow down", headers={"Retry-After": "2"}),
        httpx.Response(429, json={"Code": "Throttling.Api", "Message": "x"}, headers={"Retry-After": "2"}),
        httpx.Response(503, text="<html>busy</html>", headers={"Retry-After": "2"}),
        httpx.Response(429, headers={"Retry-After": "Wed, 01 Jan 2025 00:00:02 GMT"}),
    ],
    ids=["429-text", "429-json", "503-html", "429-http-date"],
)
def test_429_and_503_are_throttling_whatever_the_body(throttled: httpx.Response) -> None:
    ok = reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"})
    handler, seen = sequence(throttled, ok)
    sleep = FakeSleep()

    async def go() -> StatusChange:
        # the client's wall clock reads 2025-01-01T00:00:00Z, so the HTTP date is 2 s ahead too
        async with make_client(handler, ClientSettings(max_rps=None), sleep=sleep, rng=ZeroRng()) as client:
            return await client.update_user_delivery_task_status("t", "online")

    assert run(go()).attempts == 2
    assert len(seen) == 2
    assert sleep.delays[0] == 2.0  # Retry-After in seconds (or as a date), never earlier


def test_a_backoff_that_would_cross_the_deadline_is_not_slept() -> None:
    handler, seen = sequence(error(400, "Throttling.User"))
    clock = FakeClock()
    sleep = FakeSleep(clock)

    async def go() -> DeadlineExceeded:
        settings = ClientSettings(max_rps=None, base_delay=1.0, max_delay=1.0)
        async with make_client(
            handler, settings, sleep=sleep, rng=UpperBoundRng(), monotonic=clock, deadline=clock.now + 2.5
        ) as client:
            with pytest.raises(DeadlineExceeded) as info:
                await client.update_user_delivery_task_status("t", "online")
            return info.value

    err = run(go())
    backoff = [d for d in sleep.delays if d >= 1.0]
    assert backoff == [1.0, 1.0]  # a third 1 s wait would start the next attempt after the cut-off
    assert clock.now <= 100.0 + 2.5
    assert (err.code, err.last_code, err.attempts) == ("DeadlineExceeded", "Throttling.User", 3)
    assert len(seen) == 3


def test_no_attempt_starts_after_the_deadline() -> None:
    handler, seen = sequence(reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"}))
    clock = FakeClock()

    async def go() -> None:
        async with make_client(handler, monotonic=clock, deadline=clock.now - 0.001) as client:
            with pytest.raises(DeadlineExceeded) as info:
                await client.update_user_delivery_task_status("t", "online")
            assert info.value.last_code is None and info.value.attempts == 0

    run(go())
    assert seen == []


@pytest.mark.parametrize(("cut_off", "passed"), [(100.0, True), (100.001, False)], ids=["at", "just-before"])
def test_the_cut_off_instant_itself_is_past_the_deadline(cut_off: float, passed: bool) -> None:
    """Pinned on ``Deadline`` and the pacer themselves: through the client, the wait for a connection
    slot, whose timeout is the time remaining (0 here), gives up first and hides this edge."""
    clock = FakeClock()  # reads 100.0
    deadline = Deadline(cut_off, clock)
    assert deadline.passed() is passed
    assert run(Pacer(1.0, FakeSleep(clock), clock).wait(deadline)) is not passed  # no slot reserved at it


def test_a_pacer_slot_after_the_deadline_is_not_waited_for() -> None:
    handler, seen = sequence(reply(body={"RequestId": "R", "TaskName": "t", "Status": "online"}))
    clock = FakeClock()
    sleep = FakeSleep(clock)

    async def go() -> list[str]:
        settings = ClientSettings(max_rps=1.0)  # one call a second, no burst
        outcomes = []
        async with make_client(handler, settings, sleep=sleep, monotonic=clock, deadline=clock.now + 1.5) as client:
            for _ in range(3):
                try:
                    await client.update_user_delivery_task_status("t", "online")
                    outcomes.append("ok")
                except DeadlineExceeded:
                    outcomes.append("deadline")
        return outcomes

    # slots at +0 s and +1 s fit; the one at +2 s is past the cut-off and is not slept for
    assert run(go()) == ["ok", "ok", "deadline"]
    assert len(seen) == 2 and sum(sleep.delays) == pytest.approx(1.0)


def test_a_hanging_attempt_is_cut_one_read_timeout_after_the_deadline() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def go() -> tuple[DeadlineExceeded, float]:
        settings = ClientSettings(max_rps=None, read_timeout=0.2)
        started = time.monotonic()
        client = EsaClient(
            ENDPOINT, CREDS, settings, transport=httpx.MockTransport(hang), deadline=time.monotonic() + 0.1
        )
        async with client:
            with pytest.raises(DeadlineExceeded) as info:
                await client.update_user_delivery_task_status("t", "online")
        return info.value, time.monotonic() - started

    err, elapsed = run(go())
    assert err.last_code == "Timeout" and err.attempts == 1
    assert elapsed < 0.1 + 0.2 + 1.0  # the mock transport has no timeout of its own: the cut did it
