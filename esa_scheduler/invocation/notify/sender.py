"""Deliver one message to one target: read its URL and secret, POST, retry what is worth retrying.

Throttling (the service's own code or HTTP 429), 5xx and failed connections are retried with
exponential backoff (honouring ``Retry-After``), but only while the next attempt still has
``MIN_ATTEMPT`` before the deadline: a notification never makes the run late, and no retry is
started that could only be cut off. Each attempt is also cut off at the
deadline, so a receiver that never answers costs at most the time that was left. Nothing here
logs or raises the URL or the secret; both are registered with the log masker as soon as they are
read, as a second line of defence.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from urllib.parse import parse_qsl, urlsplit

import httpx

from esa_scheduler import __version__, config
from esa_scheduler.addresses import is_loopback
from esa_scheduler.edge.retry import retry_after
from esa_scheduler.engine.schedule.model import NotifyTarget
from esa_scheduler.invocation.notify import dingtalk, feishu, webhook, wecom
from esa_scheduler.invocation.notify.message import Message, Reminder
from esa_scheduler.invocation.notify.wire import Answer
from esa_scheduler.logs import RunLog, redact, register_secret
from esa_scheduler.timeutil import now_utc

SERVICES: dict[str, ModuleType] = {"dingtalk": dingtalk, "feishu": feishu, "wecom": wecom, "webhook": webhook}
BUDGET_WITHOUT_DEADLINE = 30.0
ATTEMPT_TIMEOUT = 10.0
MAX_ATTEMPTS = 5
BASE_DELAY = 0.5
MAX_DELAY = 8.0
MIN_ATTEMPT = 1.0
MAX_PORT = 65535
_TOKEN_MIN_CHARS = 16
"""A last path segment this long is a token (Feishu's hook id, a webhook's secret path)."""
_QUERY_VALUE_MIN_CHARS = 8
"""Any query value this long is masked: services echo the request, and a short token is still one."""
_CREDENTIAL_KEY = re.compile(r"token|key|secret|sig|pass|auth", re.IGNORECASE)
"""Query keys whose values are masked whatever their length (``access_token``, ``key``, ``sign``...)."""


class TargetConfigError(Exception):
    """The target's variables are missing or unusable; the message names the variable, never its value."""


@dataclass(frozen=True)
class Delivery:
    """How sending to one target ended; ``detail`` is the service's message (or why nothing was sent);
    ``reminders`` are the ones the accepted message showed, the only ones to record as sent."""

    target: NotifyTarget
    ok: bool
    attempts: int
    http_status: int | None = None
    code: str | None = None
    detail: str = ""
    reminders: tuple[Reminder, ...] = ()

    def log_fields(self) -> dict[str, object]:
        """The ``notify.sent``/``notify.failed`` fields."""
        return {
            "target": self.target.spec.name,
            "kind": self.target.spec.kind,
            "http_status": self.http_status,
            "code": self.code,
            "attempts": self.attempts,
            ("detail" if self.ok else "error"): redact(self.detail),
        }


def _register_url(url: str) -> None:
    """Mask the whole URL and every part that may be a credential: the userinfo password, every query
    value of a credential-like key (``access_token``, ``key``, ``sig``...), every other query value
    of 8 characters or more, and a long last path segment.

    Short values of other keys (``async=true``) are left alone: masking them would garble every log
    line. The masker ignores values under 4 characters for the same reason."""
    register_secret(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL: the whole text is masked, and read_target refuses it
        return
    register_secret(parts.password)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if len(last) >= _TOKEN_MIN_CHARS:
        register_secret(last)
    for key, value in parse_qsl(parts.query):
        if _CREDENTIAL_KEY.search(key) or len(value) >= _QUERY_VALUE_MIN_CHARS:
            register_secret(value)


def read_target(target: NotifyTarget, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The target's URL and secret from the environment, checked as the HTTP client will read the
    URL (a port it cannot use would otherwise fail the send with an error that quotes the URL):
    https, or http on loopback only."""
    spec = target.spec
    url = config.env(spec.url_env, environ=environ)
    if not url:
        raise TargetConfigError(f"{spec.url_env} is not set (the URL of notify target {spec.name})")
    _register_url(url)
    secret = None
    if spec.secret_env:
        secret = config.env(spec.secret_env, environ=environ)
        if not secret:
            raise TargetConfigError(f"{spec.secret_env} is not set (the signing secret of notify target {spec.name})")
        register_secret(secret)
    try:
        parsed = httpx.URL(url)
        host, port = parsed.host, parsed.port
    except (httpx.InvalidURL, ValueError):
        raise TargetConfigError(f"the URL in {spec.url_env} is not a valid URL") from None
    if any(c.isspace() or not c.isprintable() for c in url):
        raise TargetConfigError(f"the URL in {spec.url_env} is not a valid URL")
    if port is not None and not 0 < port <= MAX_PORT:
        raise TargetConfigError(f"the URL in {spec.url_env} has a port outside 1-{MAX_PORT}")
    scheme = parsed.scheme
    if not host or scheme not in ("https", "http") or (scheme == "http" and not is_loopback(host)):
        raise TargetConfigError(f"the URL in {spec.url_env} must start with https:// (http:// only on loopback)")
    return url, secret


def new_http() -> httpx.AsyncClient:
    """One client for every target of a run; redirects are not followed, so the token stays put."""
    return httpx.AsyncClient(
        timeout=ATTEMPT_TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": f"esa-scheduler/{__version__}"},
    )


def _delay(attempt: int, hinted: float | None) -> float:
    backoff = min(BASE_DELAY * 2.0 ** (attempt - 1), MAX_DELAY) * (0.5 + random.random() / 2)
    return max(backoff, hinted or 0.0)


async def deliver(
    http: httpx.AsyncClient,
    target: NotifyTarget,
    message: Message,
    environ: Mapping[str, str],
    deadline: float,
    event_id: str,
    log: RunLog,
) -> Delivery:
    """Send until the service accepts, refuses for good, or the deadline leaves no room to retry."""
    try:
        url, secret = read_target(target, environ)
    except TargetConfigError as exc:
        return Delivery(target, False, 0, detail=str(exc))
    service = SERVICES[target.spec.kind]
    attempts, status, answer = 0, None, Answer(False, None, "the deadline passed before sending")
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Delivery(target, False, attempts, status, answer.code, f"deadline reached: {answer.detail}")
        attempts += 1
        outgoing = service.prepare(url, secret, message, now_utc(), event_id)
        hinted = None
        wait = min(remaining, ATTEMPT_TIMEOUT)
        try:
            response = await asyncio.wait_for(
                http.post(outgoing.url, content=outgoing.body, headers=outgoing.headers), timeout=wait
            )
        except asyncio.TimeoutError:
            why = " (deadline)" if wait < ATTEMPT_TIMEOUT else ""
            earlier = f"; before that: {answer.detail}" if attempts > 1 else ""
            detail = f"no answer within {wait:.1f}s{why}{earlier}"
            return Delivery(target, False, attempts, status, answer.code, detail)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            status, answer, retry = None, Answer(False, None, f"cannot connect: {type(exc).__name__}"), True
        except httpx.HTTPError as exc:
            return Delivery(target, False, attempts, None, None, f"{type(exc).__name__}: {exc}")
        else:
            status, hinted = response.status_code, retry_after(response.headers)
            answer = service.answer(status, response.content)
            if 200 <= status < 300 and answer.ok:
                return Delivery(target, True, attempts, status, answer.code, answer.detail, outgoing.reminders)
            retry = status == 429 or status >= 500 or answer.throttled
        if not retry or attempts >= MAX_ATTEMPTS:
            return Delivery(target, False, attempts, status, answer.code, answer.detail or f"HTTP {status}")
        delay = _delay(attempts, hinted)
        if time.monotonic() + delay + MIN_ATTEMPT >= deadline:
            detail = f"gave up: a retry in {delay:.1f}s would pass the deadline ({answer.detail or status})"
            return Delivery(target, False, attempts, status, answer.code, detail)
        log.debug("notify.retry", target=target.spec.name, http_status=status, code=answer.code, attempt=attempts)
        await asyncio.sleep(delay)
