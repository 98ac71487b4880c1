"""FC 3.0 ``InvokeFunction`` (API 2023-03-30), asynchronous only: how a coordinator hands targets out.

A large fleet is fanned out by invoking the scheduler's own function once per target. Each call
carries an async task id derived from the delivered event and the target (``async_task_id``), so
that when FC retries the coordinator, FC itself refuses the repeat (HTTP 409, in its asynchronous
task mode) and no target runs twice; that refusal is the expected outcome of a retry, so it is
reported as ``ALREADY_DISPATCHED``, not raised.

Imported only by the coordinator in ``ESA_FANOUT=async``, to keep the timer path's cold start.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from esa_scheduler.edge.acs import AcsClient, ApiRequest, ClientSettings
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.responses import EsaApiError

FC_API_VERSION = "2023-03-30"
ACTION = "InvokeFunction"
ALREADY_DISPATCHED = "already-dispatched"
"""What ``invoke_async`` returns when FC already holds a task with that id."""
DUPLICATE_TASK_STATUS = 409
"""FC's documented answer to a repeated async task id (the error code itself is not documented)."""
FC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
"""FC's rule for function names and async task ids: a letter or ``_`` first, then letters, digits,
``_`` and ``-``, 128 characters at most (nothing in them needs escaping in a URL path)."""
FC_QUALIFIER = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""A function version number or alias name."""
_NOT_IN_TASK_ID = re.compile(r"[^A-Za-z0-9_-]")


def async_task_id(delivery: Sequence[str], target: str) -> str:
    """A task id FC accepts that depends only on the delivered event and the target.

    ``delivery`` is the event's identity (``events.delivery_identity``): an FC retry of the
    coordinator redelivers the same event, so it sends the same ids again and FC refuses them, while
    two different events (a dry-run preview trigger at the real one's instant, a second hold) never
    share one. The readable part shows the event and the target in FC's console; characters FC does
    not allow become ``-``, and a hash of the exact parts keeps apart what that would merge
    (``prod.cn`` and ``prod-cn``) or what the length cut would.
    """
    parts = ("esa", *delivery, target)
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]
    return _NOT_IN_TASK_ID.sub("-", "-".join(parts))[:100] + f"-{digest}"


class FcClient(AcsClient):
    """FC's ``InvokeFunction`` for async invocations; use as ``async with`` (see ``AcsClient``)."""

    def __init__(
        self, endpoint: str, credentials: Credentials, settings: ClientSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(endpoint, credentials, FC_API_VERSION, settings, **kwargs)

    async def invoke_async(self, function_name: str, event: bytes, task_id: str, qualifier: str | None = None) -> str:
        """Queue one async run of ``function_name`` with ``event``; FC's request id for it, or
        ``ALREADY_DISPATCHED`` when a task with ``task_id`` was submitted before."""
        for name, value in (("function_name", function_name), ("task_id", task_id)):
            if not FC_NAME.fullmatch(value):
                raise ValueError(f"{name} {value!r} must be a letter or _ then letters, digits, _ or -, 128 at most")
        if qualifier is not None and not FC_QUALIFIER.fullmatch(qualifier):
            raise ValueError(f"qualifier {qualifier!r} must be a version number or an alias name")
        request = ApiRequest(
            ACTION,
            {"qualifier": qualifier} if qualifier is not None else {},
            method="POST",
            path=f"/{FC_API_VERSION}/functions/{function_name}/invocations",
            body=event,
            headers=(
                ("content-type", "application/octet-stream"),
                ("x-fc-invocation-type", "Async"),
                ("x-fc-async-task-id", task_id),
            ),
            expect_json=False,
        )
        try:
            _, response, _ = await self.call(request)
        except EsaApiError as exc:
            if exc.http_status == DUPLICATE_TASK_STATUS:
                return ALREADY_DISPATCHED
            raise
        return str(response.headers.get("x-fc-request-id", ""))
