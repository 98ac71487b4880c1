"""Each alert source's parser on payloads shaped as the source sends them (issue 19, "Shapes").

CloudMonitor's threshold alert callback is a form (every value a string, a missing one ``"null"``,
``dimensions`` a Java map, ``timestamp`` in seconds or milliseconds); through EventBridge the same
fields arrive as JSON values. SLS posts the operator's JSON template, one object per alert.
Alertmanager (Prometheus, ARMS, Grafana) posts one group with an ``alerts`` list. Malformed input
is one ``EventError("FIELD: problem")`` line that quotes no more than a glimpse of the input.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esa_scheduler.engine.alerts import MAX_SUMMARY, Alert
from esa_scheduler.errors import EventError
from esa_scheduler.invocation.intake.sources.alertmanager import parse_alertmanager
from esa_scheduler.invocation.intake.sources.cloudmonitor import no_data_line, parse_cloudmonitor
from esa_scheduler.invocation.intake.sources.read import read_alerts
from esa_scheduler.invocation.intake.sources.sls import parse_sls

UTC = timezone.utc
FIRED = datetime(2026, 11, 28, 1, 29, 41, tzinfo=UTC)
RESOLVED = datetime(2026, 11, 28, 2, 14, 3, tzinfo=UTC)

CALLBACK = {
    "alertName": "origin-5xx-rate",
    "alertState": "ALERT",
    "triggerLevel": "CRITICAL",
    "preTriggerLevel": "OK",
    "curValue": "7.4",
    "dimensions": "{userId=1234567890123456, instanceId=esa-site-7a1f}",
    "expression": "$Average>5",
    "metricName": "origin_5xx_ratio",
    "metricProject": "acs_esa",
    "namespace": "acs_esa",
    "ruleId": "putNewAlarm_user_5c3a",
    "regionId": "cn-hangzhou",
    "instanceName": "example.com",
    "transId": "0b7d5c2a-9f41-4c8e-8f0e-3e2b6d1a4c57",
    "userId": "1234567890123456",
    "timestamp": str(int(FIRED.timestamp() * 1000)),
    "signature": "eEq1zHuCUp0XSmLD8s8VzKSeOuE=",
}
"""A threshold alert callback's fields, as CloudMonitor sends them (the intake decodes the form)."""


def form(fields: dict[str, str]) -> dict[str, str]:
    """The fields through an ``application/x-www-form-urlencoded`` body and back, as the intake reads it."""
    return dict(parse_qsl(urlencode(fields), keep_blank_values=True))


def one_line_error(call: Any, *args: Any) -> str:
    with pytest.raises(EventError) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 240, message
    return message


# --- CloudMonitor ---------------------------------------------------------------------------------


def test_cloudmonitor_callback_firing() -> None:
    alert = parse_cloudmonitor(form(CALLBACK))
    assert alert == Alert(
        source="cloudmonitor",
        name="origin-5xx-rate",
        state="firing",
        key="0b7d5c2a-9f41-4c8e-8f0e-3e2b6d1a4c57",
        severity="critical",
        labels={
            "userId": "1234567890123456",
            "instanceId": "esa-site-7a1f",
            "metricName": "origin_5xx_ratio",
            "namespace": "acs_esa",
            "regionId": "cn-hangzhou",
            "ruleId": "putNewAlarm_user_5c3a",
        },
        summary="example.com origin_5xx_ratio = 7.4",
        at=FIRED,
    )


def test_cloudmonitor_recovery_pairs_by_trans_id_and_keeps_the_level_it_recovers_from() -> None:
    recovery = {**CALLBACK, "alertState": "OK", "triggerLevel": "OK", "preTriggerLevel": "WARN", "curValue": "0.3"}
    alert = parse_cloudmonitor(form({**recovery, "timestamp": str(int(RESOLVED.timestamp()))}))  # seconds
    assert alert is not None
    assert (alert.state, alert.key, alert.severity, alert.at) == ("resolved", CALLBACK["transId"], "warning", RESOLVED)


@pytest.mark.parametrize(("level", "severity"), [("CRITICAL", "critical"), ("WARN", "warning"), ("INFO", "info")])
def test_cloudmonitor_levels(level: str, severity: str) -> None:
    alert = parse_cloudmonitor(form({**CALLBACK, "triggerLevel": level}))
    assert alert is not None and alert.severity == severity


def test_cloudmonitor_without_trans_id_keys_by_rule_and_dimensions_and_reads_null_as_missing() -> None:
    fields = {**CALLBACK, "transId": "null", "instanceName": "null", "triggerLevel": "null", "alertState": "ALARM"}
    alert = parse_cloudmonitor(form(fields))
    assert alert is not None
    assert alert.key == "putNewAlarm_user_5c3a{instanceId=esa-site-7a1f,userId=1234567890123456}"
    assert (alert.state, alert.severity, alert.summary) == ("firing", "unknown", "origin_5xx_ratio = 7.4")
    # the same alert's recovery, with the dimensions in another order, pairs with it
    recovery = {**fields, "alertState": "OK", "dimensions": "{instanceId=esa-site-7a1f, userId=1234567890123456}"}
    resolved = parse_cloudmonitor(form(recovery))
    assert resolved is not None and resolved.key == alert.key


def test_cloudmonitor_insufficient_data_is_none_and_has_its_own_log_line() -> None:
    fields = form({**CALLBACK, "alertState": "INSUFFICIENT_DATA"})
    assert parse_cloudmonitor(fields) is None
    assert no_data_line(fields) == {
        "source": "cloudmonitor",
        "name": "origin-5xx-rate",
        "state": "insufficient_data",
        "key": None,
        "severity": "unknown",
        "rule": None,
    }


def test_cloudmonitor_fields_as_json_values_and_older_callbacks() -> None:
    """EventBridge's ``data`` (JSON numbers) and the older callback (JSON dimensions, no ruleId) read alike."""
    as_json: dict[str, Any] = {**CALLBACK, "timestamp": int(FIRED.timestamp() * 1000), "curValue": 7.4}
    assert parse_cloudmonitor(as_json) == parse_cloudmonitor(form(CALLBACK))
    older = {
        "userId": "12345",
        "alertName": "putNewAlarm_group_a37cd898",
        "timestamp": "1508136760",
        "alertState": "ALARM",
        "dimensions": '[{"userId":"12345","instanceId":"i-12345"}]',
        "expression": '[{"expression":"$Average>90","level":4,"times":2}]',
        "curValue": "95",
        "metricName": "CPUUtilization",
        "metricProject": "acs_ecs_dashboard",
    }
    alert = parse_cloudmonitor(older)
    assert alert is not None
    assert alert.key == "putNewAlarm_group_a37cd898{instanceId=i-12345,userId=12345}"
    assert alert.labels == {
        "userId": "12345",
        "instanceId": "i-12345",
        "metricName": "CPUUtilization",
        "namespace": "acs_ecs_dashboard",
    }
    assert alert.at == datetime(2017, 10, 16, 6, 52, 40, tzinfo=UTC)


def test_cloudmonitor_dimension_values_keep_their_commas_and_slashes() -> None:
    fields = {**CALLBACK, "transId": "null", "dimensions": "{instanceId=i-x, device=/dev/vda1, mountpoint=/data,x}"}
    alert = parse_cloudmonitor(form(fields))
    assert alert is not None
    assert {k: alert.labels[k] for k in ("instanceId", "device", "mountpoint")} == {
        "instanceId": "i-x",
        "device": "/dev/vda1",
        "mountpoint": "/data,x",
    }
    empty = parse_cloudmonitor(form({**CALLBACK, "dimensions": "{}"}))
    assert empty is not None and "instanceId" not in empty.labels


MALFORMED_CLOUDMONITOR: list[tuple[str, dict[str, Any], str]] = [
    ("no-name", {k: v for k, v in CALLBACK.items() if k != "alertName"}, "alertName: Field required"),
    ("name-null", {**CALLBACK, "alertName": "null"}, "alertName:"),
    ("unknown-state", {**CALLBACK, "alertState": "ON_FIRE"}, "alertState: 'ON_FIRE' is not a CloudMonitor alert state"),
    ("dimensions-not-a-map", {**CALLBACK, "dimensions": "userId=1"}, "dimensions: 'userId=1' is not a Java map"),
    ("dimensions-bad-json", {**CALLBACK, "dimensions": '[{"userId": 1'}, "dimensions: neither a Java map"),
    ("dimensions-deep-json", {**CALLBACK, "dimensions": "[" * 100_000}, "dimensions: neither a Java map"),
    ("dimensions-repeated-key", {**CALLBACK, "dimensions": '{"a": "1", "a": "2"}'}, "dimensions: neither a Java map"),
    ("dimensions-nan", {**CALLBACK, "dimensions": '[{"a": NaN}]'}, "dimensions: neither a Java map"),
    ("dimensions-two-objects", {**CALLBACK, "dimensions": [{"a": "1"}, {"b": "2"}]}, "dimensions: a JSON list"),
    ("timestamp-words", {**CALLBACK, "timestamp": "yesterday"}, "timestamp: 'yesterday' is not a Unix time"),
    ("timestamp-far", {**CALLBACK, "timestamp": "9" * 19}, "timestamp:"),
    ("name-too-long", {**CALLBACK, "alertName": "n" * 300}, "alertName: String should have at most 256"),
    ("trans-id-too-long", {**CALLBACK, "transId": "t" * 300}, "transId: String should have at most 256"),
    (
        "too-many-dimensions",
        {**CALLBACK, "dimensions": "{" + ", ".join(f"k{i}=v" for i in range(100)) + "}"},
        "dimensions: Dictionary should have at most 64 items",
    ),
    (
        "dimension-value-too-long",
        {**CALLBACK, "dimensions": "{instanceId=" + "i" * 5000 + "}"},
        "dimensions.instanceId: String should have at most 1024",
    ),
    ("state-a-list", {**CALLBACK, "alertState": ["ALERT"]}, "alertState: Input should be a valid string"),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [c[1:] for c in MALFORMED_CLOUDMONITOR], ids=[c[0] for c in MALFORMED_CLOUDMONITOR]
)
def test_cloudmonitor_malformed_is_one_line_naming_the_field(fields: dict[str, Any], expected: str) -> None:
    assert one_line_error(parse_cloudmonitor, fields).startswith(expected)


def test_cloudmonitor_body_not_an_object() -> None:
    assert (
        one_line_error(read_alerts, "cloudmonitor", ["alertName"], "body") == "body: expected a JSON object, got list"
    )


# --- SLS ------------------------------------------------------------------------------------------

SLS_FIRING: dict[str, Any] = {
    "aliuid": "1234567890123456",
    "project": "esa-logs",
    "alert_id": "origin-5xx-alert",
    "alert_name": "Origin 5xx ratio",
    "alert_instance_id": "ee16a8f435485f3f-5be6b81edc520-3d6a1",
    "alert_type": "sls_alert",
    "status": "firing",
    "severity": 8,
    "labels": {"site": "example.com", "region": "cn-hangzhou"},
    "annotations": {"title": "Origin 5xx ratio above 5%", "desc": "ratio 7.4% over 5 minutes"},
    "fire_time": int(FIRED.timestamp()),
    "resolve_time": 0,
    "fingerprint": "1f2e3d4c5b6a7988",
}
"""One alert as a custom webhook's JSON template renders it (the template is in docs/incidents.md)."""


def test_sls_firing_and_resolved() -> None:
    alert = parse_sls(SLS_FIRING)
    assert alert == Alert(
        source="sls",
        name="Origin 5xx ratio",
        state="firing",
        key="1f2e3d4c5b6a7988",
        severity="critical",
        labels={"site": "example.com", "region": "cn-hangzhou"},
        summary="Origin 5xx ratio above 5%",
        at=FIRED,
    )
    resolved = parse_sls({**SLS_FIRING, "status": "resolved", "resolve_time": int(RESOLVED.timestamp())})
    assert (resolved.state, resolved.key, resolved.at) == ("resolved", alert.key, RESOLVED)
    unstamped = parse_sls({**SLS_FIRING, "status": "resolved", "resolve_time": "0"})
    assert unstamped.at == FIRED  # SLS renders a time it has not reached as 0


@pytest.mark.parametrize(
    ("value", "severity"),
    [(10, "critical"), (8, "critical"), (6, "warning"), (4, "info"), (2, "info"), ("6", "warning"), (None, "unknown")],
)
def test_sls_severities(value: Any, severity: str) -> None:
    assert parse_sls({**SLS_FIRING, "severity": value}).severity == severity


def test_sls_without_fingerprint_keys_by_alert_id_and_labels() -> None:
    bare = {k: v for k, v in SLS_FIRING.items() if k != "fingerprint"}
    alert = parse_sls(bare)
    assert alert.key == "origin-5xx-alert{region=cn-hangzhou,site=example.com}"
    assert parse_sls({**bare, "status": "resolved", "fire_time": "1795829381"}).key == alert.key
    other = parse_sls({**bare, "labels": {"site": "example.org", "region": "cn-hangzhou"}})
    assert other.key != alert.key


MALFORMED_SLS: list[tuple[str, Any, str]] = [
    ("status-unknown", {**SLS_FIRING, "status": "ok"}, "status: Input should be 'firing' or 'resolved'"),
    ("severity-seven", {**SLS_FIRING, "severity": 7}, "severity: 7 is not an SLS severity"),
    ("severity-word", {**SLS_FIRING, "severity": "high"}, "severity: 'high' is not an SLS severity"),
    ("no-name", {k: v for k, v in SLS_FIRING.items() if k != "alert_name"}, "alert_name: Field required"),
    (
        "no-key",
        {k: v for k, v in SLS_FIRING.items() if k not in ("fingerprint", "alert_id")},
        "fingerprint: missing, and no alert_id",
    ),
    ("label-a-number", {**SLS_FIRING, "labels": {"code": 502}}, "labels.code: Input should be a valid string"),
    ("labels-a-list", {**SLS_FIRING, "labels": ["a"]}, "labels: Input should be a valid dictionary"),
    ("fire-time-words", {**SLS_FIRING, "fire_time": "now"}, "fire_time: 'now' is not a Unix time"),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in MALFORMED_SLS], ids=[c[0] for c in MALFORMED_SLS])
def test_sls_malformed_is_one_line_naming_the_field(obj: Any, expected: str) -> None:
    assert one_line_error(parse_sls, obj).startswith(expected)


# --- Alertmanager ---------------------------------------------------------------------------------

GROUP: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="Origin5xx"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "esa-scheduler",
    "groupLabels": {"alertname": "Origin5xx"},
    "commonLabels": {"alertname": "Origin5xx", "severity": "Critical"},
    "commonAnnotations": {"summary": "Origin 5xx ratio above 5%"},
    "externalURL": "http://alertmanager.example:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "Origin5xx", "severity": "Critical", "site": "example.com"},
            "annotations": {"summary": "Origin 5xx ratio above 5%", "description": "7.4% of requests"},
            "startsAt": "2026-11-28T01:29:41.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=origin_5xx",
            "fingerprint": "c5a1d2e3f4a5b6c7",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "Origin5xx", "severity": "page", "site": "example.org"},
            "annotations": {},
            "startsAt": "2026-11-28T00:10:00Z",
            "endsAt": "2026-11-28T02:14:03+00:00",
            "generatorURL": "",
        },
    ],
}


def test_alertmanager_group_is_one_alert_per_entry() -> None:
    first, second = parse_alertmanager(GROUP)
    assert first == Alert(
        source="alertmanager",
        name="Origin5xx",
        state="firing",
        key="c5a1d2e3f4a5b6c7",
        severity="critical",
        labels={"alertname": "Origin5xx", "severity": "Critical", "site": "example.com"},
        summary="Origin 5xx ratio above 5%",
        at=datetime(2026, 11, 28, 1, 29, 41, 123456, tzinfo=UTC),
    )
    assert (second.state, second.severity, second.at) == ("resolved", "unknown", RESOLVED)
    assert second.key == "Origin5xx{alertname=Origin5xx,severity=page,site=example.org}"
    grafana = {**GROUP, "version": "1", "alerts": GROUP["alerts"][:1]}
    assert parse_alertmanager(grafana) == [first]
    assert parse_alertmanager({**GROUP, "alerts": []}) == []


MALFORMED_ALERTMANAGER: list[tuple[str, Any, str]] = [
    ("no-alerts", {k: v for k, v in GROUP.items() if k != "alerts"}, "alerts: Field required"),
    ("alerts-an-object", {**GROUP, "alerts": {"status": "firing"}}, "alerts: Input should be a valid list"),
    (
        "no-alertname",
        {**GROUP, "alerts": [{"status": "firing", "labels": {"severity": "critical"}}]},
        "alerts.0.labels.alertname: missing",
    ),
    (
        "status-unknown",
        {**GROUP, "alerts": [{"status": "pending", "labels": {"alertname": "A"}}]},
        "alerts.0.status: Input should be 'firing' or 'resolved'",
    ),
    (
        "bad-starts-at",
        {**GROUP, "alerts": [{"status": "firing", "labels": {"alertname": "A"}, "startsAt": "soon"}]},
        "alerts.0.startsAt: 'soon' is not an RFC 3339 instant",
    ),
    (
        "too-many-alerts",
        {**GROUP, "alerts": [GROUP["alerts"][0]] * 501},
        "alerts: List should have at most 500 items",
    ),
    (
        "fingerprint-too-long",
        {**GROUP, "alerts": [{**GROUP["alerts"][0], "fingerprint": "f" * 257}]},
        "alerts.0.fingerprint: String should have at most 256",
    ),
]


@pytest.mark.parametrize(
    ("obj", "expected"), [c[1:] for c in MALFORMED_ALERTMANAGER], ids=[c[0] for c in MALFORMED_ALERTMANAGER]
)
def test_alertmanager_malformed_is_one_line_naming_the_field(obj: Any, expected: str) -> None:
    assert one_line_error(parse_alertmanager, obj).startswith(expected)


# --- the one door --------------------------------------------------------------------------------

NOT_AN_OBJECT: list[tuple[str, Any, str, str]] = [
    ("sls", [SLS_FIRING], "body", "body: expected a JSON object, got list"),
    ("alertmanager", [GROUP], "body", "body: expected a JSON object, got list"),
    ("sls", 7, "body[1]", "body[1]: expected a JSON object, got int"),
    ("cloudmonitor", "alertState=ALERT", "event[0].data", "event[0].data: expected a JSON object, got str"),
]


@pytest.mark.parametrize(("source", "obj", "where", "expected"), NOT_AN_OBJECT)
def test_a_body_that_is_not_an_object_is_named_once(source: str, obj: Any, where: str, expected: str) -> None:
    assert one_line_error(read_alerts, source, obj, where) == expected


def test_the_parsers_problems_are_named_under_the_place() -> None:
    """The parser names the field, ``read_alerts`` the place it is in; an Alertmanager group's alerts all come."""
    assert one_line_error(read_alerts, "sls", {**SLS_FIRING, "severity": 7}, "body[2]").startswith(
        "body[2].severity: 7 is not an SLS severity"
    )
    assert len(read_alerts("alertmanager", GROUP, "body").alerts) == len(GROUP["alerts"])


# --- bounds ---------------------------------------------------------------------------------------


def test_a_long_summary_is_clipped_and_a_long_label_set_keeps_a_short_key() -> None:
    long_text = "word " * 400
    labels = {"alertname": "A", **{f"label{i}": "v" * 200 for i in range(20)}}
    entry = {"status": "firing", "labels": labels, "annotations": {"summary": long_text}}
    (alert,) = parse_alertmanager({"alerts": [entry]})
    assert len(alert.summary) == MAX_SUMMARY and alert.summary.endswith("...")
    assert len(alert.key) <= 256 and alert.key.startswith("A{sha256:")
    again = {**entry, "labels": dict(reversed(list(labels.items())))}
    assert parse_alertmanager({"alerts": [again]})[0].key == alert.key
    longest = {**entry, "labels": {**labels, "alertname": "n" * 256}}
    assert len(parse_alertmanager({"alerts": [longest]})[0].key) == 256


# --- hostile input --------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40), st.just("null")
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = {
    "cloudmonitor": [*CALLBACK, "junk"],
    "sls": [*SLS_FIRING, "junk"],
    "alertmanager": ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint", "alertname", "severity"],
}


def near(source: str) -> st.SearchStrategy[Any]:
    """Objects with the source's own field names (and some of its real values) holding anything."""
    values = st.one_of(JSON, st.sampled_from(["ALERT", "OK", "firing", "resolved", "{a=1}", "8", "2026-11-28T01:00Z"]))
    fields = st.dictionaries(st.sampled_from(FIELDS[source]), values, max_size=8)
    if source == "alertmanager":
        return st.one_of(JSON, st.fixed_dictionaries({"alerts": st.lists(fields, max_size=3)}))
    return st.one_of(JSON, fields)


PARSERS = {"cloudmonitor": parse_cloudmonitor, "sls": parse_sls, "alertmanager": parse_alertmanager}


@pytest.mark.parametrize("source", list(PARSERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_input_is_alerts_or_one_line_error(source: str, data: st.DataObject) -> None:
    """Whatever a sender posts, a parser answers with alerts or one ``EventError`` line, never a traceback."""
    obj = data.draw(near(source))
    try:
        PARSERS[source](obj)
    except EventError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300, str(exc)
