"""A small async client for ESA's delivery-task API (version 2024-09-10) on httpx.

It replaces the official SDK, whose dependency tree costs seconds of cold start, with the five
calls the scheduler needs. Every request goes through one path that owns the things a timer
function must get right against a shared account quota: signing, bounded concurrency, client-side
pacing, and retries that only repeat what is safe to repeat.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
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
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from esa_scheduler import __version__, config
from esa_scheduler.credentials import Credentials
from esa_scheduler.errors import ConfigError
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


_RETRYABLE_PREFIXES = ("Throttling", "ServiceUnavailable", "InternalError")
_NONCE_REUSED = "SignatureNonceUsed"
_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Pacing allows this much traffic ahead of the steady rate, so a lone call never waits.
_BURST_SECONDS = 0.1
# Hard stop for a server whose pages never end (1000 pages of 100 is far beyond any real account).
_MAX_PAGES = 1000
_MIN_INTERVAL = 0.05
_EPISODE = 1.0
_MAX_PAGE_SIZE = 500

_Model = TypeVar("_Model", bound=BaseModel)


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


class _EsaModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class DeliveryTask(_EsaModel):
    """One task as listed by ``List*DeliveryTasks``."""

    task_name: StrictStr = Field(alias="TaskName")
    status: StrictStr = Field(alias="Status")
    business_type: StrictStr | None = Field(default=None, alias="BusinessType")
    data_center: StrictStr | None = Field(default=None, alias="DataCenter")
    delivery_type: StrictStr | None = Field(default=None, alias="DeliveryType")


class TaskPage(_EsaModel):
    """One page of a list call; ``TotalCount`` is what drives pagination."""

    request_id: StrictStr | None = Field(default=None, alias="RequestId")
    total_count: int = Field(alias="TotalCount", ge=0)
    page_number: int | None = Field(default=None, alias="PageNumber")
    page_size: int | None = Field(default=None, alias="PageSize")
    tasks: list[DeliveryTask] = Field(default_factory=list, alias="Tasks")


class TaskDetail(DeliveryTask):
    """``GetUserDeliveryTask``: the task fields we act on; sink and filter settings are ignored."""

    request_id: StrictStr | None = Field(default=None, alias="RequestId")


class StatusChange(_EsaModel):
    """The answer to an ``Update*DeliveryTaskStatus`` call, plus how many attempts it took."""

    request_id: StrictStr | None = Field(default=None, alias="RequestId")
    task_name: StrictStr = Field(alias="TaskName")
    status: StrictStr = Field(alias="Status")
    attempts: int = 1


class EsaApiError(Exception):
    """A call that failed for good; ``retryable`` says whether the failure class is transient."""

    def __init__(
        self,
        action: str,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        http_status: int | None = None,
        host_id: str | None = None,
        recommend: str | None = None,
        retryable: bool = False,
        attempts: int = 1,
    ) -> None:
        self.action = action
        self.code = code
        self.message = " ".join(message.split())
        self.request_id = request_id
        self.http_status = http_status
        self.host_id = host_id
        self.recommend = recommend
        self.retryable = retryable
        self.attempts = attempts
        super().__init__(action, code, self.message)

    def __str__(self) -> str:
        status = f" (HTTP {self.http_status})" if self.http_status is not None else ""
        request = f" [RequestId {self.request_id}]" if self.request_id else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.action} failed{tries}: {self.code}{status}: {self.message}{request}"


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


class _Pacer:
    """Spaces requests ``1/rate`` apart with a small burst allowance (GCRA, virtual scheduling).

    Each caller reserves its slot before awaiting, so no lock is needed on one event loop and
    the waits come out exact even when the injected sleep returns at once. When ESA throttles,
    the spacing doubles for every caller at once (and eases back on success), so a run settles
    at the rate the account is allowed instead of spending its retries in lockstep.
    """

    def __init__(self, rate: float, sleep: Callable[[float], Awaitable[None]], clock: Callable[[], float]):
        self._base = 1.0 / rate if rate else 0.0
        self._interval = self._base
        burst = max(1.0, rate * _BURST_SECONDS)
        self._tolerance = (burst - 1.0) * self._base
        self._sleep = sleep
        self._clock = clock
        self._next: float | None = None
        self._last_slow_down: float | None = None

    async def wait(self) -> None:
        now = self._clock()
        slot = now if self._next is None else max(self._next, now)
        self._next = slot + self._interval
        tolerance = self._tolerance if self._interval == self._base else 0.0
        delay = slot - tolerance - now
        if delay > 0:
            await self._sleep(delay)

    def slow_down(self) -> None:
        """Throttled: halve the rate (down to one request per second), once per episode.

        Many calls in flight are refused together for one overload; counting each of them would
        halve the rate a dozen times for a single event.
        """
        now = self._clock()
        if self._last_slow_down is not None and now - self._last_slow_down < _EPISODE:
            return
        self._last_slow_down = now
        self._interval = min(max(self._interval * 2, _MIN_INTERVAL), 1.0)

    def recover(self) -> None:
        """A success: ease back towards the configured rate."""
        if self._interval > self._base:
            eased = self._interval * 0.9
            self._interval = self._base if eased <= max(self._base, _MIN_INTERVAL / 2) else eased


class EsaClient:
    """Signed, paced, retrying calls to the ESA delivery-task API; use as ``async with``."""

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
    ) -> None:
        self._url = check_endpoint(endpoint) + "/"
        self._settings = settings if settings is not None else ClientSettings()
        s = self._settings
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._monotonic = monotonic
        self._on_retry = on_retry
        self._credentials = credentials
        self._slots = asyncio.Semaphore(s.concurrency)
        self._pacer = _Pacer(s.max_rps or 0.0, sleep, monotonic)
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

    def _scrub(self, text: str) -> str:
        """Servers may echo what was signed: the secret and the STS token never leave in an error."""
        for secret in (self._credentials.access_key_secret, self._credentials.security_token):
            if secret:
                text = text.replace(secret, "***")
        return text

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
        """Every account-level delivery task, all pages followed."""
        params = {"BusinessType": business_type} if business_type else {}
        return await self._list("ListUserDeliveryTasks", params, page_size)

    async def list_site_delivery_tasks(
        self, site_id: int, business_type: str | None = None, page_size: int = 100
    ) -> list[DeliveryTask]:
        """Every delivery task of one site, all pages followed."""
        params = {"SiteId": str(site_id)}
        if business_type:
            params["BusinessType"] = business_type
        return await self._list("ListSiteDeliveryTasks", params, page_size)

    async def get_user_delivery_task(self, name: str) -> TaskDetail:
        """One account-level task by name."""
        action = "GetUserDeliveryTask"
        body, _ = await self._call(action, {"TaskName": name})
        return _parse(action, TaskDetail, body)

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
        return _parse(action, StatusChange, body).model_copy(update={"attempts": attempts})

    async def _page(self, action: str, params: dict[str, str], number: int, size: int) -> tuple[TaskPage, Any]:
        query = {**params, "PageNumber": str(number), "PageSize": str(size)}
        body, _ = await self._call(action, query)
        return _parse(action, TaskPage, body), body

    async def _list(self, action: str, params: dict[str, str], page_size: int) -> list[DeliveryTask]:
        """Page 1 says how many pages there are; the others are fetched concurrently."""
        if not 1 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE_SIZE}, not {page_size}")
        first, first_body = await self._page(action, params, 1, page_size)
        count = math.ceil(first.total_count / page_size) if len(first.tasks) == page_size else 1
        if count > _MAX_PAGES:
            what = f"TotalCount {first.total_count} would take more than {_MAX_PAGES} pages"
            raise _malformed(action, what, first_body)
        rest = await asyncio.gather(*(self._page(action, params, n, page_size) for n in range(2, count + 1)))
        tasks: dict[str, DeliveryTask] = {task.task_name: task for task in first.tasks}
        for number, (page, body) in enumerate(rest, start=2):
            if not page.tasks:
                what = f"TotalCount is {first.total_count} but page {number} was empty after {len(tasks)} tasks"
                raise _malformed(action, f"truncated list: {what}", body)
            tasks.update((task.task_name, task) for task in page.tasks)
        return list(tasks.values())

    async def _call(self, action: str, params: dict[str, str]) -> tuple[dict[str, Any], int]:
        """Send one logical call, retrying transient failures; return the JSON body and attempts."""
        s = self._settings
        first_failure: float | None = None  # the retry budget starts here, not while queueing for a slot
        attempt = nonce_clashes = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = await self._send(action, params)
            except httpx.TimeoutException as exc:
                error = EsaApiError(action, "Timeout", _transport_text(exc), retryable=True)
            except httpx.TransportError as exc:
                error = EsaApiError(action, "ConnectionError", _transport_text(exc), retryable=True)
            else:
                body, failure = _read(action, response, self._scrub)
                if failure is None:
                    self._pacer.recover()
                    return body, attempt
                error, retry_after = failure, _retry_after(response)
                if error.code.startswith("Throttling"):
                    self._pacer.slow_down()
            error.attempts = attempt
            nonce_clashes += error.code == _NONCE_REUSED
            now = self._monotonic()
            first_failure = now if first_failure is None else first_failure
            delay = self._retry_delay(error, attempt, retry_after, nonce_clashes)
            if delay is None or now - first_failure + delay > s.max_total_retry_time:
                raise error
            if self._on_retry is not None:
                self._on_retry(error, delay)
            if delay > 0:
                await self._sleep(delay)

    def _retry_delay(
        self, error: EsaApiError, attempt: int, retry_after: float | None, nonce_clashes: int
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the error is final."""
        if not error.retryable or attempt >= self._settings.max_attempts:
            return None
        if error.code == _NONCE_REUSED:
            # A nonce clash is a coincidence, not load: one immediate re-sign is enough.
            return 0.0 if nonce_clashes == 1 else None
        if retry_after is not None:
            # The server's hint, spread by up to half again so throttled callers do not return together.
            return self._rng.uniform(retry_after, retry_after * 1.5)
        cap = min(self._settings.max_delay, self._settings.base_delay * 2 ** (attempt - 1))
        return self._rng.uniform(0, cap)

    async def _send(self, action: str, params: dict[str, str]) -> httpx.Response:
        async with self._slots:
            await self._pacer.wait()
            request = self._http.build_request("GET", self._url, params=params, headers={"x-acs-action": action})
            self._api_calls += 1
            return await self._http.send(request)


def _is_retryable(code: str, http_status: int) -> bool:
    """Transient by code first (ESA sends some of these with HTTP 400); any other 5xx too."""
    return code.startswith(_RETRYABLE_PREFIXES) or code == _NONCE_REUSED or http_status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    """ESA's ``x-acs-retry-after`` header, in milliseconds as the official SDK reads it."""
    raw = response.headers.get("x-acs-retry-after", "").strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
        return None
    return int(raw) / 1000.0


def _transport_text(exc: httpx.TransportError) -> str:
    detail = str(exc) or "no detail"
    return f"{exc.__class__.__name__}: {detail}"


def _str_field(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def _read(
    action: str, response: httpx.Response, scrub: Callable[[str], str] = str
) -> tuple[dict[str, Any], EsaApiError | None]:
    """Decode a response into its JSON object, or into the error it carries (server text scrubbed)."""
    status = response.status_code
    try:
        decoded: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        decoded = None
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    if 200 <= status < 300:
        if decoded is None:
            return body, _malformed(action, "body is not JSON", body, status)
        if not isinstance(decoded, dict):
            return body, _malformed(action, f"body is a JSON {type(decoded).__name__}, not an object", body, status)
        return body, None
    code = _str_field(body, "Code")
    if code is None:
        snippet = " ".join(scrub(response.text).split())[:200]
        code, message = "HTTPError", snippet or response.reason_phrase or "empty body"
    else:
        message = scrub(_str_field(body, "Message") or "no message")
    return body, EsaApiError(
        action,
        code,
        message,
        request_id=_str_field(body, "RequestId"),
        http_status=status,
        host_id=_str_field(body, "HostId"),
        recommend=_str_field(body, "Recommend"),
        retryable=_is_retryable(code, status),
    )


def _malformed(action: str, what: str, body: Mapping[str, Any], status: int = 200) -> EsaApiError:
    return EsaApiError(
        action,
        "MalformedResponse",
        f"malformed {action} response: {what}",
        request_id=_str_field(body, "RequestId"),
        http_status=status,
    )


def _parse(action: str, model: type[_Model], body: dict[str, Any]) -> _Model:
    """Validate a 2xx body, turning every surprise into a one-line ``MalformedResponse``."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        code = _str_field(body, "Code")
        if code is not None:
            what = f"HTTP 200 carried an error body: {code}: {_str_field(body, 'Message') or 'no message'}"
        else:
            what = "; ".join(_describe(err) for err in exc.errors()[:3])
        raise _malformed(action, what, body) from None


def _describe(err: Any) -> str:
    where = ".".join(str(part) for part in err["loc"])
    if err["type"] == "missing":
        return f"missing {where}"
    return f"{where}: {err['msg']}"
