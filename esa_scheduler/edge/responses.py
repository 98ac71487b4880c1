"""What ESA answers, as typed models, and how an answer becomes a result or one ``EsaApiError``.

Every byte a server sends is untrusted: bodies are validated by pydantic, surprises become a
one-line ``MalformedResponse``, and every text taken from a response passes the secret mask
where it is parsed, whatever the HTTP status, so a server that echoes the AccessKey secret or
the STS token cannot push either into a log, an exception or the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from esa_scheduler import logs

if TYPE_CHECKING:  # the answers' shapes load without the HTTP stack, which only a client needs
    import httpx

_Model = TypeVar("_Model", bound=BaseModel)

_RETRYABLE_PREFIXES = ("Throttling", "ServiceUnavailable", "InternalError")
NONCE_REUSED = "SignatureNonceUsed"
THROTTLING_STATUSES = (429, 503)
"""HTTP statuses that mean "slow down" whatever the body says (gateways send them without ESA's JSON)."""


class _EsaModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", defer_build=True)


class DeliveryTask(_EsaModel):
    """One task as listed by ``List*DeliveryTasks``."""

    task_name: StrictStr = Field(alias="TaskName")
    status: StrictStr = Field(alias="Status")
    business_type: StrictStr | None = Field(default=None, alias="BusinessType")
    data_center: StrictStr | None = Field(default=None, alias="DataCenter")
    delivery_type: StrictStr | None = Field(default=None, alias="DeliveryType")


class TaskPage(_EsaModel):
    """One page of a list call; ``TotalCount`` and ``PageSize`` are claims the lister checks.

    Integers are taken only as JSON integers: lax parsing would read ``"TotalCount": true`` as one
    task in all, and the lister would stop paging on a claim ESA never made."""

    request_id: StrictStr | None = Field(default=None, alias="RequestId")
    total_count: StrictInt = Field(alias="TotalCount", ge=0)
    page_number: StrictInt | None = Field(default=None, alias="PageNumber")
    page_size: StrictInt | None = Field(default=None, alias="PageSize")
    tasks: list[DeliveryTask] = Field(default=[], alias="Tasks")


class TaskDetail(DeliveryTask):
    """``GetUserDeliveryTask``: the task fields we act on; sink and filter settings are ignored."""

    request_id: StrictStr | None = Field(default=None, alias="RequestId")


class StatusChange(_EsaModel):
    """The answer to an ``Update*DeliveryTaskStatus`` call, plus how many attempts it took."""

    request_id: StrictStr | None = Field(default=None, alias="RequestId")
    task_name: StrictStr = Field(alias="TaskName")
    status: StrictStr = Field(alias="Status")
    attempts: int = 1


def _masked(text: str | None) -> str | None:
    return None if text is None else logs.redact(text)


class EsaApiError(Exception):
    """A call that failed for good; ``retryable`` says whether the failure class is transient.

    Every text field is masked on the way in, so no later path (log, table, traceback) can show a
    secret that a server echoed.
    """

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
        throttled: bool = False,
        attempts: int = 1,
    ) -> None:
        self.action = action
        self.code = logs.redact(code)
        self.message = " ".join(logs.redact(message).split())
        self.request_id = _masked(request_id)
        self.http_status = http_status
        self.host_id = _masked(host_id)
        self.recommend = _masked(recommend)
        self.retryable = retryable
        self.throttled = throttled
        self.attempts = attempts
        super().__init__(action, self.code, self.message)

    def __str__(self) -> str:
        status = f" (HTTP {self.http_status})" if self.http_status is not None else ""
        request = f" [RequestId {self.request_id}]" if self.request_id else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.action} failed{tries}: {self.code}{status}: {self.message}{request}"


class DeadlineExceeded(EsaApiError):
    """The run's deadline stopped a call before (another) attempt; ``last_code`` is why it was retrying."""

    def __init__(self, action: str, attempts: int, last: EsaApiError | None = None) -> None:
        self.last_code = last.code if last is not None else None
        why = f"; last error {last.code}: {last.message}" if last is not None else ""
        super().__init__(
            action,
            "DeadlineExceeded",
            f"no attempt may start after the run's deadline{why}",
            request_id=last.request_id if last is not None else None,
            http_status=last.http_status if last is not None else None,
            attempts=attempts,
        )


def is_throttling(code: str, http_status: int | None) -> bool:
    """ESA's ``Throttling*`` codes (sent with HTTP 400), or a gateway's 429/503 with any body."""
    return code.startswith("Throttling") or http_status in THROTTLING_STATUSES


def _is_retryable(code: str, http_status: int) -> bool:
    """Transient by code first (ESA sends some of these with HTTP 400); any other 5xx or a 429 too."""
    return code.startswith(_RETRYABLE_PREFIXES) or code == NONCE_REUSED or http_status >= 500 or http_status == 429


def str_field(body: Mapping[str, Any], key: str) -> str | None:
    """A non-empty string field of a JSON object, else ``None``."""
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def read_response(
    action: str, response: httpx.Response, *, expect_json: bool = True
) -> tuple[dict[str, Any], EsaApiError | None]:
    """Decode a response into its JSON object, or into the error it carries.

    With ``expect_json=False`` any 2xx is a success (its body, if a JSON object, is still returned).
    """
    status = response.status_code
    try:
        decoded: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        decoded = None
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    if 200 <= status < 300:
        if not expect_json:
            return body, None
        if decoded is None:
            return body, malformed(action, "body is not JSON", body, status)
        if not isinstance(decoded, dict):
            return body, malformed(action, f"body is a JSON {type(decoded).__name__}, not an object", body, status)
        return body, None
    code = str_field(body, "Code")
    if code is None:
        snippet = " ".join(logs.redact(response.text).split())[:200]
        code, message = "HTTPError", snippet or response.reason_phrase or "empty body"
    else:
        message = str_field(body, "Message") or "no message"
    return body, EsaApiError(
        action,
        code,
        message,
        request_id=str_field(body, "RequestId"),
        http_status=status,
        host_id=str_field(body, "HostId"),
        recommend=str_field(body, "Recommend"),
        retryable=_is_retryable(code, status),
        throttled=is_throttling(code, status),
    )


def malformed(action: str, what: str, body: Mapping[str, Any], status: int = 200) -> EsaApiError:
    """A 2xx answer we cannot trust: never retried, the run fails closed on it."""
    return EsaApiError(
        action,
        "MalformedResponse",
        f"malformed {action} response: {what}",
        request_id=str_field(body, "RequestId"),
        http_status=status,
    )


def parse_body(action: str, model: type[_Model], body: dict[str, Any]) -> _Model:
    """Validate a 2xx body, turning every surprise into a one-line ``MalformedResponse``."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        code = str_field(body, "Code")
        if code is not None:
            what = f"HTTP 200 carried an error body: {code}: {str_field(body, 'Message') or 'no message'}"
        else:
            what = "; ".join(_describe(err) for err in exc.errors()[:3])
        raise malformed(action, what, body) from None


def _describe(err: Any) -> str:
    where = ".".join(str(part) for part in err["loc"])
    if err["type"] == "missing":
        return f"missing {where}"
    return f"{where}: {err['msg']}"
