"""Helpers shared by several test modules.

Imported as ``from helpers import ...``: pytest's default (prepend) import mode puts ``tests/`` on
``sys.path`` because the folder has no ``__init__.py``, and mypy adds it to its search path for the
same reason.
"""

from __future__ import annotations

import json
import os
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from esa_scheduler.cli import main
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator

UTC = timezone.utc


# --------------------------------------------------------------------------- schedules and the CLI


def write_schedule(directory: Path, text: str, name: str = "ops.yaml") -> Path:
    """``text`` (dedented) as ``directory/name``; creates ``directory`` if needed."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``cli.main(args)`` in-process: exit code (argparse's ``SystemExit`` included), stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- instants


def parse_instant(text: str) -> datetime:
    """A ``...Z`` instant as printed by the CLI -> aware UTC datetime (anything else fails the test)."""
    assert text.endswith("Z"), f"instants must be UTC with Z: {text!r}"
    return datetime.fromisoformat(text[:-1] + "+00:00").astimezone(UTC)


def utc(text: str) -> datetime:
    """``2027-03-28T01:00`` -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(instant: datetime) -> str:
    """An aware datetime -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- environment and emulator


def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited ALIBABA_CLOUD_*/ESA_*/FC_* settings, HOME without credential files, cwd in tmp_path."""
    for name in list(os.environ):
        if name.startswith(("ALIBABA_CLOUD_", "ESA_", "FC_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def endpoint_env(
    url: str, key_id: str = EMULATOR_ACCESS_KEY_ID, secret: str = EMULATOR_ACCESS_KEY_SECRET
) -> dict[str, str]:
    """ESA_ENDPOINT, an AccessKey pair (the emulator's by default) and no client-side pacing."""
    return {
        "ESA_ENDPOINT": url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
        "ESA_MAX_RPS": "0",
    }


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def fc_context(request_id: str = "fc-req-0001", timeout: float = 60, credentials: Any = None) -> Any:
    """What FC passes as ``context`` (``credentials`` only on python3.10 runtimes)."""
    context = SimpleNamespace(
        request_id=request_id,
        function=SimpleNamespace(name="esa-scheduler", handler="handler.handler", memory=256, timeout=timeout),
        region="cn-hangzhou",
    )
    if credentials is not None:
        context.credentials = credentials
    return context


def parse_lines(text: str) -> list[dict[str, Any]]:
    """JSON log lines: every non-empty line must be one JSON object."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        value = json.loads(raw)
        assert isinstance(value, dict), raw
        lines.append(value)
    return lines


def updates(emulator: Emulator) -> int:
    """How many status updates (account and site) the emulator has served."""
    by_action = emulator.stats["by_action"]
    return int(by_action.get("UpdateUserDeliveryTaskStatus", 0) + by_action.get("UpdateSiteDeliveryTaskStatus", 0))


def official_sdk_config(monkeypatch: pytest.MonkeyPatch, url: str) -> Any:
    """An official SDK ``Config`` for the emulator at ``url`` with its own key pair, and no proxy in the
    way (the SDK's HTTP layer honours the proxy variables even for loopback)."""
    from alibabacloud_tea_openapi import models as open_api_models

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return open_api_models.Config(
        access_key_id=EMULATOR_ACCESS_KEY_ID,
        access_key_secret=EMULATOR_ACCESS_KEY_SECRET,
        endpoint=url.removeprefix("http://"),
        protocol="http",
    )
