"""A request's parameters as the gateway reads them: query string and form body, numbers checked."""

from __future__ import annotations

import math
import re
from typing import Any

from esa_scheduler.edge.signer import parse_query
from esa_scheduler.emulator.models import (
    ApiError,
)
from esa_scheduler.emulator.verify import HttpRequest

DIGITS = re.compile(r"[0-9]{1,18}")

Params = dict[str, str]
Payload = dict[str, Any]


def request_params(request: HttpRequest) -> Params:
    """Query string and, for a form body, its fields: the SDK sends parameters either way."""
    pairs = parse_query(request.query)
    content_type = request.headers.get("content-type", "").lower()
    if request.body and content_type.startswith("application/x-www-form-urlencoded"):
        try:
            pairs += parse_query(request.body.decode())
        except UnicodeDecodeError:
            raise ApiError("InvalidParameter", "The form body is not UTF-8.") from None
    return dict(pairs)


def int_param(params: Params, name: str, default: int, upper: int | None = None) -> int:
    """A positive integer parameter, or ESA's ``InvalidParameter`` naming it (``default`` when absent)."""
    text = params.get(name)
    if text is None or text == "":
        return default
    if not DIGITS.fullmatch(text) or not 1 <= int(text) <= (upper or math.inf):
        bound = f"1 to {upper}" if upper else "a positive integer"
        raise ApiError("InvalidParameter", f"{name} must be {bound}, got {text!r}.")
    return int(text)


def site_of(params: Params) -> int:
    """The ``SiteId`` a site-level action needs."""
    if not params.get("SiteId"):
        raise ApiError("InvalidParameter", "SiteId is required for site-level delivery tasks.")
    return int_param(params, "SiteId", 0)
