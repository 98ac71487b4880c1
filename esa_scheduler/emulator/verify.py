"""Strict ACS3-HMAC-SHA256 verification, as ESA's gateway does it, over the signer's own definitions.

Verification reuses ``esa_scheduler.edge.signer``'s canonicalisation so that the emulator and our client
can only agree by both matching the published algorithm, which the official-SDK interoperability
tests then pin down from the other side.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from esa_scheduler.edge.signer import (
    DATE_FORMAT,
    EMPTY_SHA256,
    canonical_query,
    canonical_request,
    parse_query,
    signature,
)
from esa_scheduler.emulator.models import ApiError
from esa_scheduler.timeutil import parse_instant

SKEW = timedelta(minutes=15)
NONCE_CAPACITY = 100_000
"""Nonces remembered at most; at ~200 bytes each this caps the cache near 20 MB."""

_AUTHORIZATION = re.compile(r"ACS3-HMAC-SHA256 Credential=([^,\s]+),SignedHeaders=([^,\s]+),Signature=(\S+)")


@dataclass(frozen=True)
class HttpRequest:
    """One request as received: header names lower-case, repeated headers joined with commas."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    peer: str


@dataclass(frozen=True)
class KeyPair:
    """A secret, and the STS token that must accompany it (``None`` for a permanent AccessKey).

    ``account`` is the account the key acts for; ``expires`` ends an STS key's life.
    """

    secret: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    account: str = ""
    expires: datetime | None = None


class NonceCache:
    """Remembers each nonce until its request's timestamp leaves the 15-minute window.

    Beyond that point the timestamp check refuses the replay anyway, so forgetting is safe; when
    full, the nonce closest to that point goes first, which keeps memory bounded under any load.
    """

    def __init__(self, capacity: int = NONCE_CAPACITY) -> None:
        self._capacity = capacity
        self._seen: set[str] = set()
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def claim(self, nonce: str, expires: float, now: float) -> bool:
        """Record ``nonce`` (POSIX seconds); ``False`` if it is already known, i.e. a replay."""
        while self._expiries and self._expiries[0][0] <= now:
            self._seen.discard(heapq.heappop(self._expiries)[1])
        if nonce in self._seen:
            return False
        if len(self._seen) >= self._capacity:
            self._seen.discard(heapq.heappop(self._expiries)[1])
        self._seen.add(nonce)
        heapq.heappush(self._expiries, (expires, nonce))
        return True


class Verifier:
    """Checks, in the gateway's order: header shape, timestamp, coverage, key, body hash, signature,
    STS token, nonce. The nonce is recorded last so forged requests cannot burn legitimate ones."""

    def __init__(self, keys: Mapping[str, KeyPair], clock: Callable[[], datetime]) -> None:
        self._keys = dict(keys)
        self._clock = clock
        self._nonces = NonceCache()

    def add(self, access_key_id: str, pair: KeyPair) -> None:
        """Accept a key from now on (STS issues them while the emulator runs)."""
        self._keys[access_key_id] = pair

    @property
    def pairs(self) -> list[KeyPair]:
        """Every key pair known, issued ones included."""
        return list(self._keys.values())

    def claimed(self, headers: Mapping[str, str]) -> KeyPair | None:
        """The known key a request claims to be signed with, before any check (to count its calls)."""
        match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        return self._keys.get(match.group(1)) if match else None

    def verify(self, request: HttpRequest) -> KeyPair:
        """The signing key if the request is authentic and fresh, else the gateway's ``ApiError``."""
        headers = request.headers
        match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        if match is None:
            raise ApiError("IncompleteSignature", "Authorization is missing or is not ACS3-HMAC-SHA256.")
        access_key_id, signed_list, sent_signature = match.groups()
        signed_at = self._timestamp(headers.get("x-acs-date"))
        names = signed_list.split(";")
        self._check_coverage(headers, names)
        pair = self._keys.get(access_key_id)
        if pair is None:
            raise ApiError("InvalidAccessKeyId.NotFound", f"Specified access key {access_key_id!r} is not found.")
        body_sha256 = hashlib.sha256(request.body).hexdigest() if request.body else EMPTY_SHA256
        if headers["x-acs-content-sha256"] != body_sha256:
            raise ApiError("SignatureDoesNotMatch", "x-acs-content-sha256 does not match the request body.")
        query = canonical_query(parse_query(request.query))
        canonical = canonical_request(request.method, request.path, query, headers, names, body_sha256)
        if not hmac.compare_digest(signature(pair.secret, canonical).encode(), sent_signature.encode()):
            raise ApiError(
                "SignatureDoesNotMatch",
                "The request signature does not conform to Aliyun standards. Server string to sign is: "
                f"ACS3-HMAC-SHA256 {hashlib.sha256(canonical.encode()).hexdigest()}",
            )
        self._check_token(pair, headers.get("x-acs-security-token"))
        if pair.expires is not None and self._clock() >= pair.expires:
            raise ApiError("InvalidSecurityToken.Expired")
        expires = (signed_at + SKEW).timestamp()
        if not self._nonces.claim(headers["x-acs-signature-nonce"], expires, self._clock().timestamp()):
            raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.")
        return pair

    def _timestamp(self, value: str | None) -> datetime:
        if value is None:
            raise ApiError("InvalidTimeStamp.Format", "x-acs-date is missing.")
        malformed = ApiError("InvalidTimeStamp.Format", f"x-acs-date {value!r} is not yyyy-MM-ddTHH:mm:ssZ.")
        try:
            instant = parse_instant(value)
        except ValueError:
            raise malformed from None
        if instant.strftime(DATE_FORMAT) != value:
            raise malformed
        if abs(self._clock() - instant) > SKEW:
            raise ApiError("InvalidTimeStamp.Expired", f"x-acs-date {value} is more than 15 minutes off.")
        return instant

    @staticmethod
    def _check_coverage(headers: Mapping[str, str], names: list[str]) -> None:
        if "" in names:
            raise ApiError("IncompleteSignature", "SignedHeaders has an empty header name.")
        required = {"host", "x-acs-content-sha256", "x-acs-signature-nonce"}
        required.update(name for name in headers if name.startswith("x-acs-"))
        absent = sorted(name for name in {*names, *required} if name not in headers)
        if absent:
            raise ApiError("IncompleteSignature", f"Required or signed header(s) missing: {', '.join(absent)}.")
        unsigned = sorted(required.difference(names))
        if unsigned:
            raise ApiError("IncompleteSignature", f"Header(s) not in SignedHeaders: {', '.join(unsigned)}.")

    @staticmethod
    def _check_token(pair: KeyPair, sent: str | None) -> None:
        if sent == pair.token:
            return
        if sent is None:
            raise ApiError("InvalidSecurityToken.Malformed", "This AccessKeyId needs x-acs-security-token.")
        raise ApiError("InvalidSecurityToken.Mismatch", "x-acs-security-token does not belong to this key.")
