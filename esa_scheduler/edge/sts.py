"""STS ``AssumeRole`` (API 2015-04-01): temporary credentials for a target account's role.

A target in another account is reached by assuming a role there with the function's own
credentials, signed and paced like every other call (``AcsClient``). The issued secret and token
are registered with the log mask the moment they are read, so no later line can carry them; the
results are cached per caller and role until shortly before they expire, since STS limits how
many tokens it issues and every target run would otherwise ask again.

Imported only when a schedule declares targets with roles, to keep the timer path's cold start.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from esa_scheduler.edge.acs import AcsClient, ApiRequest, ClientSettings
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.responses import EsaApiError, malformed, parse_body
from esa_scheduler.logs import register_secret
from esa_scheduler.timeutil import now_utc, parse_instant, utc_iso

STS_API_VERSION = "2015-04-01"
ACTION = "AssumeRole"
ASSUME_TRIES = 2
EXPIRED_CODE = "CredentialsExpired"
"""The code a target fails with when STS twice issues credentials that have already expired."""
MIN_DURATION_S = 900
MAX_DURATION_S = 3600
SESSION_NAME_MIN, SESSION_NAME_MAX = 2, 64
ROLE_ARN = re.compile(r"acs:ram::(?P<account>[0-9]{1,32}):role/(?P<name>[A-Za-z0-9.-]{1,64})")
"""A RAM role's ARN; ``account`` is the id of the account that owns the role."""

_SESSION_NAME_BAD = re.compile(r"[^A-Za-z0-9_.@-]")


def sanitize_session_name(text: str) -> str:
    """``text`` as STS accepts a ``RoleSessionName``: ``[A-Za-z0-9_.@-]``, 2 to 64 characters.

    Other characters become ``-`` and the end is cut, so a run id of any shape still names the
    session in the target account's ActionTrail.
    """
    cleaned = _SESSION_NAME_BAD.sub("-", text)[:SESSION_NAME_MAX]
    if len(cleaned) < SESSION_NAME_MIN:
        raise ValueError(f"session_name {text!r} must give at least {SESSION_NAME_MIN} characters")
    return cleaned


def check_role_arn(role_arn: str) -> str:
    """Return ``role_arn`` if it has the shape ``acs:ram::<account id>:role/<name>``, else ``ValueError``."""
    if not ROLE_ARN.fullmatch(role_arn):
        raise ValueError(f"role_arn {role_arn!r} is not like acs:ram::<account id>:role/<name>")
    return role_arn


@dataclass(frozen=True)
class AssumedRole:
    """Temporary credentials for a role, and when STS says they stop working (aware UTC)."""

    credentials: Credentials
    expiration: datetime


class _IssuedCredentials(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    access_key_id: StrictStr = Field(alias="AccessKeyId", min_length=1)
    access_key_secret: StrictStr = Field(alias="AccessKeySecret", min_length=1)
    security_token: StrictStr = Field(alias="SecurityToken", min_length=1)
    expiration: StrictStr = Field(alias="Expiration")


class _AssumeRoleAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    credentials: _IssuedCredentials = Field(alias="Credentials")


def _mask_issued(body: dict[str, Any]) -> None:
    """Register whatever secret and token the answer carries before anything parses or reports it."""
    issued = body.get("Credentials")
    if isinstance(issued, dict):
        for key in ("AccessKeySecret", "SecurityToken"):
            value = issued.get(key)
            if isinstance(value, str):
                register_secret(value)


class StsClient(AcsClient):
    """STS's ``AssumeRole``; use as ``async with`` (see ``AcsClient`` for the keywords)."""

    def __init__(
        self, endpoint: str, credentials: Credentials, settings: ClientSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(endpoint, credentials, STS_API_VERSION, settings, **kwargs)

    async def assume_role(self, role_arn: str, session_name: str, duration_s: int = 3600) -> AssumedRole:
        """Assume ``role_arn`` for ``duration_s`` seconds (900 to 3600).

        STS's refusals (``NoPermission``, ``EntityNotExist.Role``, ...) raise ``EsaApiError`` with
        its code; throttling is retried like any other call's.
        """
        if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration_s must be between {MIN_DURATION_S} and {MAX_DURATION_S}, not {duration_s}")
        params = {
            "RoleArn": check_role_arn(role_arn),
            "RoleSessionName": sanitize_session_name(session_name),
            "DurationSeconds": str(duration_s),
        }
        body, _, _ = await self.call(ApiRequest(ACTION, params, method="POST"))
        _mask_issued(body)
        issued = parse_body(ACTION, _AssumeRoleAnswer, body).credentials
        try:
            expiration = parse_instant(issued.expiration)
        except ValueError:
            raise malformed(ACTION, f"Credentials.Expiration {issued.expiration!r} is not an instant", body) from None
        credentials = Credentials(
            issued.access_key_id, issued.access_key_secret, issued.security_token, f"sts:{role_arn}"
        )
        return AssumedRole(credentials, expiration)


class RoleSessionCache:
    """AssumeRole results per (STS endpoint, caller AccessKeyId, role ARN), reused until shortly before expiry.

    One ``AssumeRole`` is in flight per key however many coroutines ask at once: targets sharing a
    role share its session instead of each spending STS quota on an identical token. Use it from
    one event loop at a time (a new loop, as in each warm FC invocation, is fine).
    """

    def __init__(
        self, clock: Callable[[], datetime] = now_utc, refresh_before: timedelta = timedelta(minutes=5)
    ) -> None:
        self._clock = clock
        self._refresh_before = refresh_before
        self._sessions: dict[tuple[str, str, str], AssumedRole] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._assume_calls = 0

    @property
    def assume_calls(self) -> int:
        """How many ``AssumeRole`` calls this cache has made (failed ones included)."""
        return self._assume_calls

    async def credentials(
        self, sts: StsClient, role_arn: str, session_name: str, duration_s: int = 3600
    ) -> Credentials:
        """The role's credentials: the cached ones while fresh, else a new ``AssumeRole``."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A warm FC instance runs each invocation in a new event loop; a lock is bound to one.
            self._loop, self._locks = loop, {}
        key = (sts.endpoint, sts.access_key_id, role_arn)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._sessions.get(key)
            if cached is not None and self._clock() < cached.expiration - self._refresh_before:
                return cached.credentials
            assumed = await self._assume(sts, role_arn, session_name, duration_s)
            self._sessions[key] = assumed
            return assumed.credentials

    async def _assume(self, sts: StsClient, role_arn: str, session_name: str, duration_s: int) -> AssumedRole:
        """A fresh ``AssumeRole`` whose credentials have not expired already: an ``Expiration`` in the
        past (an STS whose clock is behind ours, an answer replayed by a proxy) makes every call fail
        as the token expired, so the role is assumed once more, and if those are no better either,
        the target fails with ``CredentialsExpired`` instead of acting with them."""
        for _ in range(ASSUME_TRIES):
            self._assume_calls += 1
            assumed = await sts.assume_role(role_arn, session_name, duration_s)
            now = self._clock()
            if assumed.expiration > now:
                return assumed
        raise EsaApiError(
            ACTION,
            EXPIRED_CODE,
            f"STS issued credentials for {role_arn} that had already expired ({utc_iso(assumed.expiration)}, "
            f"now is {utc_iso(now)}), {ASSUME_TRIES} times in a row; check the clocks of this host and of the STS "
            "endpoint",
        )

    def forget(self, sts: StsClient, role_arn: str) -> bool:
        """Drop the role's cached credentials (ESA refused them: revoked, or from another STS)."""
        return self._sessions.pop((sts.endpoint, sts.access_key_id, role_arn), None) is not None
