"""The emulated ESA service: routing, the five delivery-task actions, faults and counters.

Everything here is synchronous and runs under one lock, so the HTTP layer stays a thin shell, tests
can poke state from their own thread, and the seeded random stream is consumed in request order.
The HTTP layer only carries out what a ``Reply`` decided: wait, then answer or hang up.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from esa_scheduler.emulator.models import (
    API_VERSION,
    DROPPED,
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    HANG,
    THROTTLING_CODES,
    TOO_MANY_REQUESTS,
    ApiError,
    EmulatedTask,
    Faults,
    TaskKey,
    TaskStatus,
    coerce_tasks,
)
from esa_scheduler.emulator.verify import HttpRequest, KeyPair, Verifier
from esa_scheduler.endpoints import is_loopback
from esa_scheduler.errors import ConfigError
from esa_scheduler.signer import parse_query
from esa_scheduler.timeutil import now_utc

STATS_PATH = "/_emulator/stats"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500
SCRIPTED_RETRY_AFTER_MS = 1000
"""``x-acs-retry-after`` sent with a scripted throttling fault (the rate limiter computes its own)."""
HANG_SECONDS = 3600.0
"""How long a hanging call holds its connection: far beyond any client's patience."""

_DIGITS = re.compile(r"[0-9]{1,18}")

Params = dict[str, str]
Payload = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """What to send (after ``delay`` seconds), or ``drop`` to close the connection unanswered."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    drop: bool = False


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _int_param(params: Params, name: str, default: int, upper: int | None = None) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= (upper or math.inf):
        bound = f"1 to {upper}" if upper else "a positive integer"
        raise ApiError("InvalidParameter", f"{name} must be {bound}, got {text!r}.")
    return int(text)


def _site_id(params: Params) -> int:
    if not params.get("SiteId"):
        raise ApiError("InvalidParameter", "SiteId is required for site-level delivery tasks.")
    return _int_param(params, "SiteId", 0)


class _Stats:
    def __init__(self) -> None:
        self.by_action: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.by_action_outcome: dict[str, Counter[str]] = {}

    def record(self, action: str, outcome: str) -> None:
        self.by_action[action] += 1
        self.by_outcome[outcome] += 1
        self.by_action_outcome.setdefault(action, Counter())[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": sum(self.by_action.values()),
            "by_action": dict(self.by_action),
            "by_outcome": dict(self.by_outcome),
            "by_action_outcome": {action: dict(c) for action, c in self.by_action_outcome.items()},
        }


class EsaBackend:
    """ESA's delivery-task API over in-memory state, with its gateway's checks and injected faults.

    Each API request draws exactly two numbers from the seeded generator (jitter, fault roll), even
    when it is refused, so the same request sequence always meets the same faults. Throttling is
    decided first, before signature checks, from a token bucket on the monotonic clock.
    """

    def __init__(
        self,
        tasks: Iterable[EmulatedTask | Mapping[str, Any]] = (),
        faults: Faults | None = None,
        access_key_id: str = EMULATOR_ACCESS_KEY_ID,
        access_key_secret: str = EMULATOR_ACCESS_KEY_SECRET,
        sts_credentials: Iterable[tuple[str, str, str]] = (),
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        keys = {access_key_id: KeyPair(access_key_secret)}
        for sts_id, sts_secret, token in sts_credentials:
            if sts_id in keys:
                raise ConfigError(f"emulator: AccessKeyId {sts_id!r} is configured twice")
            keys[sts_id] = KeyPair(sts_secret, token)
        self._tasks: dict[TaskKey, EmulatedTask] = {t.key: t for t in coerce_tasks(tasks, "tasks")}
        self._verifier = Verifier(keys, clock)
        self._echo = " ".join(f"{pair.secret} {pair.token or ''}".strip() for pair in keys.values())
        self._lock = threading.Lock()
        self._scripted: dict[TaskKey, deque[str]] = {}
        self._stats = _Stats()
        self._actions: dict[str, Callable[[Params], Payload]] = {
            "ListUserDeliveryTasks": lambda params: self._page(params, None),
            "GetUserDeliveryTask": lambda params: self._target(params, None).summary(),
            "UpdateUserDeliveryTaskStatus": lambda params: self._update(params, None),
            "ListSiteDeliveryTasks": lambda params: self._page(params, _site_id(params)),
            "UpdateSiteDeliveryTaskStatus": lambda params: self._update(params, _site_id(params)),
        }
        self.faults = faults or Faults()

    @property
    def faults(self) -> Faults:
        """Assigning new faults reseeds the generator and refills the throttle bucket, so a run
        started after the assignment replays exactly when the seed is the same."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        with self._lock:
            self._faults = value
            self._rng = random.Random(value.seed)
            self._tokens = max(1.0, value.throttle_rps or 1.0)
            self._refilled = time.monotonic()

    @property
    def tasks(self) -> dict[TaskKey, EmulatedTask]:
        """A snapshot keyed by ``(SiteId, TaskName)``."""
        with self._lock:
            return dict(self._tasks)

    @property
    def stats(self) -> dict[str, Any]:
        """A plain-dict snapshot: ``total``, ``by_action``, ``by_outcome``, ``by_action_outcome``."""
        with self._lock:
            return self._stats.snapshot()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats()

    def status(self, name: str, site_id: int | None = None) -> TaskStatus:
        """Current status of a task; ``KeyError`` if there is no such task."""
        return self.tasks[(site_id, name)].Status

    def set_status(self, name: str, status: TaskStatus, site_id: int | None = None) -> None:
        """Change a task behind the scheduler's back, as an operator in the console would."""
        if status not in ("online", "offline"):
            raise ValueError(f"status must be online or offline, got {status!r}")
        with self._lock:
            task = self._tasks[(site_id, name)]
            self._tasks[task.key] = task.model_copy(update={"Status": status})

    def script_fault(self, task_name: str, code: str, count: int = 1, site_id: int | None = None) -> None:
        """Make the next ``count`` Get/Update calls on this task fail with ``code`` (``"dropped"``
        hangs up instead); they queue behind faults scripted earlier for the same task."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        with self._lock:
            if (site_id, task_name) not in self._tasks:
                raise KeyError(f"no task {task_name!r} with SiteId {site_id}")
            self._scripted.setdefault((site_id, task_name), deque()).extend([code] * count)

    def handle(self, request: HttpRequest) -> Reply:
        """Answer one HTTP request; every API request is counted once, by action and outcome."""
        if request.path == STATS_PATH and request.method == "GET":
            return self._stats_reply(request)
        action = request.headers.get("x-acs-action", "")
        label = action if action in self._actions else "unknown"
        with self._lock:
            faults = self._faults
            delay = (faults.latency_ms + faults.jitter_ms * self._rng.random()) / 1000
            roll = self._rng.random()
            try:
                payload = self._dispatch(request, action, roll)
            except ApiError as err:
                self._stats.record(label, err.code)
                return self._refusal(err, request, delay)
            self._stats.record(label, "ok")
        request_id = _request_id()
        body = _json({"RequestId": request_id, **payload})
        return Reply(200, body, (("x-acs-request-id", request_id),), delay)

    def _refusal(self, err: ApiError, request: HttpRequest, delay: float) -> Reply:
        if err.code == DROPPED:
            return Reply(0, b"", delay=delay, drop=True)
        if err.code == HANG:
            return Reply(0, b"", delay=HANG_SECONDS, drop=True)
        if self._faults.echo_credentials:
            err.message = f"{err.message} (request signed with {self._echo})"
        if err.code == TOO_MANY_REQUESTS:
            headers = (("retry-after", str(self._faults.retry_after_s)), ("content-type", "text/plain"))
            return Reply(429, f"Too Many Requests: {err.message}".encode(), headers, delay)
        return error_reply(err, request.headers.get("host", ""), delay)

    def _dispatch(self, request: HttpRequest, action: str, roll: float) -> Payload:
        hang = self._faults.hang_actions
        if action in hang or "*" in hang:
            raise ApiError(HANG)
        self._throttle()
        if request.method not in ("GET", "POST"):
            raise ApiError("UnsupportedHTTPMethod", f"HTTP method {request.method} is not supported.")
        if request.headers.get("x-acs-version") != API_VERSION:
            raise ApiError("InvalidVersion", f"x-acs-version must be {API_VERSION}.")
        handler = self._actions.get(action)
        if handler is None:
            raise ApiError("InvalidApi.NotFound", f"Specified api {action!r} is not found.")
        self._verifier.verify(request)
        self._random_fault(roll)
        return handler(self._params(request))

    def _throttle(self) -> None:
        rps = self._faults.throttle_rps
        if rps is None:
            return
        now = time.monotonic()
        self._tokens = min(max(1.0, rps), self._tokens + (now - self._refilled) * rps)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return
        wait_ms = max(1, math.ceil((1 - self._tokens) / rps * 1000))
        raise ApiError("Throttling.User", retry_after_ms=wait_ms)

    def _random_fault(self, roll: float) -> None:
        faults = self._faults
        for code, rate in (
            (DROPPED, faults.drop_rate),
            ("ServiceUnavailable", faults.unavailable_rate),
            ("InternalError", faults.internal_error_rate),
            (TOO_MANY_REQUESTS, faults.too_many_requests_rate),
        ):
            if roll < rate:
                raise ApiError(code)
            roll -= rate

    @staticmethod
    def _params(request: HttpRequest) -> Params:
        pairs = parse_query(request.query)
        content_type = request.headers.get("content-type", "").lower()
        if request.body and content_type.startswith("application/x-www-form-urlencoded"):
            try:
                pairs += parse_query(request.body.decode())
            except UnicodeDecodeError:
                raise ApiError("InvalidParameter", "The form body is not UTF-8.") from None
        return dict(pairs)

    def _page(self, params: Params, site_id: int | None) -> Payload:
        faults = self._faults
        number = _int_param(params, "PageNumber", 1)
        size = min(
            _int_param(params, "PageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), faults.page_size_cap or MAX_PAGE_SIZE
        )
        business_type = params.get("BusinessType")
        matching = [
            task
            for task in self._tasks.values()
            if task.SiteId == site_id and business_type in (None, "", task.BusinessType)
        ]
        shown = number - 1 if number == faults.repeat_page else number
        start = (shown - 1) * size
        return {
            "TotalCount": len(matching) if faults.total_count is None else faults.total_count,
            "PageNumber": number,
            "PageSize": size,
            "Tasks": [task.summary() for task in matching[start : start + size]],
        }

    def _target(self, params: Params, site_id: int | None) -> EmulatedTask:
        name = params.get("TaskName")
        if not name:
            raise ApiError("InvalidParameter", "TaskName is required.")
        task = self._tasks.get((site_id, name))
        if task is None:
            where = f" on site {site_id}" if site_id is not None else ""
            raise ApiError("InvalidParameter", f"The delivery task {name!r} does not exist{where}.")
        scripted = self._scripted.get(task.key)
        if scripted:
            code = scripted.popleft()
            retry_after = SCRIPTED_RETRY_AFTER_MS if code in THROTTLING_CODES else None
            raise ApiError(code, retry_after_ms=retry_after)
        return task

    def _update(self, params: Params, site_id: int | None) -> Payload:
        task = self._target(params, site_id)
        method = params.get("Method")
        if method not in ("online", "offline"):
            raise ApiError("InvalidParameter", f"Method must be online or offline, got {method!r}.")
        self._tasks[task.key] = task.model_copy(update={"Status": method})
        return {"TaskName": task.TaskName, "Status": method}

    def _stats_reply(self, request: HttpRequest) -> Reply:
        if not is_loopback(request.peer):
            err = ApiError("Forbidden", "The stats endpoint only answers loopback peers.")
            return error_reply(err, request.headers.get("host", ""))
        return Reply(200, _json(self.stats))


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def error_reply(err: ApiError, host: str, delay: float = 0.0) -> Reply:
    """ESA's error document, which the SDK parses: Code and Message, plus RequestId, HostId, Recommend."""
    request_id = _request_id()
    document = {
        "RequestId": request_id,
        "Code": err.code,
        "Message": err.message,
        "HostId": host,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}&product=ESA&requestId={request_id}",
    }
    headers = [("x-acs-request-id", request_id)]
    if err.retry_after_ms is not None:
        headers.append(("x-acs-retry-after", str(err.retry_after_ms)))
    return Reply(err.status, _json(document), tuple(headers), delay)
