"""Names of every environment variable the scheduler reads, in one place.

Explicit arguments beat these variables, which beat the defaults given here. The configuration
table of docs/operations.md and the template's environment block are checked against this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SCHEDULE = "ESA_SCHEDULE"
ENDPOINT = "ESA_ENDPOINT"
REGION = "ESA_REGION"
FC_REGION = "FC_REGION"
NETWORK = "ESA_NETWORK"
STS_ENDPOINT = "ESA_STS_ENDPOINT"
FC_ENDPOINT = "ESA_FC_ENDPOINT"
MAX_RPS = "ESA_MAX_RPS"
CONCURRENCY = "ESA_CONCURRENCY"
CONNECT_TIMEOUT = "ESA_CONNECT_TIMEOUT"
READ_TIMEOUT = "ESA_READ_TIMEOUT"
STATE_DIR = "ESA_STATE_DIR"
FAIL_ON_ERROR = "ESA_FAIL_ON_ERROR"
LOG_LEVEL = "ESA_LOG_LEVEL"
FANOUT = "ESA_FANOUT"
# Slots the template fills for ``notify:`` entries (``url_env``/``secret_env`` may name any variable).
NOTIFY_URL_1 = "ESA_NOTIFY_URL_1"
NOTIFY_SECRET_1 = "ESA_NOTIFY_SECRET_1"
NOTIFY_URL_2 = "ESA_NOTIFY_URL_2"
NOTIFY_SECRET_2 = "ESA_NOTIFY_SECRET_2"
# The incident intake (``handler.intake``). The template passes its secrets in these two; a schedule's
# ``intake.token_env`` and ``intake.dingtalk.app_secret_env`` name the variables actually read.
INTAKE_TOKEN = "ESA_INTAKE_TOKEN"
DINGTALK_APP_SECRET = "ESA_DINGTALK_APP_SECRET"
# The scheduler function the intake invokes asynchronously to reconcile; unset, it writes the holds
# but dispatches nothing. The qualifier is optional: unset, the function's LATEST.
SCHEDULER_FUNCTION = "ESA_SCHEDULER_FUNCTION"
SCHEDULER_QUALIFIER = "ESA_SCHEDULER_QUALIFIER"
ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
PROFILE = "ALIBABA_CLOUD_PROFILE"
CREDENTIALS_FILE = "ALIBABA_CLOUD_CREDENTIALS_FILE"

DEFAULT_SCHEDULE = "schedule"
DEFAULT_REGION = "cn-hangzhou"
DEFAULT_STS_ENDPOINT = "https://sts.aliyuncs.com"
DEFAULT_FC_ENDPOINT = "https://{account_id}.{region}.fc.aliyuncs.com"
"""FC 3.0's public endpoint, per account and region (``ESA_NETWORK=vpc``: ``{region}-internal``)."""
DEFAULT_STATE_DIR = ".esa-scheduler"
DEFAULT_MAX_RPS = 20.0
DEFAULT_CONCURRENCY = 16
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0


def env(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """Read a variable (from ``environ``, else the process), stripped; empty or blank counts as unset,
    because FC templates often pass empty strings."""
    value = (environ if environ is not None else os.environ).get(name, "").strip()
    return value or default
