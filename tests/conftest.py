"""Shared fixtures: a running ESA emulator on loopback, and a secret scan over every test."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from esa_scheduler import logs
from esa_scheduler.edge.client import EsaApiError
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EmulatedTask, Emulator
from esa_scheduler.errors import UserError
from esa_scheduler.invocation.function import RunFailed

SEED_TASKS = (
    EmulatedTask(TaskName="access-cn", Status="online"),
    EmulatedTask(TaskName="waf-sg", Status="offline", BusinessType="dcdn_log_waf", DataCenter="sg"),
    EmulatedTask(TaskName="er-http", Status="online", BusinessType="dcdn_log_er", DeliveryType="http"),
    EmulatedTask(TaskName="site-access", Status="online", SiteId=1001),
    EmulatedTask(TaskName="site-waf", Status="offline", BusinessType="dcdn_log_waf", SiteId=1001),
)
"""Three account-level tasks and two on site 1001; the default emulator AccessKey pair signs for them."""


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A started emulator seeded with ``SEED_TASKS``, no faults, stopped after the test."""
    with Emulator(tasks=SEED_TASKS) as running:
        yield running


# --- no secret or token in anything the suite produces (issue 7, section 5) ---------------------

SECRET_MIN_LENGTH = 8
"""Shorter test values ("s", "x") would match everywhere; real secrets are much longer."""
SECRET_ENV = (
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ESA_INTAKE_TOKEN",
    "ESA_DINGTALK_APP_SECRET",
)
_test_secrets: set[str] = set()
_test_output: list[tuple[str, str]] = []


def _remembering(init: Callable[..., None]) -> Callable[..., None]:
    def wrapper(self: BaseException, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _test_output.append((f"{type(self).__name__} message", str(self)))

    return wrapper


@pytest.fixture(autouse=True)
def _scan_for_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Note every secret the code under test is given and everything it writes or raises.

    Secrets: every ``Credentials`` built, the logger's registered secrets, and the secret
    environment variables as the test ends. Output: what the test reads through capsys/capfd,
    every JSON log line (after masking), the text of every ``UserError``, ``EsaApiError`` and
    ``RunFailed``, plus the captured output pytest keeps. ``pytest_runtest_makereport`` below
    fails a passing test whose output carries any of them.
    """
    _test_secrets.clear()
    _test_output.clear()
    credentials_init = Credentials.__init__
    readouterr = pytest.CaptureFixture.readouterr
    redact = logs.redact

    def remember_credentials(self: Credentials, *args: Any, **kwargs: Any) -> None:
        credentials_init(self, *args, **kwargs)
        _test_secrets.update(value for value in (self.access_key_secret, self.security_token) if value)

    def remember_read(self: pytest.CaptureFixture[Any]) -> Any:
        result = readouterr(self)
        _test_output.extend(("read through capsys/capfd", str(part)) for part in result)
        return result

    def remember_log_line(text: str) -> str:
        line = redact(text)
        _test_output.append(("log line", line))
        return line

    monkeypatch.setattr(Credentials, "__init__", remember_credentials)
    monkeypatch.setattr(pytest.CaptureFixture, "readouterr", remember_read)
    monkeypatch.setattr(logs, "redact", remember_log_line)
    for error_type in (UserError, EsaApiError, RunFailed):
        monkeypatch.setattr(error_type, "__init__", _remembering(error_type.__init__))
    yield


@pytest.fixture
def scanned() -> Callable[[str, str], None]:
    """Hand the scan output it cannot see otherwise (a child process's): ``scanned(where, text)``."""
    return lambda where, text: _test_output.append((where, text))


def _known_test_secrets() -> set[str]:
    """The intake's test token and app secret: secrets even when a test passes them only to a child."""
    from intake_support import APP_SECRET, TOKEN

    return {TOKEN, APP_SECRET}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when != "call" or not report.passed:
        return report
    secrets = (
        _test_secrets | logs._secrets.values | {os.environ.get(name, "") for name in SECRET_ENV} | _known_test_secrets()
    )
    secrets = {secret for secret in secrets if len(secret) >= SECRET_MIN_LENGTH}
    texts = [*_test_output, *report.sections]
    leaks = sorted(
        {
            f"{where}: a secret ending in ...{secret[-4:]}"
            for where, text in texts
            for secret in secrets
            if secret in text
        }
    )
    if leaks:
        report.outcome = "failed"
        report.longrepr = "a secret or token appears in what this test produced:\n" + "\n".join(leaks)
    return report
