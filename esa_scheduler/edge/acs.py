"""Signed, paced, retrying calls to one Alibaba Cloud API: the call itself, whatever the product.

``AcsClient.call`` puts together the units that each own one job: signing (``signer``), pacing
(``pacing``), the retry policy and the run's deadline (``retry``), and decoding untrusted answers
(``responses``). The ESA client, and any other product the scheduler talks to, adds only its
actions and models on top, so every call in a run obeys the same deadline and retry rules.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from esa_scheduler import __version__, config
from esa_scheduler.addresses import check_endpoint
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.pacing import Pacer
from esa_scheduler.edge.responses import NONCE_REUSED, DeadlineExceeded, EsaApiError, read_response
from esa_scheduler.edge.retry import Deadline, RetryPolicy, retry_after
from esa_scheduler.edge.signer import AcsV3Auth, new_nonce
from esa_scheduler.edge.transport import KeepAliveTransport
from esa_scheduler.errors import ConfigError
from esa_scheduler.logs import register_secret
from esa_scheduler.timeutil import now_utc

_Client = TypeVar("_Client", bound="AcsClient")


def _user_agent() -> str:
    return f"esa-scheduler/{__version__} httpx/{httpx.__version__} Python/{platform.python_version()}"


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


@dataclass(frozen=True)
class ApiRequest:
    """One logical call: RPC style (``GET /`` with a query) or ROA style (a path and a body)."""

    action: str
    params: Mapping[str, str]
    method: str = "GET"
    path: str = "/"
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    expect_json: bool = True
    """False for calls whose success has no JSON body (an async FC invocation answers 202, empty)."""


class AcsClient:
    """Signed, paced, retrying calls to one API endpoint and version; use as ``async with``.

    ``deadline`` (a ``monotonic`` instant) is the run's cut-off: no attempt, retry or paced send
    starts after it, and an attempt in flight is abandoned one read timeout after it.
    """

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        version: str,
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
        self._base = check_endpoint(endpoint)
        self._settings = settings if settings is not None else ClientSettings()
        s = self._settings
        register_secret(credentials.access_key_secret)
        register_secret(credentials.security_token)
        self._access_key_id = credentials.access_key_id
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
                "x-acs-version": version,
                "Accept": "application/json",
                "User-Agent": _user_agent(),
            },
        )

    async def __aenter__(self: _Client) -> _Client:
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
    def endpoint(self) -> str:
        """``scheme://host[:port]`` this client calls."""
        return self._base

    @property
    def access_key_id(self) -> str:
        """The AccessKey id this client signs with (not a secret: it names the caller)."""
        return self._access_key_id

    @property
    def api_calls(self) -> int:
        """HTTP requests actually sent by this client, retries included."""
        return self._api_calls

    async def call(self, request: ApiRequest) -> tuple[dict[str, Any], httpx.Response, int]:
        """Send one logical call, retrying transient failures; the JSON body, the last response, attempts."""
        action = request.action
        first_failure: float | None = None  # the retry budget starts here, not while queueing for a slot
        attempt = nonce_clashes = 0
        last: EsaApiError | None = None
        while True:
            if self._deadline.passed():
                raise DeadlineExceeded(action, attempt, last)
            attempt += 1
            response = await self._attempt(request, attempt, last)
            hint: float | None = None
            if isinstance(response, EsaApiError):
                error = response
            else:
                body, failure = read_response(action, response, expect_json=request.expect_json)
                if failure is None:
                    self._pacer.recover()
                    return body, response, attempt
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
        self, request: ApiRequest, attempt: int, last: EsaApiError | None
    ) -> httpx.Response | EsaApiError:
        """One HTTP exchange, or the transport failure it ended in (both are retry material)."""
        try:
            return await self._send(request, attempt, last)
        except httpx.TimeoutException as exc:
            return EsaApiError(request.action, "Timeout", _transport_text(exc), retryable=True)
        except httpx.TransportError as exc:
            return EsaApiError(request.action, "ConnectionError", _transport_text(exc), retryable=True)

    async def _send(self, spec: ApiRequest, attempt: int, last: EsaApiError | None) -> httpx.Response:
        """Wait for a slot and the pacer within the deadline, then send; a hang is cut at the deadline
        plus one read timeout even if the transport's own timeout never fires."""
        remaining = self._deadline.remaining()
        try:
            await asyncio.wait_for(self._slots.acquire(), None if math.isinf(remaining) else max(remaining, 0))
        except asyncio.TimeoutError:
            raise DeadlineExceeded(spec.action, attempt - 1, last) from None
        try:
            if not await self._pacer.wait(self._deadline):
                raise DeadlineExceeded(spec.action, attempt - 1, last)
            request = self._http.build_request(
                spec.method,
                self._base + spec.path,
                params=dict(spec.params),
                content=spec.body or None,
                headers={"x-acs-action": spec.action, **dict(spec.headers)},
            )
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
