"""STS's ``AssumeRole``: temporary credentials that only the role's account accepts, until they expire."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from esa_scheduler.edge.signer import DATE_FORMAT
from esa_scheduler.emulator.esa_api import SCRIPTED_RETRY_AFTER_MS
from esa_scheduler.emulator.models import (
    ROLE_ARN,
    ApiError,
    EmulatedRole,
)
from esa_scheduler.emulator.params import DIGITS, request_params
from esa_scheduler.emulator.replies import Reply, ok_reply
from esa_scheduler.emulator.verify import HttpRequest, KeyPair, Verifier

_SESSION_NAME = re.compile(r"[A-Za-z0-9_.@-]{2,64}")
_DURATION_S = (900, 3600)
EXPIRED_BY = timedelta(hours=1)
"""How far in the past ``EmulatedRole.issue_expired`` answers put ``Expiration``."""


def assume_role(
    request: HttpRequest,
    caller: KeyPair,
    roles: Mapping[str, EmulatedRole],
    verifier: Verifier,
    clock: Callable[[], datetime],
    issued: dict[str, int],
) -> Reply:
    """Issue temporary credentials that only the role's account accepts, until they expire (``issued``
    counts the answers per role, for ``EmulatedRole.issue_expired``)."""
    params = request_params(request)
    arn = params.get("RoleArn", "")
    if not ROLE_ARN.fullmatch(arn):
        raise ApiError("InvalidParameter.RoleArn", f"The parameter RoleArn {arn!r} is wrongly formed.")
    session = params.get("RoleSessionName", "")
    if not _SESSION_NAME.fullmatch(session):
        raise ApiError("InvalidParameter.RoleSessionName")
    duration = params.get("DurationSeconds") or str(_DURATION_S[1])
    if not (DIGITS.fullmatch(duration) and _DURATION_S[0] <= int(duration) <= _DURATION_S[1]):
        raise ApiError("InvalidParameter.DurationSeconds")
    role = roles.get(arn)
    if role is None:
        raise ApiError("EntityNotExist.Role", f"The role not exists: {arn}.")
    if role.throttle:
        raise ApiError("Throttling.User", retry_after_ms=SCRIPTED_RETRY_AFTER_MS)
    if role.deny or (role.trusted_accounts is not None and caller.account not in role.trusted_accounts):
        raise ApiError("NoPermission", f"Account {caller.account} may not assume {arn}.")
    issued[arn] = issued.get(arn, 0) + 1
    lifetime = timedelta(seconds=int(duration)) if issued[arn] > role.issue_expired else -EXPIRED_BY
    expires = (clock() + lifetime).replace(microsecond=0)
    key_id = f"STS.{secrets.token_hex(14)}"
    secret, token = secrets.token_urlsafe(30), f"CAIS{secrets.token_urlsafe(120)}"
    verifier.add(key_id, KeyPair(secret, token, account=role.account, expires=expires))
    return ok_reply(
        {
            "AssumedRoleUser": {
                "Arn": f"acs:ram::{role.account}:assumed-role/{role.name}/{session}",
                "AssumedRoleId": f"{secrets.randbelow(10**17):017d}:{session}",
            },
            "Credentials": {
                "AccessKeyId": key_id,
                "AccessKeySecret": secret,
                "SecurityToken": token,
                "Expiration": expires.strftime(DATE_FORMAT),
            },
        }
    )
