"""Security checks: secrets never surface, plain http stays on loopback, the emulator binds loopback.

(a) Representative flows run with distinctive, per-test AccessKey secrets and STS tokens: a good
    run, a failing run, a rejected event, credential-chain failures, signature failures (with and
    without a token), ``invoke`` with a context file carrying STS credentials, and notification
    targets whose URL token and signing secret are the per-test token and secret. Everything they
    produce is collected (stdout, stderr, JSON log lines, return values, exception messages, reprs
    and formatted tracebacks, hold files) and must contain neither the secret nor the token.
    The secrets are fresh per test, so the logger's process-wide mask list (filled by earlier
    tests) cannot hide a flow that forgot to register them.
(b) ``http://`` endpoints are refused for non-loopback hosts, by ``check_endpoint`` and by ``run``
    and ``invoke`` (exit 2, no connection attempted).
(c) The emulator binds loopback only (cases not already in tests/test_emulator.py), and a started
    emulator really listens on a loopback address only.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import Received, Receiver, clean_environment, endpoint_env, fc_context, set_env

from esa_scheduler import cli
from esa_scheduler.edge.client import check_endpoint
from esa_scheduler.edge.credentials import Credentials, resolve_credentials
from esa_scheduler.edge.transport import KeepAliveTransport
from esa_scheduler.emulator import Emulator
from esa_scheduler.errors import ConfigError, UserError
from esa_scheduler.fc_context import load_context
from esa_scheduler.invocation.function import RunFailed, Target, execute, handle
from esa_scheduler.logs import MASK, forget_secret, redact, register_secret

SCHEDULE = """\
version: 1
timezone: UTC
default_status: online
tasks:
  - name: access-a
  - name: access-b
  - name: site-x
    site_id: 1001
"""
SEED: list[dict[str, Any]] = [
    {"TaskName": "access-a", "Status": "offline"},
    {"TaskName": "access-b", "Status": "offline"},
    {"TaskName": "site-x", "Status": "offline", "SiteId": 1001},
]
"""Everything is offline and the schedule says online: every run has changes to make."""

HOLD = {"action": "hold", "tasks": ["access-a"], "reason": "INC-sec", "ttl": "1h"}


@dataclass(frozen=True)
class Keys:
    """A distinctive STS triple (and a permanent AccessKey pair) unique to one test."""

    sts_id: str
    secret: str
    token: str
    ak_id: str
    ak_secret: str

    @property
    def hidden(self) -> tuple[str, ...]:
        return (self.secret, self.token, self.ak_secret)


@pytest.fixture
def keys() -> Keys:
    tag = uuid.uuid4().hex
    return Keys(
        sts_id=f"STS.id-{tag[:8]}",
        secret=f"sts-secret-{tag}-never-print",
        token=f"CAIS-sts-token-{tag}-never-print",
        ak_id=f"LTAI-ak-{tag[:8]}",
        ak_secret=f"ak-secret-{tag}-never-print",
    )


@dataclass
class Seen:
    """Everything a flow produced, labelled, to be scanned for secrets at the end."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def text(self, label: str, value: str) -> None:
        self.items.append((label, value))

    def error(self, label: str, exc: BaseException) -> None:
        self.text(f"{label}: str", str(exc))
        self.text(f"{label}: repr", repr(exc))
        self.text(f"{label}: args", repr(exc.args))
        self.text(f"{label}: traceback", "".join(traceback.format_exception(exc)))
        for name in ("summary", "problems"):
            if hasattr(exc, name):
                self.text(f"{label}: .{name}", repr(getattr(exc, name)))

    def files(self, label: str, folder: Path) -> None:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    self.text(f"{label}: {path.name}", path.read_text(errors="replace"))

    def assert_clean(self, keys: Keys) -> None:
        assert self.items, "nothing was captured"
        leaks = []
        for label, value in self.items:
            for name, hidden in (("secret", keys.secret), ("token", keys.token), ("AccessKey secret", keys.ak_secret)):
                at = value.find(hidden)
                if at >= 0:
                    leaks.append(f"{label} carries the {name}: ...{value[max(0, at - 120) : at + 40]!r}...")
        assert leaks == [], "\n".join(leaks)


@dataclass
class Lab:
    """A clean environment, a schedule file, a state folder, and an in-process CLI."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    seen: Seen = field(default_factory=Seen)

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    @property
    def schedule(self) -> Path:
        return self.tmp / "schedule.yaml"

    def env(self, **values: str) -> None:
        set_env(self.monkeypatch, values)

    def point_at(self, url: str, key_id: str, secret: str, token: str | None = None) -> None:
        self.env(**endpoint_env(url, key_id, secret), ESA_SCHEDULE=str(self.schedule), ESA_STATE_DIR=str(self.state))
        if token is None:
            self.monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
        else:
            self.env(ALIBABA_CLOUD_SECURITY_TOKEN=token)

    def write(self, name: str, content: str) -> Path:
        path = self.tmp / name
        path.write_text(content, encoding="utf-8")
        return path

    def cli(self, label: str, *argv: str) -> int:
        self.capsys.readouterr()
        try:
            code = cli.main(list(argv))
        except BaseException as exc:  # a crash is a finding too, but first: does it leak?
            self.seen.error(f"{label} raised", exc)
            raise
        finally:
            captured = self.capsys.readouterr()
            self.seen.text(f"{label} stdout", captured.out)
            self.seen.text(f"{label} stderr", captured.err)
        return code

    def handler(self, label: str, body: bytes, context: Any = None) -> BaseException | None:
        """``handle`` as FC calls it; returns what it raised (after recording it), if anything."""
        self.capsys.readouterr()
        raised: BaseException | None = None
        try:
            result = handle(body, context)
        except Exception as exc:
            raised = exc
            self.seen.error(f"{label} raised", exc)
        else:
            self.seen.text(f"{label} returned", json.dumps(result))
        captured = self.capsys.readouterr()
        self.seen.text(f"{label} stdout", captured.out)
        self.seen.text(f"{label} stderr", captured.err)
        return raised


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Lab]:
    clean_environment(monkeypatch, tmp_path)
    (tmp_path / "schedule.yaml").write_text(SCHEDULE, encoding="utf-8")
    yield Lab(tmp_path, monkeypatch, capsys)


def sts_emulator(keys: Keys, *, secret: str | None = None) -> Emulator:
    """An emulator that knows the STS id (with ``secret``, by default the right one) and the AK pair."""
    return Emulator(
        tasks=SEED,
        access_key_id=keys.ak_id,
        access_key_secret=keys.ak_secret,
        sts_credentials=[(keys.sts_id, secret or keys.secret, keys.token)],
    )


# --- (a) secrets never surface ----------------------------------------------------------------------


def test_good_run_with_sts_credentials(lab: Lab, keys: Keys) -> None:
    with sts_emulator(keys) as emulator:
        lab.point_at(emulator.url, keys.sts_id, keys.secret, keys.token)
        assert lab.cli("run --json", "run", "--json", "--state-dir", str(lab.state)) == 0
        emulator.set_status("access-a", "offline")
        assert lab.cli("run (table)", "run", "--state-dir", str(lab.state)) == 0
        assert lab.cli("invoke hold", "invoke", str(lab.write("hold.json", json.dumps(HOLD)))) == 0
        timer = b'{"triggerTime": "2026-11-28T12:00:00Z"}'
        assert lab.handler("handler timer", timer, fc_context("fc-req-security")) is None
        assert emulator.stats["by_outcome"].get("ok", 0) > 0
    lab.seen.files("state", lab.state)
    lab.seen.assert_clean(keys)


def test_failing_run_with_sts_credentials(lab: Lab, keys: Keys) -> None:
    with sts_emulator(keys) as emulator:
        lab.point_at(emulator.url, keys.sts_id, keys.secret, keys.token)
        emulator.script_fault("access-a", "InvalidParameter", count=10)
        emulator.script_fault("access-b", "Forbidden.RAM", count=10)
        assert lab.cli("run --json", "run", "--json", "--state-dir", str(lab.state)) == 1
        assert (
            lab.cli("invoke timer", "invoke", str(lab.write("t.json", '{"triggerTime": "2026-11-28T12:00:00Z"}'))) == 1
        )
        raised = lab.handler("handler", b'{"action": "reconcile"}', fc_context("fc-req-security"))
        assert isinstance(raised, RunFailed)
    lab.seen.assert_clean(keys)


def test_rejected_event_with_sts_credentials(lab: Lab, keys: Keys) -> None:
    with sts_emulator(keys) as emulator:
        lab.point_at(emulator.url, keys.sts_id, keys.secret, keys.token)
        bad = json.dumps({"action": "hold", "tasks": ["access-a"], "reason": keys.sts_id})
        assert lab.cli("invoke", "invoke", str(lab.write("bad.json", bad))) == 2
        raised = lab.handler("handler", bad.encode(), fc_context("fc-req-security"))
        assert isinstance(raised, UserError)
        assert emulator.stats["total"] == 0
    lab.seen.assert_clean(keys)


def _cli_config(keys: Keys, **profile: Any) -> str:
    entry = {
        "name": "default",
        "mode": "StsToken",
        "access_key_id": keys.sts_id,
        "access_key_secret": keys.secret,
        "sts_token": keys.token,
        **profile,
    }
    return json.dumps({"current": "default", "profiles": [entry]})


@pytest.mark.parametrize(
    "case",
    [
        "secret-without-id",
        "token-and-secret-without-id",
        "cli-config-wrong-type",
        "cli-config-not-json",
        "ini-broken-line",
        "ini-wrong-type",
    ],
)
def test_credential_chain_failures(lab: Lab, keys: Keys, case: str) -> None:
    home = Path(os.environ["HOME"])
    with sts_emulator(keys) as emulator:
        lab.env(ESA_ENDPOINT=emulator.url, ESA_SCHEDULE=str(lab.schedule), ESA_STATE_DIR=str(lab.state))
        if case == "secret-without-id":
            lab.env(ALIBABA_CLOUD_ACCESS_KEY_SECRET=keys.secret)
        elif case == "token-and-secret-without-id":
            lab.env(ALIBABA_CLOUD_ACCESS_KEY_SECRET=keys.secret, ALIBABA_CLOUD_SECURITY_TOKEN=keys.token)
        elif case.startswith("cli-config"):
            (home / ".aliyun").mkdir()
            text = _cli_config(keys, access_key_id=12345)
            if case == "cli-config-not-json":
                text = text.replace(keys.token + '"', keys.token)  # an unterminated string right after the token
            (home / ".aliyun" / "config.json").write_text(text, encoding="utf-8")
        else:
            (home / ".alibabacloud").mkdir()
            line = (
                f"access_key_secret {keys.secret}"
                if case == "ini-broken-line"
                else f"access_key_secret = {keys.secret}"
            )
            kind = "sts" if case == "ini-wrong-type" else "access_key"
            ini = f"[default]\ntype = {kind}\naccess_key_id = {keys.sts_id}\n{line}\n"
            (home / ".alibabacloud" / "credentials.ini").write_text(ini, encoding="utf-8")
        assert lab.cli("run", "run", "--state-dir", str(lab.state)) == 2
        assert lab.cli("invoke", "invoke", str(lab.write("hold.json", json.dumps(HOLD)))) == 2
        raised = lab.handler("handler", b'{"action": "reconcile"}', fc_context("fc-req-security"))
        assert isinstance(raised, ConfigError)
        try:
            resolve_credentials()
        except ConfigError as exc:
            lab.seen.error("resolve_credentials", exc)
        assert emulator.stats["total"] == 0
    lab.seen.assert_clean(keys)


def test_signature_failure_with_an_access_key_pair(lab: Lab, keys: Keys) -> None:
    with sts_emulator(keys) as emulator:
        lab.point_at(emulator.url, keys.ak_id, keys.ak_secret + "-but-wrong")
        assert lab.cli("run --json", "run", "--json", "--state-dir", str(lab.state)) == 1
        assert lab.cli("run (table)", "run", "--state-dir", str(lab.state)) == 1
        raised = lab.handler("handler", b'{"action": "reconcile"}', fc_context("fc-req-security"))
        assert isinstance(raised, RunFailed) and "SignatureDoesNotMatch" in str(raised)
    lab.seen.assert_clean(keys)
    # The wrong secret is a secret too.
    for label, value in lab.seen.items:
        assert keys.ak_secret + "-but-wrong" not in value, label


def test_signature_failure_with_an_sts_token(lab: Lab, keys: Keys) -> None:
    """The emulator knows the STS id with another secret, so it refuses the signature and, like the
    gateway, explains what it computed: the token is a signed header, so it is in that explanation."""
    with sts_emulator(keys, secret="the-emulator-knows-another-secret") as emulator:
        lab.point_at(emulator.url, keys.sts_id, keys.secret, keys.token)
        assert lab.cli("run --json", "run", "--json", "--state-dir", str(lab.state)) == 1
        assert lab.cli("run (table)", "run", "--state-dir", str(lab.state)) == 1
        assert lab.cli("invoke", "invoke", str(lab.write("hold.json", json.dumps(HOLD)))) == 1
        raised = lab.handler("handler", b'{"action": "reconcile"}', fc_context("fc-req-security"))
        assert isinstance(raised, RunFailed) and "SignatureDoesNotMatch" in str(raised)
        assert emulator.stats["by_outcome"] == {"SignatureDoesNotMatch": emulator.stats["total"]}
    lab.seen.files("state", lab.state)
    lab.seen.assert_clean(keys)


def test_execute_with_explicit_sts_credentials(lab: Lab, keys: Keys) -> None:
    """``execute`` with a Target, logs to a stream of our own, wrong secret: stream, summary, reprs."""
    with sts_emulator(keys, secret="the-emulator-knows-another-secret") as emulator:
        stream = io.StringIO()
        credentials = Credentials(keys.sts_id, keys.secret, keys.token)
        summary = execute(
            {"action": "reconcile"},
            target=Target(emulator.url, credentials),
            schedule_path=str(lab.schedule),
            state=str(lab.state),
            stream=stream,
            environ={"ESA_MAX_RPS": "0"},
        )
        lab.seen.text("target repr", repr(Target(emulator.url, credentials)))
    lab.seen.text("log stream", stream.getvalue())
    lab.seen.text("summary.to_json", json.dumps(summary.to_json()))
    lab.seen.text("summary repr", repr(summary))
    lab.seen.text("credentials repr", repr(credentials))
    lab.seen.error("RunFailed", RunFailed(summary))
    lab.seen.assert_clean(keys)


def test_notification_url_tokens_and_secrets_never_surface(lab: Lab, keys: Keys) -> None:
    """Robot URLs carry the token (``keys.token`` here) and targets sign with ``keys.secret``. One
    robot echoes its whole request URL back in its error message, one webhook is accepted, one URL is
    plain http off loopback and one variable is missing: runs, the handler and ``notify test`` must
    never show the token or the secret, whatever path the message takes."""

    def echoing(request: Received) -> tuple[int, Any]:
        return 200, {"errcode": 310000, "errmsg": f"sign not match for {request.path}?{request.query}"}

    with sts_emulator(keys) as emulator, Receiver(echoing) as robot, Receiver(lambda _: (202, {})) as hook:
        lab.point_at(emulator.url, keys.ak_id, keys.ak_secret)
        lab.env(
            ROBOT_URL=f"{robot.base}/robot/send?access_token={keys.token}",
            HOOK_URL=f"{hook.base}/hooks/{keys.token}",
            PLAIN_URL=f"http://192.0.2.7/cgi-bin/webhook/send?key={keys.token}",
            SIGNING_SECRET=keys.secret,
        )
        targets = [
            "  - {name: robot, kind: dingtalk, url_env: ROBOT_URL, secret_env: SIGNING_SECRET}",
            "  - {name: hook, kind: webhook, url_env: HOOK_URL, secret_env: SIGNING_SECRET}",
            "  - {name: plain, kind: wecom, url_env: PLAIN_URL}",
            "  - {name: unset, kind: feishu, url_env: UNSET_URL, secret_env: SIGNING_SECRET}",
        ]
        lab.schedule.write_text(SCHEDULE + "notify:\n" + "\n".join(targets) + "\n", encoding="utf-8")
        assert lab.cli("run --json", "run", "--json", "--state-dir", str(lab.state)) == 0
        emulator.set_status("access-a", "offline")
        assert lab.handler("handler timer", b'{"triggerTime": "2026-11-28T12:00:00Z"}', fc_context()) is None
        codes = {
            name: lab.cli(f"notify test {name}", "notify", "test", name) for name in ("robot", "hook", "plain", "unset")
        }
        assert codes == {"robot": 1, "hook": 0, "plain": 1, "unset": 1}
        assert len(robot.received) == 3 and len(hook.received) == 3
        assert {r.query["access_token"] for r in robot.received} == {keys.token}, "the token was really used"
    echoed = [value for _, value in lab.seen.items if "sign not match for /robot/send?" in value]
    assert echoed and all(MASK in value for value in echoed), "the robot's echo reached the output, masked"
    lab.seen.files("state", lab.state)
    lab.seen.assert_clean(keys)


@pytest.mark.parametrize("emulator_secret", [None, "the-emulator-knows-another-secret"], ids=["good", "bad-signature"])
def test_invoke_with_sts_credentials_in_the_context_file(lab: Lab, keys: Keys, emulator_secret: str | None) -> None:
    with sts_emulator(keys, secret=emulator_secret) as emulator:
        # The environment holds a different (AK) pair: the context's STS credentials come first.
        lab.point_at(emulator.url, keys.ak_id, keys.ak_secret)
        document = {
            "request_id": "fc-req-ctx",
            "function": {"name": "esa-scheduler", "timeout": 60},
            "region": "cn-hangzhou",
            "credentials": {
                "access_key_id": keys.sts_id,
                "access_key_secret": keys.secret,
                "security_token": keys.token,
            },
        }
        context_file = lab.write("context.json", json.dumps(document))
        hold = lab.write("hold.json", json.dumps(HOLD))
        code = lab.cli("invoke --context", "invoke", str(hold), "--context", str(context_file))
        assert code == (0 if emulator_secret is None else 1)
        context = load_context(str(context_file))
        lab.seen.text("context repr", repr(context))
        lab.seen.text("context str", str(context))
        lab.seen.text("context credentials repr", repr(context.credentials))
        raised = lab.handler("handler with context", b'{"action": "reconcile"}', context)
        assert (raised is None) == (emulator_secret is None)
    lab.seen.files("state", lab.state)
    lab.seen.assert_clean(keys)


def test_a_malformed_context_file_does_not_echo_its_credentials(lab: Lab, keys: Keys) -> None:
    with sts_emulator(keys) as emulator:
        lab.point_at(emulator.url, keys.ak_id, keys.ak_secret)
        hold = lab.write("hold.json", json.dumps(HOLD))
        bad_values = {
            "secret-wrong-type": {
                "access_key_id": keys.sts_id,
                "access_key_secret": [keys.secret],
                "security_token": keys.token,
            },
            "token-wrong-type": {
                "access_key_id": keys.sts_id,
                "access_key_secret": keys.secret,
                "security_token": {"t": keys.token},
            },
            "extra-field": {"access_key_id": keys.sts_id, "access_key_secret": keys.secret, "sts": keys.token},
        }
        for name, credentials in bad_values.items():
            context_file = lab.write(f"{name}.json", json.dumps({"credentials": credentials}))
            assert lab.cli(name, "invoke", str(hold), "--context", str(context_file)) == 2
        assert emulator.stats["total"] == 0
    lab.seen.assert_clean(keys)


# --- (b) plain http only on loopback -----------------------------------------------------------------

REMOTE_HTTP = [
    "http://10.0.0.1",
    "http://example.com",
    "http://127.0.0.1.nip.io",
    "http://0.0.0.0:8080",
    "http://[::]:8080",
    "http://[::ffff:10.0.0.1]:8080",
    "http://169.254.169.254",
    "http://2130706433",
    "http://0x7f000001",
    "http://localhost.:8080",
    "http://127.0.0.1@example.com",
    "http://example.com#@127.0.0.1",
    "HTTP://EXAMPLE.COM",
]
"""Remote hosts, and spellings that try to look like loopback (none already in tests/test_client.py)."""


@pytest.mark.parametrize("url", REMOTE_HTTP)
def test_check_endpoint_refuses_plain_http_off_loopback(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_endpoint(url)
    message = str(caught.value)
    assert "\n" not in message
    assert "https" in message or "user name" in message or "path" in message


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    """Record (and refuse) every connection the client's transport would open."""
    attempts: list[tuple[str, str, int]] = []

    async def refuse(self: KeepAliveTransport, origin: tuple[str, str, int]) -> Any:
        attempts.append(origin)
        raise httpx.ConnectError("connections are not allowed in this test")

    monkeypatch.setattr(KeepAliveTransport, "_connect", refuse)
    return attempts


@pytest.mark.parametrize("url", ["http://10.0.0.1", "http://example.com", "http://127.0.0.1.nip.io", "http://[::]:80"])
def test_run_refuses_plain_http_off_loopback(lab: Lab, keys: Keys, url: str, no_connections: list[Any]) -> None:
    lab.point_at(url, keys.sts_id, keys.secret, keys.token)
    assert lab.cli("run", "run", "--state-dir", str(lab.state)) == 2
    assert lab.cli("invoke", "invoke", str(lab.write("hold.json", json.dumps(HOLD)))) == 2
    err = "".join(value for label, value in lab.seen.items if label.endswith("stderr"))
    assert f"ESA_ENDPOINT={url!r} uses plain http on a non-loopback host" in err
    assert no_connections == []
    assert not lab.state.exists()
    lab.seen.assert_clean(keys)


@pytest.mark.parametrize("region", ["attacker.example.com", "cn-hangzhou.evil.com#", "../../x", "CN HANGZHOU"])
def test_a_context_region_cannot_steer_the_endpoint(
    lab: Lab, keys: Keys, region: str, no_connections: list[Any]
) -> None:
    """With no ESA_ENDPOINT/ESA_REGION, the endpoint comes from FC's region: it must be a region id."""
    lab.env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=keys.ak_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=keys.ak_secret,
        ESA_SCHEDULE=str(lab.schedule),
        ESA_STATE_DIR=str(lab.state),
    )
    context_file = lab.write("context.json", json.dumps({"region": region}))
    hold = lab.write("hold.json", json.dumps(HOLD))
    assert lab.cli("invoke", "invoke", str(hold), "--context", str(context_file)) == 2
    assert no_connections == []
    assert not lab.state.exists()


# --- (c) the emulator binds loopback only --------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["", " 127.0.0.1", "127.0.0.1 ", "10.0.0.1", "172.16.0.1", "169.254.169.254", "fe80::1", "0:0:0:0:0:0:0:0",
     "127.0.0.1.nip.io", "localhost.localdomain", "0"],
)  # fmt: skip
def test_emulator_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Emulator(host=host)
    assert "not loopback" in str(caught.value)


@pytest.mark.parametrize("host", ["::", "10.0.0.1", ""])
def test_emulator_command_refuses_non_loopback_hosts(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["emulator", "--host", host]) == 2
    err = capsys.readouterr().err
    assert "not loopback" in err and "Traceback" not in err


def _listeners(port: int) -> list[str]:
    """Local addresses listening on ``port``, from the kernel's socket tables (Linux)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port and len(address) == width:
                found.append(address)
    return found


def _is_loopback(hex_address: str) -> bool:
    if len(hex_address) == 8:  # IPv4, little-endian: 0100007F is 127.0.0.1
        return bytes.fromhex(hex_address)[::-1][0] == 127
    words = [bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, 32, 8)]
    return b"".join(words) == bytes(15) + b"\x01"


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_a_running_emulator_listens_on_loopback_only(host: str) -> None:
    with Emulator(host=host) as emulator:
        port = int(emulator.url.rsplit(":", 1)[1])
        listeners = _listeners(port)
    assert listeners, f"no listening socket found for port {port}"
    assert all(_is_loopback(address) for address in listeners), listeners


def test_a_secret_registered_while_another_thread_masks_a_line_breaks_neither() -> None:
    """Fleet targets assume their roles in parallel threads (the emulator runs FC's async
    invocations so, and an FC instance may serve concurrent requests): one thread registers the
    STS secret it got while another masks a log line. Masking iterated the registry as it grew and
    raised "Set changed size during iteration", losing the line and failing the invocation."""
    steady = [f"steady-secret-{i:04d}" for i in range(200)]
    for secret in steady:
        register_secret(secret)
    stop, failures = threading.Event(), []

    def keep_registering() -> None:
        for i in range(10**9):
            if stop.is_set():
                return
            register_secret(f"passing-secret-{i:08d}")
            forget_secret(f"passing-secret-{i:08d}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    registering = threading.Thread(target=keep_registering)
    registering.start()
    try:
        for _ in range(20_000):
            try:
                masked = redact("a line with steady-secret-0007 in it")
            except RuntimeError as exc:
                failures.append(str(exc))
                break
    finally:
        stop.set()
        registering.join()
        sys.setswitchinterval(interval)
        for secret in steady:
            forget_secret(secret)
    assert failures == [] and masked == f"a line with {MASK} in it"
