"""FC 3.0 ``InvokeFunction`` over loopback: our ``FcClient`` and the official SDK against the
emulator's registered functions, async task ids, failures, and functions that call back."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from typing import Any

import pytest
from helpers import official_sdk_config

from esa_scheduler.edge.acs import AcsClient, ApiRequest, ClientSettings
from esa_scheduler.edge.client import EsaApiError, EsaClient
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.fc_invoke import ALREADY_DISPATCHED, FC_NAME, FcClient, async_task_id
from esa_scheduler.emulator import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    EMULATOR_ACCOUNT_ID,
    FC_API_VERSION,
    EmulatedTask,
    Emulator,
    Invocation,
)

OWN = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)
FAST = ClientSettings(max_rps=0, max_attempts=2, base_delay=0.01, max_delay=0.01)
EVENT = json.dumps({"action": "reconcile", "target": "prod-cn", "at": "2026-12-03T09:00:00Z"}).encode()


class Recorder:
    """A function body that keeps every event it was given."""

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, event: bytes) -> object:
        with self._lock:
            self.events.append(event)
        return {"received": len(event)}


def invoke(emu: Emulator, function: str, task_id: str, event: bytes = EVENT, qualifier: str | None = None) -> str:
    async def go() -> str:
        async with FcClient(emu.url, OWN, FAST) as fc:
            return await fc.invoke_async(function, event, task_id, qualifier)

    return asyncio.run(go())


def test_async_invocation_runs_the_function_with_the_event() -> None:
    body = Recorder()
    with Emulator(functions={"esa-scheduler": body}) as emu:
        request_id = invoke(emu, "esa-scheduler", "t20261203T0900-prod-cn", qualifier="LATEST")
        (done,) = emu.wait_for_invocations(1, timeout=30)

    assert body.events == [EVENT]
    assert done == Invocation(
        function="esa-scheduler",
        task_id="t20261203T0900-prod-cn",
        event=EVENT,
        invocation_type="Async",
        account=EMULATOR_ACCOUNT_ID,
        request_id=request_id,
        outcome="ok",
        result={"received": len(EVENT)},
    )
    assert emu.stats["by_action_outcome"] == {"InvokeFunction": {"ok": 1}}


def test_a_repeated_task_id_is_already_dispatched_and_runs_once() -> None:
    body = Recorder()
    with Emulator(functions={"esa-scheduler": body}) as emu:
        first = invoke(emu, "esa-scheduler", "t1-prod-cn")
        again = invoke(emu, "esa-scheduler", "t1-prod-cn")
        other = invoke(emu, "esa-scheduler", "t1-prod-intl")
        emu.wait_for_invocations(2, timeout=30)

    assert first not in (ALREADY_DISPATCHED, "") and other not in (ALREADY_DISPATCHED, first)
    assert again == ALREADY_DISPATCHED
    assert [record.task_id for record in emu.invocations] == ["t1-prod-cn", "t1-prod-intl"]
    assert len(body.events) == 2
    assert emu.stats["by_outcome"] == {"ok": 2, "AsyncTaskAlreadyExists": 1}


def test_unknown_function_is_function_not_found() -> None:
    with Emulator(functions={"esa-scheduler": Recorder()}) as emu, pytest.raises(EsaApiError) as info:
        invoke(emu, "nope", "t1")
    assert (info.value.code, info.value.http_status, info.value.action) == ("FunctionNotFound", 404, "InvokeFunction")
    assert emu.invocations == []


def test_a_failing_function_is_recorded_and_the_emulator_keeps_serving() -> None:
    def broken(event: bytes) -> object:
        raise RuntimeError(f"cannot handle {len(event)} bytes")

    body = Recorder()
    with Emulator(functions={"broken": broken, "fine": body}) as emu:
        invoke(emu, "broken", "t1")
        invoke(emu, "fine", "t1")
        records = emu.wait_for_invocations(2, timeout=30)

    by_function = {record.function: record for record in records}
    assert (by_function["broken"].outcome, by_function["broken"].error) == (
        "error",
        f"RuntimeError: cannot handle {len(EVENT)} bytes",
    )
    assert by_function["fine"].outcome == "ok"
    assert body.events == [EVENT]


def test_functions_may_call_the_emulator_and_invoke_further_runs() -> None:
    """The coordinator shape: one run fans out to target runs, each of which calls ESA."""
    tasks = [EmulatedTask(TaskName=f"task-{i}", Status="online") for i in range(3)]

    def target(event: bytes) -> object:
        name = json.loads(event)["task"]

        async def pause() -> str:
            async with EsaClient(emu.url, OWN, FAST) as esa:
                return (await esa.update_user_delivery_task_status(name, "offline")).status

        return asyncio.run(pause())

    def coordinator(event: bytes) -> object:
        return [
            invoke(emu, "target", f"run-{task.TaskName}", json.dumps({"task": task.TaskName}).encode())
            for task in tasks
        ]

    with Emulator(tasks=tasks, functions={"coordinator": coordinator, "target": target}) as emu:
        invoke(emu, "coordinator", "tick-1")
        records = emu.wait_for_invocations(4, timeout=30)

    assert [record.result for record in records if record.function == "target"] == ["offline"] * 3
    assert {emu.status(task.TaskName) for task in tasks} == {"offline"}


def test_stop_waits_for_running_invocations() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow(event: bytes) -> object:
        started.set()
        release.wait(30)
        finished.set()
        return None

    emu = Emulator(functions={"slow": slow}).start()
    invoke(emu, "slow", "t1")
    assert started.wait(30)
    stopper = threading.Thread(target=emu.stop)
    stopper.start()
    assert not finished.is_set()
    release.set()
    stopper.join(30)
    assert finished.is_set() and not stopper.is_alive()


@pytest.mark.parametrize(
    ("function", "task_id", "qualifier", "field"),
    [
        ("esa-scheduler", "1-starts-with-a-digit", None, "task_id"),
        ("esa-scheduler", "has space", None, "task_id"),
        ("esa-scheduler", "x" * 129, None, "task_id"),
        ("../admin", "t1", None, "function_name"),
        ("esa-scheduler", "t1", "a/b", "qualifier"),
    ],
)
def test_client_refuses_what_fc_would(function: str, task_id: str, qualifier: str | None, field: str) -> None:
    with Emulator(functions={"esa-scheduler": Recorder()}) as emu:
        with pytest.raises(ValueError, match=f"^{field} "):
            invoke(emu, function, task_id, qualifier=qualifier)
        assert emu.stats["total"] == 0


def sync_call(emu: Emulator, function: str, headers: tuple[tuple[str, str], ...]) -> Any:
    async def go() -> Any:
        async with AcsClient(emu.url, OWN, FC_API_VERSION, FAST) as client:
            request = ApiRequest(
                "InvokeFunction",
                {},
                method="POST",
                path=f"/{FC_API_VERSION}/functions/{function}/invocations",
                body=EVENT,
                headers=headers,
            )
            body, response, _ = await client.call(request)
            return body, response.headers.get("x-fc-error-type")

    return asyncio.run(go())


def test_sync_invocations_answer_the_functions_result_or_its_error() -> None:
    def broken(event: bytes) -> object:
        raise ValueError("no")

    with Emulator(functions={"echo": Recorder(), "broken": broken}) as emu:
        assert sync_call(emu, "echo", ()) == ({"received": len(EVENT)}, None)
        body, error_type = sync_call(emu, "broken", (("x-fc-invocation-type", "Sync"),))
        with pytest.raises(EsaApiError) as bad_type:
            sync_call(emu, "echo", (("x-fc-invocation-type", "Later"),))
        with pytest.raises(EsaApiError) as task_id_on_sync:
            sync_call(emu, "echo", (("x-fc-async-task-id", "t1"),))

    assert body == {"errorMessage": "ValueError: no", "errorType": "UnhandledInvocationError"}
    assert error_type == "UnhandledInvocationError"
    assert (bad_type.value.code, bad_type.value.http_status) == ("InvalidArgument", 400)
    assert (task_id_on_sync.value.code, task_id_on_sync.value.http_status) == ("InvalidArgument", 400)


def test_official_fc_sdk_invokes_asynchronously_on_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from alibabacloud_fc20230330 import models
    from alibabacloud_fc20230330.client import Client
    from alibabacloud_tea_openapi.exceptions import ClientException

    body = Recorder()
    with Emulator(functions={"esa-scheduler": body}) as emu:
        sdk = Client(official_sdk_config(monkeypatch, emu.url))

        def submit(task_id: str) -> Any:
            headers = models.InvokeFunctionHeaders(x_fc_invocation_type="Async", x_fc_async_task_id=task_id)
            request = models.InvokeFunctionRequest(body=io.BytesIO(EVENT), qualifier="LATEST")
            return sdk.invoke_function_with_options("esa-scheduler", request, headers, _runtime())

        answer = submit("sdk-task-1")
        (record,) = emu.wait_for_invocations(1, timeout=30)
        with pytest.raises(ClientException) as repeated:
            submit("sdk-task-1")
        with pytest.raises(ClientException) as missing:
            sdk.invoke_function("nope", models.InvokeFunctionRequest(body=io.BytesIO(b"{}")))

    assert answer.status_code == 202
    assert answer.headers["x-fc-request-id"] == record.request_id
    assert (record.task_id, record.event, record.outcome) == ("sdk-task-1", EVENT, "ok")
    assert body.events == [EVENT]
    assert (repeated.value.code, repeated.value.status_code) == ("AsyncTaskAlreadyExists", 409)
    assert (missing.value.code, missing.value.status_code) == ("FunctionNotFound", 404)


def _runtime() -> Any:
    from darabonba.runtime import RuntimeOptions

    return RuntimeOptions()


def test_async_task_ids_depend_only_on_the_delivered_event_and_the_target() -> None:
    tick = ("timer", "schedule-tick", "2026-12-03T09:00:00Z")
    first = async_task_id(tick, "prod.cn")

    assert first == async_task_id(list(tick), "prod.cn")
    assert first.startswith("esa-timer-schedule-tick-2026-12-03T09-00-00Z-prod-cn-")
    others = {
        async_task_id(tick, "prod-cn"),  # the same once FC's alphabet is applied
        async_task_id((*tick, "dry-run"), "prod.cn"),
        async_task_id(("timer", "preview-tick", tick[2]), "prod.cn"),
        async_task_id(("command", "0123456789abcdef"), "prod.cn"),
        async_task_id(("timer", "schedule-tick" + "x" * 200, tick[2]), "prod.cn"),
        async_task_id(("timer", "schedule-tick" + "x" * 200, tick[2]), "prod-intl"),  # apart after the cut
    }
    assert first not in others and len(others) == 6
    for task_id in (first, *others, async_task_id(("command", "任务" * 200), "prod-cn")):
        assert FC_NAME.fullmatch(task_id), task_id
