"""Alibaba Cloud V3 request signing (ACS3-HMAC-SHA256) as an ``httpx.Auth``.

Pure functions build the canonical request so that the emulator can verify with the very same
definition it is checked against; the ``Auth`` flow only stamps headers and never does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import datetime
from urllib.parse import quote, unquote_plus

import httpx

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.timeutil import now_utc

ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: only ``A-Z a-z 0-9 - _ . ~`` stay as they are (space is ``%20``)."""
    return quote(value, safe="-_.~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Sorted ``key=value`` pairs, each side percent-encoded, joined by ``&``."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def parse_query(raw: str) -> list[tuple[str, str]]:
    """Decode a query string as sent, accepting both ``%20`` and ``+`` for spaces."""
    pairs = []
    for part in raw.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """The headers V3 requires signing: ``host``, every ``x-acs-*``, and ``content-type`` if present."""
    names = {k.lower() for k in headers}
    return sorted(n for n in names if n in ("host", "content-type") or n.startswith("x-acs-"))


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    body_sha256: str,
) -> str:
    """The V3 canonical request; ``headers`` keys must already be lower-case."""
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join([method.upper(), path or "/", query, canonical_headers, ";".join(signed_headers), body_sha256])


def signature(secret: str, canonical: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, keyed by the AccessKey secret."""
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(access_key_id: str, signed_headers: list[str], sig: str) -> str:
    """The ``Authorization`` header value (no spaces after the commas, as the service expects)."""
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(signed_headers)},Signature={sig}"


def new_nonce() -> str:
    """A unique 32-hex-digit nonce per request (replays are rejected as ``SignatureNonceUsed``)."""
    return secrets.token_hex(16)


class AcsV3Auth(httpx.Auth):
    """Sign each request with V3; rewrites the query so the wire carries exactly what was signed."""

    requires_request_body = True

    def __init__(
        self,
        credentials: Credentials,
        clock: Callable[[], datetime] = now_utc,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._nonce = nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        """Stamp date, nonce, body hash and token headers, then the ``Authorization`` header."""
        query = canonical_query(parse_query(request.url.query.decode("ascii")))
        request.url = request.url.copy_with(query=query.encode("ascii") or None)
        body_hash = hashlib.sha256(request.content).hexdigest()
        request.headers["x-acs-date"] = self._clock().strftime(DATE_FORMAT)
        request.headers["x-acs-signature-nonce"] = self._nonce()
        request.headers["x-acs-content-sha256"] = body_hash
        if self._credentials.security_token:
            request.headers["x-acs-security-token"] = self._credentials.security_token
        if not request.content:
            request.headers.pop("content-type", None)
        lowered = {k.lower(): v for k, v in request.headers.items()}
        names = signed_header_names(lowered)
        canonical = canonical_request(request.method, request.url.path, query, lowered, names, body_hash)
        sig = signature(self._credentials.access_key_secret, canonical)
        request.headers["Authorization"] = authorization(self._credentials.access_key_id, names, sig)
