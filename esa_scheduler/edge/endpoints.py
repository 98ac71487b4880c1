"""Where signed requests may go: HTTPS anywhere, plain HTTP only on loopback (the emulator's home).

Every API the scheduler calls (ESA, STS and FC) resolves its endpoint here, so one rule
decides whether an AccessKey id, an STS token and signatures can cross a network in clear text.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from esa_scheduler import config
from esa_scheduler.errors import ConfigError

_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ACCOUNT_ID = re.compile(r"[0-9]{1,32}")


def check_endpoint(url: str, variable: str | None = None) -> str:
    """Refuse endpoints that would expose signed requests; return ``scheme://host[:port]``.

    Plain ``http`` is only accepted on loopback, where the local emulator lives: anywhere else the
    AccessKey id, STS token and signatures would cross the network in clear text. ``variable`` is
    the environment variable the value came from, so the refusal names what to fix.
    """
    what = f"{variable}={url!r}" if variable else f"endpoint {url!r}"
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ConfigError(f"{what} must start with https:// (or http:// on loopback)")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{variable or 'endpoint'} must not carry a user name or password")
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise ConfigError(f"{what} has an invalid host or port") from None
    if not host:
        raise ConfigError(f"{what} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{what} must be scheme://host[:port] with no path or query")
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(f"{what} uses plain http on a non-loopback host; use https://")
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}" + (f":{port}" if port is not None else "")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: the only hosts plain HTTP and the emulator may use."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
