"""The emulated cloud: ESA's five delivery-task actions per account, STS ``AssumeRole`` and FC
``InvokeFunction``, behind one gateway with its checks, faults and counters.

Everything here is synchronous and runs under one lock, so the HTTP layer stays a thin shell, tests
can poke state from their own thread, and the seeded random stream is consumed in request order.
The HTTP layer only carries out what a ``Reply`` decided: wait, then answer, hang up, or run a
synchronous function call in a worker thread first.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from esa_scheduler.addresses import is_loopback
from esa_scheduler.emulator.esa_api import SCRIPTED_RETRY_AFTER_MS, Account, Stats, page, target, update
from esa_scheduler.emulator.fc_api import invoke_function
from esa_scheduler.emulator.functions import FunctionBody, FunctionRunner, Invocation
from esa_scheduler.emulator.models import (
    API_VERSION,
    DROPPED,
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    EMULATOR_ACCOUNT_ID,
    FC_API_VERSION,
    HANG,
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
from esa_scheduler.emulator.params import Params, Payload, request_params, site_of
from esa_scheduler.emulator.replies import Reply, error_reply, json_body, ok_reply
from esa_scheduler.emulator.sts_api import assume_role
from esa_scheduler.emulator.verify import HttpRequest, KeyPair, Verifier
from esa_scheduler.errors import ConfigError
from esa_scheduler.timeutil import now_utc

STATS_PATH = "/_emulator/stats"
HANG_SECONDS = 3600.0
"""How long a hanging call holds its connection: far beyond any client's patience."""

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
        default = Account(EMULATOR_ACCOUNT_ID, coerce_tasks(tasks, "tasks"))
        self._accounts: dict[str, Account] = {default.id: default}
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
            self._accounts[account.id] = Account(account.id, coerce_tasks(account.tasks, origin), account.error)
            add_key(account.access_key_id, KeyPair(account.access_key_secret, account=account.id))
        self._roles = self._check_roles(roles)
        self._issued: dict[str, int] = {}
        self._clock = clock
        self._verifier = Verifier(keys, clock)
        self._runner = FunctionRunner(functions or {})
        self._lock = threading.Lock()
        self._stats = Stats()
        esa: dict[str, Callable[[Account, Params], Payload]] = {
            "ListUserDeliveryTasks": lambda account, params: page(account, params, None, self._faults),
            "GetUserDeliveryTask": lambda account, params: target(account, params, None).summary(),
            "UpdateUserDeliveryTaskStatus": lambda account, params: update(account, params, None),
            "ListSiteDeliveryTasks": lambda account, params: page(account, params, site_of(params), self._faults),
            "UpdateSiteDeliveryTaskStatus": lambda account, params: update(account, params, site_of(params)),
        }
        self._apis: dict[str, dict[str, Handler]] = {
            API_VERSION: {action: self._esa(handler) for action, handler in esa.items()},
            STS_API_VERSION: {
                "AssumeRole": lambda request, caller: assume_role(
                    request, caller, self._roles, self._verifier, self._clock, self._issued
                )
            },
            FC_API_VERSION: {"InvokeFunction": lambda request, caller: invoke_function(request, caller, self._runner)},
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
            self._stats = Stats()
            for account in self._accounts.values():
                account.stats = Stats()

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

    def _account(self, account: str | None) -> Account:
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

    def _esa(self, action: Callable[[Account, Params], Payload]) -> Handler:
        """An ESA action on the caller's account, which may be set to refuse every call."""

        def handler(request: HttpRequest, caller: KeyPair) -> Reply:
            account = self._accounts[caller.account]
            if account.error is not None:
                retry_after = SCRIPTED_RETRY_AFTER_MS if account.error in THROTTLING_CODES else None
                raise ApiError(account.error, retry_after_ms=retry_after)
            return ok_reply(action(account, request_params(request)))

        return handler

    def stop_functions(self) -> None:
        """Wait for every function run still going (runs started by runs included)."""
        self._runner.join()

    def _stats_reply(self, request: HttpRequest) -> Reply:
        if not is_loopback(request.peer):
            err = ApiError("Forbidden", "The stats endpoint only answers loopback peers.")
            return error_reply(err, request.headers.get("host", ""))
        return Reply(200, json_body(self.stats))
