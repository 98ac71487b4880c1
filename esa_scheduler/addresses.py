"""Where signed requests may go: HTTPS anywhere, plain HTTP only on loopback (the emulator's home).

A pure check on a URL, with no layer below it: the edge resolves every endpoint through it, the
schedule checks a target's ``endpoint:`` with it, the emulator and the notifier ask it which hosts
are loopback, and the local servers (the emulator, ``serve``) which addresses they may bind. One
rule decides whether an AccessKey id, an STS token and signatures can cross a network in clear text.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from esa_scheduler.errors import ConfigError


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


def loopback_bind_address(host: str, what: str) -> str:
    """The address to bind for ``host``, refusing anything that is not loopback (``what`` names the
    server in the refusal). ``localhost`` is pinned to 127.0.0.1 rather than resolved, so a hosts
    file cannot widen the bind."""
    if host == "localhost":
        return "127.0.0.1"
    if is_loopback(host):
        return host
    raise ConfigError(f"{what} {host!r} is not loopback: use 127.0.0.1 (127.0.0.0/8), ::1 or localhost")
