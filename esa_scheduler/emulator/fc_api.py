"""FC's ``InvokeFunction``: run a registered function, at once (``Async``) or with the reply waiting (``Sync``)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Literal

from esa_scheduler.emulator.functions import FunctionRunner, Invocation
from esa_scheduler.emulator.models import (
    FC_API_VERSION,
    ApiError,
)
from esa_scheduler.emulator.replies import Reply, json_body
from esa_scheduler.emulator.verify import HttpRequest, KeyPair

_INVOCATIONS_PATH = re.compile(rf"/{FC_API_VERSION}/functions/(?P<name>[A-Za-z_][A-Za-z0-9_-]{{0,127}})/invocations")
_FC_TASK_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")


def invoke_function(request: HttpRequest, caller: KeyPair, runner: FunctionRunner) -> Reply:
    """Run a registered function: at once in a worker thread for ``Async`` (202), or in a
    worker thread the reply waits for (``Sync``). A repeated async task id is refused (409)."""
    match = _INVOCATIONS_PATH.fullmatch(request.path)
    if match is None or request.method != "POST":
        raise ApiError("PathNotSupported", f"'{request.method}' against '{request.path}' is not supported.")
    name = match["name"]
    sent = request.headers.get("x-fc-invocation-type", "Sync")
    if sent not in ("Sync", "Async"):
        raise ApiError("InvalidArgument", f"x-fc-invocation-type must be Sync or Async, got {sent!r}.")
    kind: Literal["Sync", "Async"] = "Async" if sent == "Async" else "Sync"
    if not runner.knows(name):
        raise ApiError("FunctionNotFound", f"function '{name}' does not exist.")
    task_id = request.headers.get("x-fc-async-task-id")
    if task_id is not None:
        if kind != "Async" or not _FC_TASK_ID.fullmatch(task_id):
            raise ApiError("InvalidArgument", f"x-fc-async-task-id {task_id!r} is invalid for a {kind} call.")
        if not runner.claim_task(name, task_id):
            raise ApiError("AsyncTaskAlreadyExists", f"async task {task_id!r} of function '{name}' exists.")
    request_id = f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
    invocation = Invocation(name, task_id, request.body, kind, caller.account, request_id)
    headers = (("x-fc-request-id", request_id),)
    if kind == "Async":
        runner.start(invocation)
        return Reply(202, b"", headers)
    return Reply(200, b"", headers, defer=lambda: sync_reply(runner.run(invocation), headers))


def sync_reply(finished: Invocation, headers: tuple[tuple[str, str], ...]) -> Reply:
    """FC's answer to a sync call: the function's result, or its error flagged by a header."""
    if finished.outcome == "error":
        body = json_body({"errorMessage": finished.error or "", "errorType": "UnhandledInvocationError"})
        return Reply(200, body, (*headers, ("x-fc-error-type", "UnhandledInvocationError")))
    result = finished.result
    if isinstance(result, bytes):
        return Reply(200, result, headers)
    return Reply(200, json.dumps(result, default=str, ensure_ascii=False).encode(), headers)
