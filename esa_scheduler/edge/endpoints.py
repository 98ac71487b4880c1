"""The endpoint of every API the scheduler calls (ESA, STS and FC), from the region, the network and
the overrides; each passes ``check_endpoint`` (``esa_scheduler/addresses.py``), so one rule decides
whether an AccessKey id, an STS token and signatures can cross a network in clear text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from esa_scheduler import config
from esa_scheduler.addresses import check_endpoint
from esa_scheduler.errors import ConfigError

_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ACCOUNT_ID = re.compile(r"[0-9]{1,32}")


def _region(env: Mapping[str, str], region: str | None) -> str:
    """``region`` if given, else ``ESA_REGION``, then FC's own ``FC_REGION``, then ``cn-hangzhou``."""
    if region is not None:
        name, value = "region", region
    else:
        name = config.REGION
        value = (
            config.env(config.REGION, environ=env) or config.env(config.FC_REGION, environ=env) or config.DEFAULT_REGION
        )
    if not _REGION.fullmatch(value):
        raise ConfigError(f"{name}={value!r} is not a region id like cn-hangzhou")
    return value


def _vpc(env: Mapping[str, str]) -> bool:
    network = (config.env(config.NETWORK, environ=env) or "public").lower()
    if network not in ("public", "vpc"):
        raise ConfigError(f"{config.NETWORK}={network!r} must be 'public' or 'vpc'")
    return network == "vpc"


def _override(env: Mapping[str, str], name: str) -> str | None:
    value = config.env(name, environ=env)
    return check_endpoint(value, name) if value else None


def resolve_endpoint(
    environ: Mapping[str, str] | None = None, *, region: str | None = None, explicit: str | None = None
) -> str:
    """The ESA endpoint: ``explicit`` (a target's ``endpoint:``), else ``ESA_ENDPOINT``, else the
    public (or ``ESA_NETWORK=vpc``) endpoint of ``region``.

    Without ``region`` it comes from ``ESA_REGION``, then FC's own ``FC_REGION`` so a deployed
    function talks to its local endpoint by default, then ``cn-hangzhou``.
    """
    env = os.environ if environ is None else environ
    if explicit:
        return check_endpoint(explicit)
    chosen = _override(env, config.ENDPOINT)
    if chosen:
        return chosen
    name = _region(env, region)
    return f"https://{'esa-vpc' if _vpc(env) else 'esa'}.{name}.aliyuncs.com"


def resolve_sts_endpoint(environ: Mapping[str, str] | None = None, *, region: str | None = None) -> str:
    """``ESA_STS_ENDPOINT``, else STS's public endpoint, or with ``ESA_NETWORK=vpc`` the region's VPC
    endpoint (``sts-vpc.<region>``: STS has no global VPC name, so the region matters only there)."""
    env = os.environ if environ is None else environ
    chosen = _override(env, config.STS_ENDPOINT)
    if chosen:
        return chosen
    if _vpc(env):
        return f"https://sts-vpc.{_region(env, region)}.aliyuncs.com"
    return config.DEFAULT_STS_ENDPOINT


def resolve_fc_endpoint(environ: Mapping[str, str] | None = None, *, account_id: str | None, region: str) -> str:
    """``ESA_FC_ENDPOINT``, else FC 3.0's endpoint for the account and region; with
    ``ESA_NETWORK=vpc`` the internal one (``<region>-internal``), which stays inside Alibaba Cloud.

    ``account_id`` is the function's own account, from FC's context (``None`` when it has none)."""
    env = os.environ if environ is None else environ
    chosen = _override(env, config.FC_ENDPOINT)
    if chosen:
        return chosen
    if account_id is None or not _ACCOUNT_ID.fullmatch(account_id):
        raise ConfigError(
            f"account_id={account_id!r} is not an Alibaba Cloud account id (digits only): FC's context must "
            f"carry the function's account for its FC endpoint, or set {config.FC_ENDPOINT}"
        )
    name = _region(env, region)
    host_region = f"{name}-internal" if _vpc(env) else name
    return config.DEFAULT_FC_ENDPOINT.format(account_id=account_id, region=host_region)
