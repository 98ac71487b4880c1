"""Alibaba Cloud credentials: the value type and the lookup chain.

The chain follows the official tools' order (minus the role-assuming providers, which would need
network calls of their own) so that a machine already set up for the ``aliyun`` CLI or the SDKs
works unchanged. The secret and the STS token are kept out of ``repr`` and out of every message
built here, so that no log line, traceback or error can carry them by accident.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

from esa_scheduler import config
from esa_scheduler.errors import ConfigError
from esa_scheduler.files import FileRefused, read_bounded

if TYPE_CHECKING:
    import configparser

_CLI_MODES = ("AK", "StsToken")
CREDENTIALS_FILE_BYTES = 1024 * 1024
"""The aliyun CLI's config.json and an INI file hold a few profiles: kilobytes."""


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, optionally with an STS security token; ``source`` says where it came from."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    source: str = "explicit"


class _CliProfile(BaseModel):
    """One entry of ``profiles`` in the aliyun CLI's ``config.json`` (only the fields we use)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    name: StrictStr
    mode: StrictStr = ""
    access_key_id: StrictStr = ""
    access_key_secret: StrictStr = ""
    sts_token: StrictStr = ""


class _CliConfig(BaseModel):
    """The aliyun CLI's ``~/.aliyun/config.json``."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    current: StrictStr = ""
    profiles: list[_CliProfile] = []


def _home(environ: Mapping[str, str], home: Path | None) -> Path:
    if home is not None:
        return home
    from_env = config.env("HOME", environ=environ)
    return Path(from_env) if from_env else Path.home()


def _shown(path: Path, home: Path) -> str:
    """Paths under the home directory are written with ``~`` to keep the one-line error short."""
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def _ini_path(environ: Mapping[str, str], home: Path) -> Path:
    explicit = config.env(config.CREDENTIALS_FILE, environ=environ)
    return Path(explicit) if explicit else home / ".alibabacloud" / "credentials.ini"


def _from_fc_context(fc_context: object | None) -> Credentials | None:
    """FC python3.10 runtimes hand the function role's STS keys over on ``context.credentials``."""
    creds = getattr(fc_context, "credentials", None)
    key_id = getattr(creds, "access_key_id", None)
    secret = getattr(creds, "access_key_secret", None)
    token = getattr(creds, "security_token", None)
    if not (isinstance(key_id, str) and key_id and isinstance(secret, str) and secret):
        return None
    return Credentials(key_id, secret, token if isinstance(token, str) and token else None, "fc-context")


def _from_env(environ: Mapping[str, str]) -> Credentials | None:
    key_id = config.env(config.ACCESS_KEY_ID, environ=environ)
    secret = config.env(config.ACCESS_KEY_SECRET, environ=environ)
    if key_id and secret:
        return Credentials(key_id, secret, config.env(config.SECURITY_TOKEN, environ=environ), "env")
    if key_id or secret:
        # Half a key pair is a typo, not an absence: falling through to a profile file could
        # silently act on a different account.
        present, missing = (
            (config.ACCESS_KEY_ID, config.ACCESS_KEY_SECRET)
            if key_id
            else (config.ACCESS_KEY_SECRET, config.ACCESS_KEY_ID)
        )
        raise ConfigError(f"{present} is set but {missing} is empty; set both or neither")
    return None


def _read_text(path: Path, shown: str) -> str:
    """A credentials file's text (line ends read as text mode reads them): a regular file within the
    limit, named as ``shown`` in any message (the path, never a value from inside)."""
    try:
        data = read_bounded(path, CREDENTIALS_FILE_BYTES, "credentials file")
    except FileRefused as exc:
        raise ConfigError(f"{shown}: {exc.problem}; {exc.fix}") from None
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def _load_cli_config(path: Path, shown: str) -> _CliConfig:
    try:
        data = json.loads(_read_text(path, shown))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {shown}: {exc.__class__.__name__}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{shown} is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    try:
        return _CliConfig.model_validate(data)
    except ValidationError as exc:
        # Built from locations and types only: pydantic's own text would echo the input values.
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise ConfigError(f"{shown} is malformed at {where}: {first['type']}") from None


def _from_cli(environ: Mapping[str, str], home: Path, tried: list[str]) -> Credentials | None:
    path = home / ".aliyun" / "config.json"
    shown = _shown(path, home)
    if not path.exists():
        tried.append(f"{shown}: not found")
        return None
    cli = _load_cli_config(path, shown)
    name = config.env(config.PROFILE, environ=environ) or cli.current or "default"
    label = f"{shown} profile {name!r}"
    profile = next((p for p in cli.profiles if p.name == name), None)
    if profile is None:
        tried.append(f"{label}: not found")
        return None
    if profile.mode not in _CLI_MODES:
        tried.append(f"{label}: mode {profile.mode!r} not supported (only {', '.join(_CLI_MODES)})")
        return None
    wanted = ["access_key_id", "access_key_secret"] + (["sts_token"] if profile.mode == "StsToken" else [])
    empty = [key for key in wanted if not getattr(profile, key)]
    if empty:
        tried.append(f"{label}: {', '.join(empty)} empty")
        return None
    token = profile.sts_token if profile.mode == "StsToken" else None
    return Credentials(profile.access_key_id, profile.access_key_secret, token, f"aliyun-cli:{name}")


def _read_ini(path: Path, shown: str) -> configparser.ConfigParser:
    import configparser  # only for credentials kept in an INI file: a function with a role does not pay for it

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(_read_text(path, shown), source=shown)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {shown}: {exc.__class__.__name__}") from None
    except configparser.Error as exc:
        # The first line of configparser's message names the problem without quoting values.
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{shown} is not a valid INI file: {reason}") from None
    return parser


def _from_ini(environ: Mapping[str, str], home: Path, tried: list[str]) -> Credentials | None:
    path = _ini_path(environ, home)
    shown = _shown(path, home)
    if not path.exists():
        tried.append(f"{shown}: not found")
        return None
    parser = _read_ini(path, shown)
    section = config.env(config.PROFILE, environ=environ) or "default"
    label = f"{shown} [{section}]"
    if not parser.has_section(section):
        tried.append(f"{label}: not found")
        return None
    # Like the official SDK, everything after a '#' is a comment, with or without a space before it.
    values = {k: v.split("#", 1)[0].strip() for k, v in parser.items(section)}
    kind = values.get("type", "")
    if kind != "access_key":
        tried.append(f"{label}: type {kind!r} not supported (only 'access_key')")
        return None
    key_id, secret = values.get("access_key_id", ""), values.get("access_key_secret", "")
    empty = [key for key, v in (("access_key_id", key_id), ("access_key_secret", secret)) if not v]
    if empty:
        tried.append(f"{label}: {', '.join(empty)} empty")
        return None
    return Credentials(key_id, secret, None, f"credentials-ini:{section}")


def resolve_credentials(
    explicit: Credentials | None = None,
    fc_context: object | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Credentials:
    """Return the first credentials found: explicit, FC context, environment, aliyun CLI, INI file.

    Raises ``ConfigError`` with one line listing every place tried when nothing is found, and
    naming the file when a credentials file cannot be parsed.
    """
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    base = _home(env, home)
    found = _from_fc_context(fc_context) or _from_env(env)
    if found is not None:
        return found
    tried = [
        "FC context" + (": no credentials" if fc_context is not None else ": none given"),
        f"environment {config.ACCESS_KEY_ID}/SECRET: not set",
    ]
    found = _from_cli(env, base, tried) or _from_ini(env, base, tried)
    if found is not None:
        return found
    raise ConfigError(f"no Alibaba Cloud credentials found (tried: {', '.join(tried)})")


def has_configured_credentials(environ: Mapping[str, str] | None = None, home: Path | None = None) -> bool:
    """Whether the operator has set credentials up at all, judged without parsing anything.

    Existence is the test on purpose: a present but broken profile must surface as the chain's
    error rather than quietly send the run to the local emulator instead of the real account.
    """
    env = os.environ if environ is None else environ
    if config.env(config.ACCESS_KEY_ID, environ=env) or config.env(config.ACCESS_KEY_SECRET, environ=env):
        return True
    base = _home(env, home)
    return (base / ".aliyun" / "config.json").exists() or _ini_path(env, base).exists()
