"""Where signed requests may go: HTTPS anywhere, plain HTTP only on loopback (the emulator's home).

Every API the scheduler calls (ESA, and later STS and FC) resolves its endpoint here, so one rule
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


def check_endpoint(url: str) -> str:
    """Refuse endpoints that would expose signed requests; return ``scheme://host[:port]``.

    Plain ``http`` is only accepted on loopback, where the local emulator lives: anywhere else the
    AccessKey id, STS token and signatures would cross the network in clear text.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ConfigError(f"endpoint {url!r} must start with https:// (or http:// on loopback)")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("endpoint must not carry a user name or password")
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise ConfigError(f"endpoint {url!r} has an invalid host or port") from None
    if not host:
        raise ConfigError(f"endpoint {url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"endpoint {url!r} must be scheme://host[:port] with no path or query")
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(f"endpoint {url!r} uses plain http on a non-loopback host; use https://")
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


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """``ESA_ENDPOINT`` if set, else the public (or ``ESA_NETWORK=vpc``) endpoint of the region.

    The region comes from ``ESA_REGION``, then FC's own ``FC_REGION`` so a deployed function talks
    to its local endpoint by default, then ``cn-hangzhou``.
    """
    env = os.environ if environ is None else environ
    explicit = config.env(config.ENDPOINT, environ=env)
    if explicit:
        return check_endpoint(explicit)
    region = (
        config.env(config.REGION, environ=env) or config.env(config.FC_REGION, environ=env) or config.DEFAULT_REGION
    )
    if not _REGION.fullmatch(region):
        raise ConfigError(f"{config.REGION}={region!r} is not a region id like cn-hangzhou")
    network = (config.env(config.NETWORK, environ=env) or "public").lower()
    if network not in ("public", "vpc"):
        raise ConfigError(f"{config.NETWORK}={network!r} must be 'public' or 'vpc'")
    prefix = "esa-vpc" if network == "vpc" else "esa"
    return f"https://{prefix}.{region}.aliyuncs.com"


# SET
