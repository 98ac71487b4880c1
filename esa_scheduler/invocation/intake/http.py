"""FC 3.0's HTTP trigger as an event handler sees it: the request event in, the response struct out.

FC maps an HTTP request to JSON bytes (``version``, ``rawPath``, ``body``, ``isBase64Encoded``,
``headers``, ``queryParameters``, ``requestContext``) and maps the handler's returned
``{"statusCode", "headers", "body", "isBase64Encoded"}`` back to the HTTP answer. FC capitalises
header names, so they are looked up case-insensitively; a header or a query parameter given more
than once arrives as one value, joined by commas. Form bodies usually arrive base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from esa_scheduler import strict_json
from esa_scheduler.errors import first_problem

MAX_BODY_BYTES = strict_json.MAX_BYTES
"""The largest request body (decoded) the intake reads, the most ``loads_strict`` reads of any JSON;
a real alert or chat message is a few KiB."""
MAX_EVENT_BYTES = 2 * MAX_BODY_BYTES
"""The trigger event around it: the body base64-encoded (4/3 of it) plus headers."""
JSON_TYPE = "application/json; charset=utf-8"


class HttpProblem(Exception):
    """A request the intake answers with an error status; ``reason`` is what ``intake.rejected`` logs."""

    def __init__(
        self,
        status: int,
        error: str,
        reason: str,
        headers: Mapping[str, str] | None = None,
        logged: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = dict(headers or {})
        self.logged = dict(logged or {})
        """What the ``intake.rejected`` line adds (a refused sender's id and conversation: never a secret)."""


def _joined(value: Any) -> Any:
    """FC joins repeated values with commas; a list (other gateways, hand-written events) is joined alike."""
    if isinstance(value, dict):
        return {
            k: ",".join(v) if isinstance(v, list) and all(isinstance(i, str) for i in v) else v
            for k, v in value.items()
        }
    return value


class _Open(BaseModel):
    """FC may add fields to its events: unknown ones are kept, known ones are checked."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, defer_build=True)


class HttpInfo(_Open):
    """``requestContext.http``."""

    method: str
    path: str | None = None
    sourceIp: str | None = None


class RequestContext(_Open):
    """``requestContext``: the method and decoded path, and FC's id of the request."""

    http: HttpInfo
    requestId: str | None = None


class HttpTriggerEvent(_Open):
    """The event FC passes to ``handler.intake`` for one HTTP request."""

    version: str = "v1"
    rawPath: str
    body: str = ""
    isBase64Encoded: bool = False
    headers: dict[str, str] = {}
    queryParameters: dict[str, str] = {}
    requestContext: RequestContext

    @field_validator("headers", "queryParameters", mode="before")
    @classmethod
    def _repeated(cls, value: Any) -> Any:
        return {} if value is None else _joined(value)


@dataclass(frozen=True)
class Request:
    """One request, decoded: header names lower-cased, the body as bytes, the path without a trailing slash."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    request_id: str
    source_ip: str | None = None

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case of its name as sent."""
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        """``content-type`` without its parameters, lower-cased (``application/json``)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


def _event_json(event: bytes | str | Mapping[str, Any]) -> Any:
    if isinstance(event, Mapping):
        return event
    if len(event) > MAX_EVENT_BYTES:
        raise HttpProblem(413, f"request body: larger than {MAX_BODY_BYTES} bytes", "too_large")
    try:
        return json.loads(event)
    except (ValueError, RecursionError) as exc:
        raise HttpProblem(400, f"event: not an FC HTTP trigger event ({type(exc).__name__})", "malformed") from exc


def _body(event: HttpTriggerEvent) -> bytes:
    """The body as sent, refused (413) beyond ``MAX_BODY_BYTES`` before anything else reads it."""
    if not event.isBase64Encoded:
        raw = event.body.encode("utf-8", "surrogatepass")
    else:
        if len(event.body) * 3 // 4 > MAX_BODY_BYTES + 2:
            raise HttpProblem(413, f"request body: larger than {MAX_BODY_BYTES} bytes", "too_large")
        try:
            raw = base64.b64decode(event.body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HttpProblem(400, "body: isBase64Encoded is true but the body is not base64", "malformed") from exc
    if len(raw) > MAX_BODY_BYTES:
        raise HttpProblem(413, f"request body: {len(raw)} bytes is larger than {MAX_BODY_BYTES}", "too_large")
    return raw


def read_request(event: bytes | str | Mapping[str, Any], fallback_id: str = "") -> Request:
    """The request an HTTP trigger event carries; ``HttpProblem`` (400 or 413) when it is not one."""
    try:
        parsed = HttpTriggerEvent.model_validate(_event_json(event))
    except ValidationError as exc:
        raise HttpProblem(400, f"event.{first_problem(exc)}", "malformed") from exc
    http = parsed.requestContext.http
    path = http.path if http.path is not None else unquote(parsed.rawPath)
    return Request(
        method=http.method.upper(),
        path=path.rstrip("/") or "/",
        headers={name.lower(): value for name, value in parsed.headers.items()},
        query=dict(parsed.queryParameters),
        body=_body(parsed),
        request_id=parsed.requestContext.requestId or fallback_id,
        source_ip=http.sourceIp,
    )


def respond(status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The response struct FC turns into the HTTP answer: always JSON, UTF-8, not ASCII-escaped."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON_TYPE, "Cache-Control": "no-store", **(headers or {})},
        "isBase64Encoded": False,
        "body": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
    }


def problem_response(problem: HttpProblem) -> dict[str, Any]:
    """``{"ok": false, "error": ...}`` with the problem's status."""
    return respond(problem.status, {"ok": False, "error": problem.error}, problem.headers)
