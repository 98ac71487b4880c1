"""The emulated cloud: ESA's five delivery-task actions per account, STS ``AssumeRole`` and FC
``InvokeFunction``, behind one gateway with its checks, faults and counters.

Everything here is synchronous and runs under one lock, so the HTTP layer stays a thin shell, tests
can poke state from their own thread, and the seeded random stream is consumed in request order.
The HTTP layer only carries out what a ``Reply`` decided: wait, then answer, hang up, or run a
synchronous function call in a worker thread first.
"""

from __future__ import annotations

import json
import math
import random
import re
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from esa_scheduler.edge.endpoints import is_loopback
from esa_scheduler.edge.signer import DATE_FORMAT, parse_query
from esa_scheduler.emulator.functions import FunctionBody, FunctionRunner, Invocation
from esa_scheduler.emulator.models import (
    API_VERSION,
    DROPPED,
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    EMULATOR_ACCOUNT_ID,
    FC_API_VERSION,
    HANG,
    ROLE_ARN,
    STS_API_VERSION,
    THROTTLING_CODES,
    TOO_MANY_REQUESTS,
    ApiError,
    EmulatedAccount,
    EmulatedRole,
    EmulatedTask,
    Faults,
    TaskKey,
    TaskStatus,
    coerce_tasks,
)
from esa_scheduler.emulator.verify import HttpRequest, KeyPair, Verifier
from esa_scheduler.errors import ConfigError
from esa_scheduler.timeutil import now_utc

STATS_PATH = "/_emulator/stats"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500
SCRIPTED_RETRY_AFTER_MS = 1000
"""``x-acs-retry-after`` sent with a scripted throttling fault (the rate limiter computes its own)."""
HANG_SECONDS = 3600.0
"""How long a hanging call holds its connection: far beyond any client's patience."""

_DIGITS = re.compile(r"[0-9]{1,18}")
_SESSION_NAME = re.compile(r"[A-Za-z0-9_.@-]{2,64}")
_DURATION_S = (900, 3600)
_INVOCATIONS_PATH = re.compile(rf"/{FC_API_VERSION}/functions/(?P<name>[A-Za-z_][A-Za-z0-9_-]{{0,127}})/invocations")
_FC_TASK_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")

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
    defer: Callable[[], Reply] | None = None
    """Work that must not block the server's loop (a sync function call): run it in a worker
    thread after ``delay`` and send what it returns instead."""


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


class _Account:
    """One account's ESA state: its tasks, the faults scripted on them, its counters."""

    def __init__(self, account_id: str, tasks: list[EmulatedTask], error: str | None = None) -> None:
        self.id = account_id
        self.tasks: dict[TaskKey, EmulatedTask] = {t.key: t for t in tasks}
        self.scripted: dict[TaskKey, deque[str]] = {}
        self.stats = _Stats()
        self.error = error


Handler = Callable[[HttpRequest, KeyPair], Reply]


class EsaBackend:
    """ESA's delivery-task API over in-memory state per account, STS's ``AssumeRole`` and FC's
    ``InvokeFunction``, with one gateway's checks and injected faults in front of all three.

    ``tasks=`` and the emulator's own AccessKey pair form the default account
    (``EMULATOR_ACCOUNT_ID``); ``accounts`` adds more. An ESA call acts on the account of the key
    that signed it: a permanent key of that account, or STS credentials issued for one of its roles.

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
        *,
        accounts: Iterable[EmulatedAccount] = (),
        roles: Iterable[EmulatedRole] = (),
        functions: Mapping[str, FunctionBody] | None = None,
    ) -> None:
        default = _Account(EMULATOR_ACCOUNT_ID, coerce_tasks(tasks, "tasks"))
        self._accounts: dict[str, _Account] = {default.id: default}
        keys: dict[str, KeyPair] = {}

        def add_key(key_id: str, pair: KeyPair) -> None:
            if key_id in keys:
                raise ConfigError(f"emulator: AccessKeyId {key_id!r} is configured twice")
            keys[key_id] = pair

        add_key(access_key_id, KeyPair(access_key_secret, account=default.id))
        for sts_id, sts_secret, token in sts_credentials:
            add_key(sts_id, KeyPair(sts_secret, token, account=default.id))
        for account in accounts:
            if account.id in self._accounts:
                raise ConfigError(f"emulator: account {account.id} is configured twice")
            origin = f"account {account.id} tasks"
            self._accounts[account.id] = _Account(account.id, coerce_tasks(account.tasks, origin), account.error)
            add_key(account.access_key_id, KeyPair(account.access_key_secret, account=account.id))
        self._roles = self._check_roles(roles)
        self._clock = clock
        self._verifier = Verifier(keys, clock)
        self._runner = FunctionRunner(functions or {})
        self._lock = threading.Lock()
        self._stats = _Stats()
        esa: dict[str, Callable[[_Account, Params], Payload]] = {
            "ListUserDeliveryTasks": lambda account, params: self._page(account, params, None),
            "GetUserDeliveryTask": lambda account, params: self._target(account, params, None).summary(),
            "UpdateUserDeliveryTaskStatus": lambda account, params: self._update(account, params, None),
            "ListSiteDeliveryTasks": lambda account, params: self._page(account, params, _site_id(params)),
            "UpdateSiteDeliveryTaskStatus": lambda account, params: self._update(account, params, _site_id(params)),
        }
        self._apis: dict[str, dict[str, Handler]] = {
            API_VERSION: {action: self._esa(handler) for action, handler in esa.items()},
            STS_API_VERSION: {"AssumeRole": self._assume_role},
            FC_API_VERSION: {"InvokeFunction": self._invoke_function},
        }
        self.faults = faults or Faults()

    def _check_roles(self, roles: Iterable[EmulatedRole]) -> dict[str, EmulatedRole]:
        checked: dict[str, EmulatedRole] = {}
        for role in roles:
            if role.arn in checked:
                raise ConfigError(f"emulator: role {role.arn} is configured twice")
            unknown = sorted({role.account, *(role.trusted_accounts or ())} - set(self._accounts))
            if unknown:
                raise ConfigError(f"emulator: role {role.arn} names account(s) the emulator does not serve: {unknown}")
            checked[role.arn] = role
        return checked

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
    def accounts(self) -> list[str]:
        """The ids of the accounts served, the default account first."""
        return list(self._accounts)

    @property
    def tasks(self) -> dict[TaskKey, EmulatedTask]:
        """A snapshot of the default account's tasks keyed by ``(SiteId, TaskName)``."""
        return self.tasks_of()

    def tasks_of(self, account: str | None = None) -> dict[TaskKey, EmulatedTask]:
        """A snapshot of one account's tasks (the default account's when ``account`` is ``None``)."""
        with self._lock:
            return dict(self._account(account).tasks)

    @property
    def stats(self) -> dict[str, Any]:
        """A plain-dict snapshot: ``total``, ``by_action``, ``by_outcome``, ``by_action_outcome`` over
        every call, and ``by_account`` with the same four per account (calls whose AccessKeyId
        names no account are in the totals only)."""
        with self._lock:
            by_account = {account_id: account.stats.snapshot() for account_id, account in self._accounts.items()}
            return {**self._stats.snapshot(), "by_account": by_account}

    @property
    def invocations(self) -> list[Invocation]:
        """Every accepted ``InvokeFunction`` call so far, finished or not, in arrival order."""
        return self._runner.invocations

    def wait_for_invocations(self, count: int, timeout: float = 30.0) -> list[Invocation]:
        """Block until ``count`` invocations have finished; ``TimeoutError`` after ``timeout`` seconds."""
        return self._runner.wait(count, timeout)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats()
            for account in self._accounts.values():
                account.stats = _Stats()

    def status(self, name: str, site_id: int | None = None, account: str | None = None) -> TaskStatus:
        """Current status of a task; ``KeyError`` if there is no such task (or account)."""
        return self.tasks_of(account)[(site_id, name)].Status

    def set_status(self, name: str, status: TaskStatus, site_id: int | None = None, account: str | None = None) -> None:
        """Change a task behind the scheduler's back, as an operator in the console would."""
        if status not in ("online", "offline"):
            raise ValueError(f"status must be online or offline, got {status!r}")
        with self._lock:
            tasks = self._account(account).tasks
            task = tasks[(site_id, name)]
            tasks[task.key] = task.model_copy(update={"Status": status})

    def script_fault(
        self, task_name: str, code: str, count: int = 1, site_id: int | None = None, account: str | None = None
    ) -> None:
        """Make the next ``count`` Get/Update calls on this task fail with ``code`` (``"dropped"``
        hangs up instead); they queue behind faults scripted earlier for the same task."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        with self._lock:
            state = self._account(account)
            if (site_id, task_name) not in state.tasks:
                raise KeyError(f"no task {task_name!r} with SiteId {site_id} in account {state.id}")
            state.scripted.setdefault((site_id, task_name), deque()).extend([code] * count)

    def _account(self, account: str | None) -> _Account:
        state = self._accounts.get(EMULATOR_ACCOUNT_ID if account is None else account)
        if state is None:
            raise KeyError(f"the emulator serves no account {account!r}")
        return state

    def handle(self, request: HttpRequest) -> Reply:
        """Answer one HTTP request; every API request is counted once, by action and outcome, in the
        totals and in the account its AccessKeyId names."""
        if request.path == STATS_PATH and request.method == "GET":
            return self._stats_reply(request)
        action = request.headers.get("x-acs-action", "")
        version = request.headers.get("x-acs-version", "")
        label = action if action in self._apis.get(version, {}) else "unknown"
        with self._lock:
            faults = self._faults
            delay = (faults.latency_ms + faults.jitter_ms * self._rng.random()) / 1000
            roll = self._rng.random()
            claimed = self._verifier.claimed(request.headers)
            counters = [self._stats]
            if claimed is not None:
                counters.append(self._accounts[claimed.account].stats)
            try:
                reply = self._dispatch(request, version, action, roll)
            except ApiError as err:
                for stats in counters:
                    stats.record(label, err.code)
                return self._refusal(err, request, delay)
            for stats in counters:
                stats.record(label, "ok")
        return replace(reply, delay=delay)

    def _refusal(self, err: ApiError, request: HttpRequest, delay: float) -> Reply:
        if err.code == DROPPED:
            return Reply(0, b"", delay=delay, drop=True)
        if err.code == HANG:
            return Reply(0, b"", delay=HANG_SECONDS, drop=True)
        if self._faults.echo_credentials:
            known = " ".join(f"{pair.secret} {pair.token or ''}".strip() for pair in self._verifier.pairs)
            err.message = f"{err.message} (request signed with {known})"
        if err.code == TOO_MANY_REQUESTS:
            headers = (("retry-after", str(self._faults.retry_after_s)), ("content-type", "text/plain"))
            return Reply(429, f"Too Many Requests: {err.message}".encode(), headers, delay)
        return error_reply(err, request.headers.get("host", ""), delay)

    def _dispatch(self, request: HttpRequest, version: str, action: str, roll: float) -> Reply:
        hang = self._faults.hang_actions
        if action in hang or "*" in hang:
            raise ApiError(HANG)
        self._throttle()
        if request.method not in ("GET", "POST"):
            raise ApiError("UnsupportedHTTPMethod", f"HTTP method {request.method} is not supported.")
        actions = self._apis.get(version)
        if actions is None:
            raise ApiError("InvalidVersion", f"x-acs-version must be one of {sorted(self._apis)}.")
        handler = actions.get(action)
        if handler is None:
            raise ApiError("InvalidApi.NotFound", f"Specified api {action!r} is not found.")
        caller = self._verifier.verify(request)
        self._random_fault(roll)
        return handler(request, caller)

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

    # --- ESA --------------------------------------------------------------------------------------

    def _esa(self, action: Callable[[_Account, Params], Payload]) -> Handler:
        """An ESA action on the caller's account, which may be set to refuse every call."""

        def handler(request: HttpRequest, caller: KeyPair) -> Reply:
            account = self._accounts[caller.account]
            if account.error is not None:
                retry_after = SCRIPTED_RETRY_AFTER_MS if account.error in THROTTLING_CODES else None
                raise ApiError(account.error, retry_after_ms=retry_after)
            return _ok(action(account, self._params(request)))

        return handler

    def _page(self, account: _Account, params: Params, site_id: int | None) -> Payload:
        faults = self._faults
        number = _int_param(params, "PageNumber", 1)
        size = min(
            _int_param(params, "PageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), faults.page_size_cap or MAX_PAGE_SIZE
        )
        business_type = params.get("BusinessType")
        matching = [
            task
            for task in account.tasks.values()
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

    @staticmethod
    def _target(account: _Account, params: Params, site_id: int | None) -> EmulatedTask:
        name = params.get("TaskName")
        if not name:
            raise ApiError("InvalidParameter", "TaskName is required.")
        task = account.tasks.get((site_id, name))
        if task is None:
            where = f" on site {site_id}" if site_id is not None else ""
            raise ApiError("InvalidParameter", f"The delivery task {name!r} does not exist{where}.")
        scripted = account.scripted.get(task.key)
        if scripted:
            code = scripted.popleft()
            retry_after = SCRIPTED_RETRY_AFTER_MS if code in THROTTLING_CODES else None
            raise ApiError(code, retry_after_ms=retry_after)
        return task

    def _update(self, account: _Account, params: Params, site_id: int | None) -> Payload:
        task = self._target(account, params, site_id)
        method = params.get("Method")
        if method not in ("online", "offline"):
            raise ApiError("InvalidParameter", f"Method must be online or offline, got {method!r}.")
        account.tasks[task.key] = task.model_copy(update={"Status": method})
        return {"TaskName": task.TaskName, "Status": method}

    # --- STS --------------------------------------------------------------------------------------

    def _assume_role(self, request: HttpRequest, caller: KeyPair) -> Reply:
        """Issue temporary credentials that only the role's account accepts, until they expire."""
        params = self._params(request)
        arn = params.get("RoleArn", "")
        if not ROLE_ARN.fullmatch(arn):
            raise ApiError("InvalidParameter.RoleArn", f"The parameter RoleArn {arn!r} is wrongly formed.")
        session = params.get("RoleSessionName", "")
        if not _SESSION_NAME.fullmatch(session):
            raise ApiError("InvalidParameter.RoleSessionName")
        duration = params.get("DurationSeconds") or str(_DURATION_S[1])
        if not (_DIGITS.fullmatch(duration) and _DURATION_S[0] <= int(duration) <= _DURATION_S[1]):
            raise ApiError("InvalidParameter.DurationSeconds")
        role = self._roles.get(arn)
        if role is None:
            raise ApiError("EntityNotExist.Role", f"The role not exists: {arn}.")
        if role.throttle:
            raise ApiError("Throttling.User", retry_after_ms=SCRIPTED_RETRY_AFTER_MS)
        if role.deny or (role.trusted_accounts is not None and caller.account not in role.trusted_accounts):
            raise ApiError("NoPermission", f"Account {caller.account} may not assume {arn}.")
        expires = (self._clock() + timedelta(seconds=int(duration))).replace(microsecond=0)
        key_id = f"STS.{secrets.token_hex(14)}"
        secret, token = secrets.token_urlsafe(30), f"CAIS{secrets.token_urlsafe(120)}"
        self._verifier.add(key_id, KeyPair(secret, token, account=role.account, expires=expires))
        return _ok(
            {
                "AssumedRoleUser": {
                    "Arn": f"acs:ram::{role.account}:assumed-role/{role.name}/{session}",
                    "AssumedRoleId": f"{secrets.randbelow(10**17):017d}:{session}",
                },
                "Credentials": {
                    "AccessKeyId": key_id,
                    "AccessKeySecret": secret,
                    "SecurityToken": token,
                    "Expiration": expires.strftime(DATE_FORMAT),
                },
            }
        )

    # --- FC ---------------------------------------------------------------------------------------

    def _invoke_function(self, request: HttpRequest, caller: KeyPair) -> Reply:
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
        if not self._runner.knows(name):
            raise ApiError("FunctionNotFound", f"function '{name}' does not exist.")
        task_id = request.headers.get("x-fc-async-task-id")
        if task_id is not None:
            if kind != "Async" or not _FC_TASK_ID.fullmatch(task_id):
                raise ApiError("InvalidArgument", f"x-fc-async-task-id {task_id!r} is invalid for a {kind} call.")
            if not self._runner.claim_task(name, task_id):
                raise ApiError("AsyncTaskAlreadyExists", f"async task {task_id!r} of function '{name}' exists.")
        request_id = f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
        invocation = Invocation(name, task_id, request.body, kind, caller.account, request_id)
        headers = (("x-fc-request-id", request_id),)
        if kind == "Async":
            self._runner.start(invocation)
            return Reply(202, b"", headers)
        return Reply(200, b"", headers, defer=lambda: _sync_reply(self._runner.run(invocation), headers))

    def stop_functions(self) -> None:
        """Wait for every function run still going (runs started by runs included)."""
        self._runner.join()

    def _stats_reply(self, request: HttpRequest) -> Reply:
        if not is_loopback(request.peer):
            err = ApiError("Forbidden", "The stats endpoint only answers loopback peers.")
            return error_reply(err, request.headers.get("host", ""))
        return Reply(200, _json(self.stats))


def _ok(payload: Payload) -> Reply:
    request_id = _request_id()
    return Reply(200, _json({"RequestId": request_id, **payload}), (("x-acs-request-id", request_id),))


def _sync_reply(finished: Invocation, headers: tuple[tuple[str, str], ...]) -> Reply:
    """FC's answer to a sync call: the function's result, or its error flagged by a header."""
    if finished.outcome == "error":
        body = _json({"errorMessage": finished.error or "", "errorType": "UnhandledInvocationError"})
        return Reply(200, body, (*headers, ("x-fc-error-type", "UnhandledInvocationError")))
    result = finished.result
    if isinstance(result, bytes):
        return Reply(200, result, headers)
    return Reply(200, json.dumps(result, default=str, ensure_ascii=False).encode(), headers)


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
