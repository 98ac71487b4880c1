"""A small async client for ESA's delivery-task API (version 2024-09-10) on httpx.

It replaces the official SDK, whose dependency tree costs seconds of cold start, with the five
calls the scheduler needs. Every request goes through one path (``EsaClient._call``) that puts
together the units that each own one job: signing (``signer``), pacing (``pacing``), the retry
policy and the run's deadline (``retry``), decoding untrusted answers (``responses``) and
complete-or-refuse pagination (``listing``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import platform
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from esa_scheduler import __version__, config
from esa_scheduler.credentials import Credentials
from esa_scheduler.errors import ConfigError
from esa_scheduler.listing import list_all
from esa_scheduler.logs import register_secret
from esa_scheduler.pacing import Pacer
from esa_scheduler.responses import (
    NONCE_REUSED,
    DeadlineExceeded,
    DeliveryTask,
    EsaApiError,
    StatusChange,
    TaskDetail,
    TaskPage,
    parse_body,
    read_response,
)
from esa_scheduler.retry import Deadline, RetryPolicy, retry_after
from esa_scheduler.signer import AcsV3Auth, new_nonce
from esa_scheduler.timeutil import now_utc
from esa_scheduler.transport import KeepAliveTransport

API_VERSION = "2024-09-10"
ACTIONS: tuple[str, ...] = (
    "ListUserDeliveryTasks",
    "GetUserDeliveryTask",
    "UpdateUserDeliveryTaskStatus",
    "ListSiteDeliveryTasks",
    "UpdateSiteDeliveryTaskStatus",
)
METHODS = ("online", "offline")
__all__ = [
    "ACTIONS",
    "API_VERSION",
    "ClientSettings",
    "DeadlineExceeded",
    "DeliveryTask",
    "EsaApiError",
    "EsaClient",
    "StatusChange",
    "TaskDetail",
    "TaskPage",
    "check_endpoint",
    "is_loopback",
    "resolve_endpoint",
]

_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_PAGE_SIZE = 500


def _user_agent() -> str:
    return f"esa-scheduler/{__version__} httpx/{httpx.__version__} Python/{platform.python_version()}"


def check_endpoint(url: str) -> str:
    """Refuse endpoints that would expose signed requests; return ``scheme://host[:port]``.

    Plain ``http`` is only accepted on loopback, where the local emulator lives: anywhere else the
    AccessKey id, STS token and signatures would cross the network in clear text.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ConfigError(f"endpoint {url!r} must start with https:// (or http:// on loopback)")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("endpoint must not carry a user name or password")
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise ConfigError(f"endpoint {url!r} has an invalid host or port") from None
    if not host:
        raise ConfigError(f"endpoint {url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"endpoint {url!r} must be scheme://host[:port] with no path or query")
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(f"endpoint {url!r} uses plain http on a non-loopback host; use https://")
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}" + (f":{port}" if port is not None else "")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: the only hosts plain HTTP and the emulator may use."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """``ESA_ENDPOINT`` if set, else the public (or ``ESA_NETWORK=vpc``) endpoint of the region.

    The region comes from ``ESA_REGION``, then FC's own ``FC_REGION`` so a deployed function talks
    to its local endpoint by default, then ``cn-hangzhou``.
    """
    env = os.environ if environ is None else environ
    explicit = config.env(config.ENDPOINT, environ=env)
    if explicit:
        return check_endpoint(explicit)
    region = (
        config.env(config.REGION, environ=env) or config.env(config.FC_REGION, environ=env) or config.DEFAULT_REGION
    )
    if not _REGION.fullmatch(region):
        raise ConfigError(f"{config.REGION}={region!r} is not a region id like cn-hangzhou")
    network = (config.env(config.NETWORK, environ=env) or "public").lower()
    if network not in ("public", "vpc"):
        raise ConfigError(f"{config.NETWORK}={network!r} must be 'public' or 'vpc'")
    prefix = "esa-vpc" if network == "vpc" else "esa"
    return f"https://{prefix}.{region}.aliyuncs.com"


def _positive(environ: Mapping[str, str], name: str, default: float, *, zero_ok: bool) -> float:
    raw = config.env(name, environ=environ)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise ConfigError(f"{name}={raw!r} must be a number {bound}")
    return value


@dataclass
class ClientSettings:
    """Timeouts (seconds), throughput limits and the retry budget of one client."""

    connect_timeout: float = config.DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = config.DEFAULT_READ_TIMEOUT
    max_rps: float | None = config.DEFAULT_MAX_RPS
    concurrency: int = config.DEFAULT_CONCURRENCY
    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_total_retry_time: float = 30.0

    def retry_policy(self) -> RetryPolicy:
        """The retry budget of these settings."""
        return RetryPolicy(self.max_attempts, self.base_delay, self.max_delay, self.max_total_retry_time)

    def __post_init__(self) -> None:
        # Zero would deadlock the semaphore or never send at all; fail where the value was set.
        if self.concurrency < 1 or self.max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        if self.max_rps is not None and self.max_rps < 0:
            raise ValueError("max_rps must be None or 0 (unlimited), or a positive rate")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        """Defaults overridden by ``ESA_MAX_RPS``, ``ESA_CONCURRENCY`` and the two timeouts."""
        env = os.environ if environ is None else environ
        raw_concurrency = config.env(config.CONCURRENCY, environ=env)
        concurrency = config.DEFAULT_CONCURRENCY
        if raw_concurrency is not None:
            if not (raw_concurrency.isascii() and raw_concurrency.isdigit()) or int(raw_concurrency) < 1:
                raise ConfigError(f"{config.CONCURRENCY}={raw_concurrency!r} must be a whole number >= 1")
            concurrency = int(raw_concurrency)
        return cls(
            connect_timeout=_positive(env, config.CONNECT_TIMEOUT, config.DEFAULT_CONNECT_TIMEOUT, zero_ok=False),
            read_timeout=_positive(env, config.READ_TIMEOUT, config.DEFAULT_READ_TIMEOUT, zero_ok=False),
            max_rps=_positive(env, config.MAX_RPS, config.DEFAULT_MAX_RPS, zero_ok=True),
            concurrency=concurrency,
        )


class EsaClient:
    """Signed, paced, retrying calls to the ESA delivery-task API; use as ``async with``.

    ``deadline`` (a ``monotonic`` instant) is the run's cut-off: no attempt, retry or paced send
    starts after it, and an attempt in flight is abandoned one read timeout after it.
    """

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        settings: ClientSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = now_utc,
        nonce: Callable[[], str] = new_nonce,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        on_retry: Callable[[EsaApiError, float], None] | None = None,
        deadline: float | None = None,
    ) -> None:
        self._url = check_endpoint(endpoint) + "/"
        self._settings = settings if settings is not None else ClientSettings()
        s = self._settings
        register_secret(credentials.access_key_secret)
        register_secret(credentials.security_token)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._monotonic = monotonic
        self._on_retry = on_retry
        self._deadline = Deadline(deadline, monotonic)
        self._retry = s.retry_policy()
        self._slots = asyncio.Semaphore(s.concurrency)
        self._pacer = Pacer(s.max_rps or 0.0, sleep, monotonic)
        self._api_calls = 0
        self._http = httpx.AsyncClient(
            auth=AcsV3Auth(credentials, clock=clock, nonce=nonce),
            transport=transport or KeepAliveTransport(s.concurrency, s.connect_timeout, s.read_timeout),
            timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            limits=httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency),
            headers={
                "x-acs-version": API_VERSION,
                "Accept": "application/json",
                "User-Agent": _user_agent(),
            },
        )

    async def __aenter__(self) -> EsaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    @property
    def concurrency(self) -> int:
        """How many calls this client lets be in flight at once."""
        return self._settings.concurrency

    @property
    def api_calls(self) -> int:
        """HTTP requests actually sent by this client, retries included."""
        return self._api_calls

    async def list_user_delivery_tasks(
        self, business_type: str | None = None, page_size: int = 100
    ) -> list[DeliveryTask]:
        """Every account-level delivery task, all pages followed and checked."""
        params = {"BusinessType": business_type} if business_type else {}
        return await self._list("ListUserDeliveryTasks", params, page_size)

    async def list_site_delivery_tasks(
        self, site_id: int, business_type: str | None = None, page_size: int = 100
    ) -> list[DeliveryTask]:
        """Every delivery task of one site, all pages followed and checked."""
        params = {"SiteId": str(site_id)}
        if business_type:
            params["BusinessType"] = business_type
        return await self._list("ListSiteDeliveryTasks", params, page_size)

    async def get_user_delivery_task(self, name: str) -> TaskDetail:
        """One account-level task by name."""
        action = "GetUserDeliveryTask"
        body, _ = await self._call(action, {"TaskName": name})
        return parse_body(action, TaskDetail, body)

    async def update_user_delivery_task_status(self, task_name: str, method: str) -> StatusChange:
        """Set an account-level task ``online`` or ``offline`` (idempotent on ESA's side)."""
        return await self._update("UpdateUserDeliveryTaskStatus", {"TaskName": task_name}, method)

    async def update_site_delivery_task_status(self, site_id: int, task_name: str, method: str) -> StatusChange:
        """Set a site-level task ``online`` or ``offline``."""
        params = {"SiteId": str(site_id), "TaskName": task_name}
        return await self._update("UpdateSiteDeliveryTaskStatus", params, method)

    async def _update(self, action: str, params: dict[str, str], method: str) -> StatusChange:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        body, attempts = await self._call(action, {**params, "Method": method})
        return parse_body(action, StatusChange, body).model_copy(update={"attempts": attempts})

    async def _list(self, action: str, params: dict[str, str], page_size: int) -> list[DeliveryTask]:
        if not 1 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE_SIZE}, not {page_size}")

        async def page(number: int, size: int) -> tuple[TaskPage, dict[str, Any]]:
            body, _ = await self._call(action, {**params, "PageNumber": str(number), "PageSize": str(size)})
            return parse_body(action, TaskPage, body), body

        return await list_all(action, page, page_size, max_batch=self.concurrency)

    async def _call(self, action: str, params: dict[str, str]) -> tuple[dict[str, Any], int]:
        """Send one logical call, retrying transient failures; return the JSON body and attempts."""
        first_failure: float | None = None  # the retry budget starts here, not while queueing for a slot
        attempt = nonce_clashes = 0
        last: EsaApiError | None = None
        while True:
            if self._deadline.passed():
                raise DeadlineExceeded(action, attempt, last)
            attempt += 1
            response = await self._attempt(action, params, attempt, last)
            hint: float | None = None
            if isinstance(response, EsaApiError):
                error = response
            else:
                body, failure = read_response(action, response)
                if failure is None:
                    self._pacer.recover()
                    return body, attempt
                error, hint = failure, retry_after(response.headers, self._clock)
                if error.throttled:
                    self._pacer.slow_down()
            error.attempts = attempt
            last = error
            nonce_clashes += error.code == NONCE_REUSED
            now = self._monotonic()
            first_failure = now if first_failure is None else first_failure
            delay = self._retry.delay(error, attempt, hint, nonce_clashes, self._rng)
            if delay is None or not self._retry.within_budget(now - first_failure, delay):
                raise error
            if not self._deadline.allows_wait(delay):
                raise DeadlineExceeded(action, attempt, error)
            if self._on_retry is not None:
                self._on_retry(error, delay)
            if delay > 0:
                await self._sleep(delay)

    async def _attempt(
        self, action: str, params: dict[str, str], attempt: int, last: EsaApiError | None
    ) -> httpx.Response | EsaApiError:
        """One HTTP exchange, or the transport failure it ended in (both are retry material)."""
        try:
            return await self._send(action, params, attempt, last)
        except httpx.TimeoutException as exc:
            return EsaApiError(action, "Timeout", _transport_text(exc), retryable=True)
        except httpx.TransportError as exc:
            return EsaApiError(action, "ConnectionError", _transport_text(exc), retryable=True)

    async def _send(
        self, action: str, params: dict[str, str], attempt: int, last: EsaApiError | None
    ) -> httpx.Response:
        """Wait for a slot and the pacer within the deadline, then send; a hang is cut at the deadline
        plus one read timeout even if the transport's own timeout never fires."""
        remaining = self._deadline.remaining()
        try:
            await asyncio.wait_for(self._slots.acquire(), None if math.isinf(remaining) else max(remaining, 0))
        except asyncio.TimeoutError:
            raise DeadlineExceeded(action, attempt - 1, last) from None
        try:
            if not await self._pacer.wait(self._deadline):
                raise DeadlineExceeded(action, attempt - 1, last)
            request = self._http.build_request("GET", self._url, params=params, headers={"x-acs-action": action})
            self._api_calls += 1
            remaining = self._deadline.remaining()
            if math.isinf(remaining):
                return await self._http.send(request)
            cut = max(remaining, 0) + self._settings.read_timeout
            try:
                return await asyncio.wait_for(self._http.send(request), cut)
            except asyncio.TimeoutError:
                raise httpx.ReadTimeout("no answer by the deadline plus one read timeout", request=request) from None
        finally:
            self._slots.release()


def _transport_text(exc: httpx.TransportError) -> str:
    detail = str(exc) or "no detail"
    return f"{exc.__class__.__name__}: {detail}"
