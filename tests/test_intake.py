"""``handler.intake`` on FC HTTP trigger events: routes, closed-by-default configuration, tokens,
DingTalk signatures, senders and replays, chat commands, sizes, and what the answers and logs say.

Each test builds the event FC delivers (base64 bodies, capitalised headers) and reads the response
struct the handler returns; the clock is pinned at ``NOW`` and holds land in a state folder of the test.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import run_cli, write_schedule
from intake_support import (
    ALERTING,
    APP_SECRET,
    CONVERSATION,
    EVENTS,
    NOW,
    SCHEDULE,
    TOKEN,
    Harness,
    chat_body,
    fixture_request,
    harness,
    http_event,
    signed,
)

import handler
from esa_scheduler.invocation.intake.app import Intake
from esa_scheduler.invocation.intake.http import MAX_BODY_BYTES


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return harness(tmp_path)


def rejected(h: Harness) -> list[str]:
    return [line["reason"] for line in h.logs() if line["event"] == "intake.rejected"]


# --- routes ---------------------------------------------------------------------------------------


def test_healthz_answers_without_authentication_and_reads_no_state(tmp_path: Path) -> None:
    """No schedule, no state folder, no variables: /healthz still answers, and creates nothing."""
    missing = tmp_path / "no-such-schedule"
    intake = Intake(str(missing), str(tmp_path / "state"), {}, lambda: NOW)
    response = intake.handle(http_event("GET", "/healthz"))
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"ok": True})
    assert response["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/alerts", 404, None),
        ("POST", "/alerts/zabbix", 404, None),
        ("GET", "/", 404, None),
        ("GET", "/alerts/cloudmonitor", 405, "POST"),
        ("DELETE", "/chat/dingtalk", 405, "POST"),
        ("POST", "/healthz", 405, "GET"),
    ],
)
def test_unknown_routes_are_404_and_wrong_methods_405(
    h: Harness, method: str, path: str, status: int, allow: str | None
) -> None:
    code, payload, response = h(method, path, b"x")
    assert (code, payload["ok"]) == (status, False)
    assert response["headers"].get("Allow") == allow
    assert h.holds() == {}


def test_the_handler_entry_point_answers_fc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESA_STATE_DIR", str(tmp_path / "state"))
    response = handler.intake(http_event("GET", "/healthz/"), None)
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is False


def test_headers_and_query_may_be_null_or_repeated(h: Harness) -> None:
    """FC joins a repeated header with commas; a gateway may send lists, or null for none."""
    event = json.loads(http_event("GET", "/healthz"))
    for headers, query in [(None, None), ({"X-Forwarded-For": ["10.0.0.1", "10.0.0.2"]}, {"a": ["1", "2"]})]:
        response = Intake(str(h.schedule), str(h.state), h.environ, lambda: NOW).handle(
            json.dumps({**event, "headers": headers, "queryParameters": query})
        )
        assert response["statusCode"] == 200, response


def test_a_body_that_is_not_an_http_trigger_event_is_400(h: Harness, tmp_path: Path) -> None:
    intake = Intake(str(h.schedule), str(h.state), h.environ, lambda: NOW, stream=h.stream)
    for event, problem in [
        (b'{"triggerTime": "2027-01-04T03:00:00Z"}', "event.rawPath: Field required"),
        (b"not json", "event: not an FC HTTP trigger event"),
        (
            http_event("POST", "/chat/dingtalk").replace(b'"isBase64Encoded": true', b'"isBase64Encoded": "yes"'),
            "isBase64Encoded",
        ),
    ]:
        response = intake.handle(event)
        assert response["statusCode"] == 400
        assert problem in json.loads(response["body"])["error"]
    assert rejected(h) == ["malformed"] * 3


def test_a_body_over_256_kib_is_413_before_anything_reads_it(h: Harness) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    for options in ({"encoded": True}, {"encoded": False}):
        code, payload, _ = h("POST", "/chat/dingtalk", big, headers=signed(), **options)
        assert (code, payload["ok"]) == (413, False)
    code, _, _ = h("POST", "/alerts/sls", big, query={"token": TOKEN})
    assert code == 413
    assert rejected(h) == ["too_large"] * 3
    assert h.holds() == {}


def test_a_body_of_exactly_256_kib_is_read(h: Harness) -> None:
    """The limit is on the decoded body: 256 KiB is the last size read (here, refused as not JSON)."""
    code, payload, _ = h("POST", "/chat/dingtalk", b" " * MAX_BODY_BYTES, headers=signed())
    assert code == 400, payload


# --- closed by default ------------------------------------------------------------------------------

WITHOUT_INTAKE = SCHEDULE.split("intake:")[0]


@pytest.mark.parametrize(
    ("schedule", "env", "path"),
    [
        (WITHOUT_INTAKE, {}, "/alerts/cloudmonitor"),
        (WITHOUT_INTAKE, {}, "/chat/dingtalk"),
        (SCHEDULE.replace("  token_env: ESA_INTAKE_TOKEN\n", ""), {}, "/alerts/sls"),
        (SCHEDULE, {"ESA_INTAKE_TOKEN": ""}, "/alerts/alertmanager"),
        (SCHEDULE, {"ESA_DINGTALK_APP_SECRET": "  "}, "/chat/dingtalk"),
        (WITHOUT_INTAKE + "intake:\n  token_env: ESA_INTAKE_TOKEN\n", {}, "/chat/dingtalk"),
    ],
)
def test_a_route_without_its_configuration_or_secret_is_503_and_does_nothing(
    tmp_path: Path, schedule: str, env: dict[str, str], path: str
) -> None:
    h = harness(tmp_path, schedule, **env)
    headers = {**signed(), "authorization": f"Bearer {TOKEN}"}
    code, payload, _ = h("POST", path, chat_body("hold access-logs-prod 2h INC-1"), headers=headers)
    assert (code, payload["ok"]) == (503, False)
    assert payload["error"].startswith("this route is not enabled")
    assert rejected(h) == ["disabled"]
    assert h.holds() == {} and not (h.state / "intake").exists()


def test_a_broken_schedule_is_500_so_the_sender_retries(tmp_path: Path) -> None:
    h = harness(tmp_path, SCHEDULE.replace("token_env: ESA_INTAKE_TOKEN", "token_env: 12"))
    code, payload, _ = h("POST", "/alerts/sls", b"{}", query={"token": TOKEN})
    assert (code, payload) == (500, {"ok": False, "error": "the intake is misconfigured; see its log"})
    (failed,) = [line for line in h.logs() if line["event"] == "intake.failed"]
    assert "intake: token_env must name an environment variable" in failed["error"]


# --- tokens -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, {}),
        ({"authorization": "Bearer wrong-token"}, {}),
        ({"authorization": TOKEN}, {}),
        ({"authorization": f"Basic {TOKEN}"}, {}),
        ({}, {"token": TOKEN[:-1]}),
        ({}, {"token": TOKEN + "x"}),
        ({}, {"token": f"{TOKEN},{TOKEN}"}),
        ({}, {"tok": TOKEN}),
    ],
)
def test_a_missing_or_wrong_token_is_401_and_writes_nothing(
    h: Harness, headers: dict[str, str], query: dict[str, str]
) -> None:
    code, payload, response = h("POST", "/alerts/sls", b'{"status": "firing"}', headers=headers, query=query)
    assert (code, payload) == (401, {"ok": False, "error": "unauthorized"})
    assert response["headers"]["WWW-Authenticate"].startswith("Bearer")
    assert rejected(h) == ["unauthorized"]
    assert h.holds() == {}


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"authorization": f"Bearer {TOKEN}"}, {}), ({"authorization": f"bearer  {TOKEN} "}, {}), ({}, {"token": TOKEN})],
)
def test_the_token_is_accepted_as_a_bearer_header_or_a_query_parameter(
    h: Harness, headers: dict[str, str], query: dict[str, str]
) -> None:
    """Past the token, a body that is no alert is the next refusal (400), not 401."""
    code, payload, _ = h("POST", "/alerts/alertmanager", b"[]", headers=headers, query=query)
    assert code == 400 and payload["ok"] is False, payload


# --- DingTalk: signature, timestamp, senders, replays -----------------------------------------------


def test_a_signed_command_from_an_allowed_sender_is_obeyed(h: Harness) -> None:
    code, payload, _ = h(
        "POST", "/chat/dingtalk", chat_body("@esa hold access-logs-prod 2h INC-4211 origin 5xx"), headers=signed()
    )
    assert code == 200 and payload["ok"] is True
    assert payload["msgtype"] == "markdown" and payload["markdown"]["title"] == "esa-scheduler"
    (hold,) = h.holds().values()
    assert hold["tasks"] == ["access-logs-prod"] and hold["status"] == "offline"
    assert (hold["reason"], hold["by"]) == ("INC-4211 origin 5xx", "dingtalk:manager4220")
    assert (hold["created_at"], hold["expires_at"]) == ("2027-01-04T03:00:00Z", "2027-01-04T05:00:00Z")
    assert payload["reconcile"] == "dispatched"
    (reconcile,) = h.dispatches.seen
    assert json.loads(reconcile.event()) == {"action": "reconcile", "touched": [hold["id"]]}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"timestamp": str(int(NOW.timestamp() * 1000))},
        signed(secret="another-secret-entirely"),
        {**signed(), "sign": signed()["sign"][:-2] + "=="},
        {**signed(), "timestamp": str(int(NOW.timestamp() * 1000) + 1)},
        signed(NOW - timedelta(hours=1, seconds=1)),
        signed(NOW + timedelta(hours=1, seconds=1)),
        {**signed(), "timestamp": "1e12"},
    ],
    ids=["unsigned", "no-sign", "other-secret", "bad-sign", "other-timestamp", "old", "future", "not-digits"],
)
def test_a_bad_dingtalk_signature_or_timestamp_is_401(h: Harness, headers: dict[str, str]) -> None:
    code, payload, _ = h("POST", "/chat/dingtalk", chat_body("hold access-logs-prod 2h INC-1"), headers=headers)
    assert (code, payload) == (401, {"ok": False, "error": "unauthorized"})
    assert h.holds() == {} and rejected(h) == ["unauthorized"]


def test_a_timestamp_within_the_hour_either_way_is_accepted(h: Harness) -> None:
    for index, skew in enumerate((timedelta(minutes=-59), timedelta(minutes=59))):
        code, payload, _ = h("POST", "/chat/dingtalk", chat_body("status", f"m{index}"), headers=signed(NOW + skew))
        assert code == 200 and payload["ok"] is True, payload


@pytest.mark.parametrize(
    ("schedule", "body"),
    [
        (SCHEDULE, chat_body("hold access-logs-prod 2h INC-1", sender="intern7")),
        (SCHEDULE, json.dumps({**json.loads(chat_body("status")), "senderStaffId": None}).encode()),
        (
            SCHEDULE.replace('["manager4220"]', '["manager4220"]\n    allow_conversations: ["cid-ops"]'),
            chat_body("status"),
        ),
    ],
    ids=["sender", "outsider", "conversation"],
)
def test_a_sender_or_conversation_not_allowed_is_403(tmp_path: Path, schedule: str, body: bytes) -> None:
    h = harness(tmp_path, schedule)
    code, payload, _ = h("POST", "/chat/dingtalk", body, headers=signed())
    assert code == 403 and payload["ok"] is False and payload["error"].startswith("forbidden")
    assert h.holds() == {} and rejected(h) == ["forbidden"]
    (line,) = [line for line in h.logs() if line["event"] == "intake.rejected"]
    assert line["conversation"] == CONVERSATION and line["sender"] == json.loads(body)["senderStaffId"]


def test_an_allowed_conversation_may_command(tmp_path: Path) -> None:
    h = harness(
        tmp_path, SCHEDULE.replace('["manager4220"]', f'["manager4220"]\n    allow_conversations: ["{CONVERSATION}"]')
    )
    code, payload, _ = h("POST", "/chat/dingtalk", chat_body("status"), headers=signed())
    assert code == 200 and payload["ok"] is True


def test_a_replayed_message_id_does_nothing(h: Harness) -> None:
    body = chat_body("hold access-logs-prod 2h INC-1", "msg-replayed")
    first = h("POST", "/chat/dingtalk", body, headers=signed())
    h.now = NOW + timedelta(minutes=50)  # still within the signature's hour
    again = h("POST", "/chat/dingtalk", body, headers=signed())
    assert first[0] == 200 and first[1]["reconcile"] == "dispatched"
    assert again[:2] == (200, {"ok": True, "duplicate": True})
    assert len(h.holds()) == 1 and len(h.dispatches.seen) == 1
    assert rejected(h) == ["duplicate"]


def test_a_message_id_is_forgotten_after_two_hours(h: Harness) -> None:
    body = chat_body("status", "msg-old")
    assert h("POST", "/chat/dingtalk", body, headers=signed())[0] == 200
    h.now = NOW + timedelta(hours=2)
    code, payload, _ = h("POST", "/chat/dingtalk", body, headers=signed(h.now))
    assert code == 200 and "duplicate" not in payload
    assert len(list((h.state / "intake" / "dingtalk-messages").iterdir())) == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "body: the body is empty"),
        (b"{", "body: not valid JSON"),
        (b'{"msgtype": "text", "msgId": "a", "msgId": "b", "conversationId": "c"}', "body: duplicate key 'msgId'"),
        (b'{"msgtype": "text", "conversationId": "c"}', "body.msgId: Field required"),
        (b'{"msgtype": "text", "msgId": 7, "conversationId": "c"}', "body.msgId: Input should be a valid string"),
        (b"[]", "body: Input should be a valid dictionary"),
    ],
)
def test_a_malformed_chat_body_is_400(h: Harness, body: bytes, problem: str) -> None:
    code, payload, _ = h("POST", "/chat/dingtalk", body, headers=signed())
    assert code == 400 and payload["ok"] is False
    assert payload["error"].startswith(problem), payload["error"]
    assert rejected(h) == ["malformed"]


# --- chat commands -----------------------------------------------------------------------------------


def say(h: Harness, text: str, msg_id: str) -> tuple[bool, str]:
    code, payload, _ = h("POST", "/chat/dingtalk", chat_body(text, msg_id), headers=signed(h.now))
    assert code == 200, payload
    return payload["ok"], payload["markdown"]["text"]


def test_hold_obeys_the_rules_of_a_hold_event(h: Harness) -> None:
    """Managed tasks only (with close matches), a TTL that parses, a reason: else nothing is written."""
    ok, text = say(h, "hold acess-logs-prod 2h INC-1", "a")
    assert not ok
    assert text.startswith("**hold** refused: tasks: 'acess-logs-prod' select(s) no managed task")
    assert "close matches: access-logs-prod" in text and "`help`: this text" in text
    ok, text = say(h, "hold access-logs-prod forever INC-1", "b")
    assert not ok and "ttl" in text
    ok, text = say(h, "hold access-logs-prod 2h", "c")
    assert not ok and "a TTL and a reason" in text
    assert h.holds() == {} and h.dispatches.seen == []
    ok, _ = say(h, "HOLD waf-*,access-logs-dev 30m INC-2 waf noise", "d")
    (hold,) = h.holds().values()
    assert ok and hold["tasks"] == ["waf-*", "access-logs-dev"] and hold["reason"] == "INC-2 waf noise"


def test_release_by_id_or_by_selectors_ends_the_hold_and_dispatches(h: Harness) -> None:
    say(h, "hold access-logs-prod 2h INC-1", "a")
    say(h, "hold waf-* 2h INC-2", "b")
    first, second = sorted(h.holds().values(), key=lambda hold: hold["reason"])
    h.now = NOW + timedelta(minutes=10)
    ok, text = say(h, f"release {first['id']}", "c")
    assert ok and first["id"] in text
    ok, text = say(h, "release waf-edge", "d")
    assert ok and second["id"] in text
    ended = h.holds()
    # an ended hold stays on disk, ending now: the scheduler sees the end as a transition
    assert {hold["expires_at"] for hold in ended.values()} == {"2027-01-04T03:10:00Z"}
    assert [json.loads(r.event())["touched"] for r in h.dispatches.seen][-2:] == [[first["id"]], [second["id"]]]
    ok, text = say(h, "release access-logs-prod", "e")
    assert not ok and text.startswith("no hold in force applies to access-logs-prod")
    say(h, "hold access-logs-dev 1h INC-3", "f")
    say(h, "hold waf-edge 1h INC-4", "g")
    ok, text = say(h, "release access-logs-dev, waf-*", "h")  # commas, spaces or both between selectors
    assert ok and text.count("**released**") == 2


def test_status_lists_the_holds_and_the_tasks_offline_now(h: Harness) -> None:
    say(h, "hold access-logs-dev 2h INC-9 disk full", "a")
    ok, text = say(h, "status", "b")
    assert ok
    assert "**holds in force**: 1" in text
    assert "access-logs-dev offline until 06:00 CET (05:00Z), INC-9 disk full, by dingtalk:manager4220" in text
    offline = text.split("**offline now**")[1]
    assert "access-logs-dev (hold:h-" in offline and "access-logs-prod (window:nightly)" in offline


def test_plan_lists_the_changes_of_the_next_24_hours(h: Harness) -> None:
    ok, text = say(h, "plan", "a")
    assert ok
    assert text.splitlines()[0] == "**changes in the next 24 hours** (2)"
    assert "- 05:30 CET (04:30Z): access-logs-prod -> online (default)" in text
    assert "- 2027-01-05 02:30 CET (01:30Z): access-logs-prod -> offline (window:nightly)" in text
    ok, text = say(h, "plan access-logs-dev", "b")
    assert ok and text.endswith("(0)\n\n- none")
    ok, text = say(h, "plan waf-edge", "c")
    assert ok and "(0)" in text
    ok, text = say(h, "plan nothing-here", "d")
    assert not ok and "neither a managed task" in text


@pytest.mark.parametrize("text", ["help", "", "@esa", "reboot everything", "HeLp"])
def test_help_and_unknown_verbs_get_the_help_text(h: Harness, text: str) -> None:
    ok, reply = say(h, text, "m")
    assert reply.startswith("**esa-scheduler** takes these commands")
    assert "`hold SELECTOR[,SELECTOR...] TTL REASON...`" in reply
    assert ok is (text.lower() in ("help", "", "@esa"))


def test_a_selector_copied_from_a_reply_means_what_the_reply_showed(h: Harness) -> None:
    """Replies show ``*`` as its look-alike U+2217 (markup is never rendered): pasted back into a
    command, the selector still selects what it did."""
    say(h, "hold waf-*,access-logs-dev 2h INC-5", "a")
    _, text = say(h, "status", "b")
    shown = text.split("**holds in force**: 1\n\n- ")[1].split(": ")[1].split(" offline")[0]
    assert shown == "waf-∗, access-logs-dev"
    ok, reply = say(h, f"release {shown}", "c")
    assert ok and reply.count("**released**") == 1
    ok, reply = say(h, "hold waf-∗ 1h INC-6", "d")
    hold = next(hold for hold in h.holds().values() if hold["reason"] == "INC-6")
    assert ok and hold["tasks"] == ["waf-*"]


def test_chat_replies_escape_what_the_message_supplied(h: Harness) -> None:
    """A reason can carry neither a link, nor bold text, nor a control character into the group."""
    say(h, "hold access-logs-prod 2h [login](https://phish.example) **now** \x1b[31m", "a")
    _, text = say(h, "status", "b")
    assert "[login](https://phish.example)" not in text and "**now**" not in text and "\x1b" not in text
    (hold,) = h.holds().values()
    assert hold["reason"] == "[login](https://phish.example) **now** \x1b[31m"  # stored as given


def test_every_chat_command_is_logged_with_sender_verb_and_outcome(h: Harness) -> None:
    say(h, "hold access-logs-prod 2h INC-1", "a")
    say(h, "hold nothing 2h INC-1", "b")
    say(h, "status", "c")
    lines = [(line["sender"], line["verb"], line["outcome"]) for line in h.logs() if line["event"] == "chat.command"]
    assert lines == [("manager4220", "hold", "ok"), ("manager4220", "hold", "refused"), ("manager4220", "status", "ok")]


def test_no_answer_or_log_line_carries_the_token_the_secret_or_a_signature(h: Harness) -> None:
    headers = signed()
    answers = [
        h("POST", "/chat/dingtalk", chat_body("hold access-logs-prod 2h INC-1"), headers=headers)[2],
        h("POST", "/chat/dingtalk", b"{", headers=headers)[2],
        h("POST", "/alerts/sls", b"{", query={"token": TOKEN})[2],
        h("POST", "/alerts/sls", b"{", query={"token": TOKEN + "x"})[2],
    ]
    output = json.dumps(answers) + h.stream.getvalue()
    for secret in (TOKEN, APP_SECRET, headers["sign"], base64.b64decode(headers["sign"]).hex()):
        assert secret not in output


# --- alert routes --------------------------------------------------------------------------------------


@pytest.fixture
def alerting(tmp_path: Path) -> Harness:
    return harness(tmp_path, ALERTING)


@pytest.mark.parametrize(
    ("fixture", "created", "matched"),
    [
        ("intake-cloudmonitor-alert.json", "inc-origin-errors-", 1),
        ("intake-sls-firing.json", "inc-sls-origin-", 1),
        ("intake-alertmanager.json", "inc-prom-origin-", 2),
    ],
)
def test_each_source_s_fixture_creates_its_rule_s_hold(
    alerting: Harness, fixture: str, created: str, matched: int
) -> None:
    path, body, headers, query = fixture_request(fixture)
    code, payload, _ = alerting("POST", path, body, headers=headers, query=query)
    assert code == 200, payload
    (hold_id,) = payload["holds"]["created"]
    assert hold_id.startswith(created) and payload["matched"] == matched and payload["reconcile"] == "dispatched"
    hold = alerting.holds()[hold_id]
    assert hold["by"] == f"intake:{path.rsplit('/', 1)[1]}"
    (reconcile,) = alerting.dispatches.seen
    assert reconcile.hold_ids == (hold_id,)
    lines = [line for line in alerting.logs() if line["event"] == "intake.alert"]
    assert lines and lines[0]["rule"] == created[4:-1]


def test_the_answer_counts_alerts_matched_and_ignored(alerting: Harness) -> None:
    """The Alertmanager group holds a firing alert (a hold) and a resolve with no hold: both matched."""
    path, body, headers, query = fixture_request("intake-alertmanager.json")
    code, payload, _ = alerting("POST", path, body, headers=headers, query=query)
    assert (code, payload["alerts"], payload["matched"], payload["ignored"]) == (200, 2, 2, 0)
    other = harness(alerting.state.parent / "other", SCHEDULE)  # no alert: rules at all
    code, payload, _ = other("POST", path, body, headers=headers, query=query)
    assert (code, payload["alerts"], payload["matched"], payload["ignored"]) == (200, 2, 0, 2)
    assert payload["holds"] == {"created": [], "refreshed": [], "released": []}
    assert payload["reconcile"] == "not needed" and other.dispatches.seen == []


def test_insufficient_data_is_logged_and_ignored_with_200(alerting: Harness) -> None:
    path, body, headers, query = fixture_request("intake-cloudmonitor-alert.json")
    no_data = body.replace(b"alertState=ALERT", b"alertState=INSUFFICIENT_DATA")
    code, payload, _ = alerting("POST", path, no_data, headers=headers, query=query)
    assert (code, payload["alerts"], payload["matched"], payload["ignored"]) == (200, 1, 0, 1)
    (line,) = [line for line in alerting.logs() if line["event"] == "intake.alert"]
    assert (line["state"], line["rule"]) == ("insufficient_data", None)
    assert alerting.holds() == {}


def test_cloudmonitor_fields_may_come_as_json(alerting: Harness) -> None:
    path, body, _, query = fixture_request("intake-cloudmonitor-alert.json")
    fields = dict(__import__("urllib.parse", fromlist=["parse_qsl"]).parse_qsl(body.decode()))
    code, payload, _ = alerting(
        "POST", path, json.dumps(fields).encode(), headers={"content-type": "application/json"}, query=query
    )
    assert code == 200 and payload["holds"]["created"], payload


def test_an_sls_array_is_one_alert_per_element(alerting: Harness) -> None:
    path, body, headers, query = fixture_request("intake-sls-firing.json")
    one = json.loads(body)
    other = {**one, "fingerprint": "another-fingerprint"}
    code, payload, _ = alerting("POST", path, json.dumps([one, other]).encode(), headers=headers, query=query)
    assert (code, payload["alerts"], len(payload["holds"]["created"])) == (200, 2, 2)


MALFORMED = [
    ("cloudmonitor", b"alertName=x&alertState=ALERT&alertState=OK", "form", "body.alertState: duplicate field"),
    ("cloudmonitor", b"alertState=ALERT", "form", "body.alertName: Field required"),
    ("cloudmonitor", b"alertName=x&alertState=MAYBE", "form", "body.alertState: "),
    ("cloudmonitor", b'{"alertName": "x", "alertState": "ALERT", "alertState": "OK"}', "json", "body: duplicate key"),
    ("cloudmonitor", b"[1, 2]", "json", "body: expected one CloudMonitor alert as a JSON object"),
    ("cloudmonitor", b"alertName=x&alertState=ALERT&dimensions=" + b"[" * 100_000, "form", "body.dimensions: neither"),
    ("cloudmonitor", b'alertName=x&alertState=ALERT&dimensions={"a":1,"a":2}', "form", "body.dimensions: neither"),
    ("sls", b'{"status": "firing", "status": "resolved"}', "json", "body: duplicate key 'status'"),
    ("sls", b"[]", "json", "body: an empty list holds no alert"),
    ("sls", b'[{"alert_name": "x", "status": "firing"}, 7]', "json", "body[0]."),
    ("sls", b"not json", "json", "body: not valid JSON"),
    ("sls", b"7", "json", "body: expected a JSON object, got int"),
    (
        "sls",
        b'[{"alert_name": "x", "status": "firing", "alert_id": "a"}, 7]',
        "json",
        "body[1]: expected a JSON object",
    ),
    ("alertmanager", b"[]", "json", "body: expected a JSON object, got list"),
    ("alertmanager", b'{"alerts": [{"status": "firing", "labels": {}}]}', "json", "body.alerts.0.labels.alertname"),
    ("alertmanager", b'{"alerts": [{"status": "burning", "labels": {"alertname": "a"}}]}', "json", "body.alerts.0"),
    ("alertmanager", b'{"alerts": {"x": 1}}', "json", "body.alerts"),
    ("alertmanager", b'{"alerts": [], "version": "4", "version": "5"}', "json", "body: duplicate key 'version'"),
]


@pytest.mark.parametrize(("source", "body", "kind", "problem"), MALFORMED)
def test_a_malformed_alert_body_is_400_naming_the_field(
    alerting: Harness, source: str, body: bytes, kind: str, problem: str
) -> None:
    media = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": media}
    code, payload, _ = alerting("POST", f"/alerts/{source}", body, headers=headers)
    assert code == 400 and payload["ok"] is False
    assert payload["error"].startswith(problem), payload["error"]
    assert "\n" not in payload["error"] and rejected(alerting) == ["malformed"]
    assert alerting.holds() == {} and alerting.dispatches.seen == []


def test_two_alert_keys_under_one_rule_keep_their_own_holds(alerting: Harness) -> None:
    path, body, headers, query = fixture_request("intake-cloudmonitor-alert.json")
    second = body.replace(b"transId=0b7d5c2a", b"transId=99999999")
    first_id = alerting("POST", path, body, headers=headers, query=query)[1]["holds"]["created"][0]
    second_id = alerting("POST", path, second, headers=headers, query=query)[1]["holds"]["created"][0]
    assert first_id != second_id and len(alerting.holds()) == 2
    resolve = body.replace(b"alertState=ALERT", b"alertState=OK")
    alerting.now = NOW + timedelta(minutes=30)
    payload = alerting("POST", path, resolve, headers=headers, query=query)[1]
    assert payload["holds"]["refreshed"] == [first_id]  # cooling down, ten minutes
    holds = alerting.holds()
    assert holds[first_id]["expires_at"] == "2027-01-04T03:40:00Z"
    assert holds[second_id]["expires_at"] == "2027-01-04T05:00:00Z"  # untouched by the other's resolve


def test_the_example_http_events_answer_200_with_the_sample_schedule(tmp_path: Path) -> None:
    """``events/intake-*.json`` as ``invoke --handler intake`` runs them: the sample's intake: settings,
    the documented test token and app secret, the clock at the DingTalk command's signed instant."""
    sample = (Path(__file__).resolve().parents[1] / "schedule" / "sample.yaml").read_text()
    h = harness(tmp_path, sample)
    answers = {}
    for path in sorted(EVENTS.glob("intake-*.json")):
        intake = Intake(str(h.schedule), str(h.state), h.environ, lambda: NOW, h.dispatches, h.stream)
        response = intake.handle(path.read_bytes())
        answers[path.name] = (response["statusCode"], json.loads(response["body"]))
    assert {name: status for name, (status, _) in answers.items()} == {
        "intake-alertmanager.json": 200,
        "intake-cloudmonitor-alert.json": 200,
        "intake-cloudmonitor-ok.json": 200,
        "intake-dingtalk-hold.json": 200,
        "intake-sls-firing.json": 200,
        "intake-sls-resolved.json": 200,
    }
    assert answers["intake-cloudmonitor-alert.json"][1]["holds"]["created"] == ["inc-origin-errors-3a9a2cda"]
    assert answers["intake-dingtalk-hold.json"][1]["markdown"]["text"].startswith("**hold h-")


# --- the schedule's intake: as validate reads it -------------------------------------------------------


@pytest.mark.parametrize(
    ("intake", "problem"),
    [
        (
            "  token_env: abc-token-value-9f8e7d\n",
            "intake: token_env must name an environment variable (A-Z, 0-9 and _, not starting with a digit, "
            "at most 64 characters), not hold its value",
        ),
        (
            "  dingtalk:\n    app_secret_env: https://oapi.dingtalk.com/robot/send?access_token=3e1f\n"
            "    allow_senders: [a]\n",
            "intake.dingtalk: app_secret_env must name an environment variable",
        ),
        ("  dingtalk:\n    app_secret_env: S\n    allow_senders: []\n", "intake.dingtalk.allow_senders: List should"),
        ("  dingtalk:\n    app_secret_env: S\n", "intake.dingtalk.allow_senders: required field is missing"),
        (
            "  token_env: T\n  tokens_env: U\n",
            "intake.tokens_env: unknown key 'tokens_env' (did you mean 'token_env'?)",
        ),
        (
            "  dingtalk:\n    app_secret_env: S\n    allow_senders: [a]\n    allow_conversations: []\n",
            "intake.dingtalk.allow_conversations: List should have at least 1 item",
        ),
    ],
    ids=["token-value", "secret-value", "no-senders", "senders-missing", "typo", "no-conversations"],
)
def test_validate_checks_intake_without_quoting_a_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], intake: str, problem: str
) -> None:
    path = write_schedule(tmp_path, WITHOUT_INTAKE + "intake:\n" + intake)
    code, out, err = run_cli(capsys, "validate", "--schedule", str(path))
    assert (code, out) == (2, "")
    assert problem in err, err
    for value in ("abc-token-value-9f8e7d", "access_token=3e1f"):
        assert value not in err


def test_intake_is_set_in_one_file_of_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_schedule(tmp_path / "s", SCHEDULE, "a.yaml")
    write_schedule(tmp_path / "s", "version: 1\nintake:\n  token_env: OTHER_TOKEN\n", "b.yaml")
    code, _, err = run_cli(capsys, "validate", "--schedule", str(tmp_path / "s"))
    assert code == 2 and "intake: set to different values; set it in one file" in err
    (tmp_path / "s" / "b.yaml").write_text("version: 1\n")
    code, out, _ = run_cli(capsys, "validate", "--schedule", str(tmp_path / "s"))
    assert code == 0 and "valid" in out
