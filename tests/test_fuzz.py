"""Fuzzing and properties (hypothesis) that the rest of the suite does not already cover.

1. The schedule loader raises nothing but ``ScheduleError``, whatever the file holds: YAML-ish
   token soup, random bytes, random nested structures and near-valid schedules dumped with
   ``yaml.safe_dump``.
2. The event reader raises nothing but ``EventError`` for random JSON values, their bytes, random
   bytes and near-valid commands / CloudEvents.
3. The window engine *with incident holds*: desired state is constant from T up to
   ``next_change``, ``next_change`` is the same seen from anywhere in between, and the state differs
   at ``next_change`` (tests/test_properties.py checks this for windows alone, through the CLI).
4. The signer signs what the official SDK's signer signs for random (unicode) query keys and values,
   the emulator's verifier accepts it and refuses a wrong secret or a tampered query, and the
   canonical query round-trips through ``parse_query``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers import sdk_authorization, sdk_canonical_query
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.signer import AcsV3Auth, canonical_query, parse_query
from esa_scheduler.emulator.models import ApiError
from esa_scheduler.emulator.verify import HttpRequest, KeyPair, Verifier
from esa_scheduler.engine.holds import Hold
from esa_scheduler.engine.planner import Planner, TaskRef, managed_tasks
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.engine.schedule.model import Schedule
from esa_scheduler.errors import EventError, ScheduleError
from esa_scheduler.invocation.events.reader import EventReader

UTC = timezone.utc
NOW = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def load_text(scratch: Path, content: str | bytes) -> Schedule | None:
    """Load ``content`` as a schedule file; only ``ScheduleError`` may escape as a refusal."""
    path = scratch / "fuzz.yaml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(content)
    try:
        return load_schedule(path)
    except ScheduleError as exc:
        assert exc.problems, "a ScheduleError lists its problems"
        assert all(isinstance(p, str) and p and "\n" not in p for p in exc.problems), exc.problems
        return None


# --- 1. the schedule loader ---------------------------------------------------------------------

YAML_TOKENS = [
    "version: 1\n", "version: 2\n", "timezone: ", "tasks:\n", "windows:\n", "incidents:\n", "tick: ",
    "safety: ", "default_status: ", "mode: ", "- ", "  ", "    ", "name: ", "pattern: ", "site_id: ",
    "cron: ", "duration: ", "end_cron: ", "start: ", "end: ", "skip_dates: ", "active_from: ",
    "active_until: ", "priority: ", "status: ", "ttl: ", "match: ", "release_on: ", "data: ", "type: ",
    "\n", ":", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ", "!!int ", "!!binary ", "!!python/none ",
    "'", '"', "#", "|\n", ">\n", "---\n", "...\n", "? ", "%YAML 1.1\n", "\t", "~", "null", "true", "yes",
    ".nan", ".inf", "-.inf", "0x1F", "0o17", "1_000", "1e400", "-1", "0", "1", "2147483648",
    "99999999999999999999", "1h", "0s", "PT1H", "P1Y", "99999999999999d", "1.5h", "UTC", "Europe/Berlin",
    "../etc/passwd", '"0 2 * * *"', '"*/0 * * * *"', '"0 24 * * *"', '"0 0 30 2 *"', "@daily",
    "2027-02-30", "2027-03-28", "2027-03-28T02:30:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z",
    "2027-01-01T00:00:00Z", "online", "offline", "enforce", "transitions", "access-a", '"waf-*"', "*", "é",
    "\u2028", "\x85", "\ufeff",
]  # fmt: skip


@FUZZ
@given(tokens=st.lists(st.sampled_from(YAML_TOKENS), max_size=40))
@example(tokens=["version: 1\n", "tasks:\n", "- ", "name: ", "access-a", "\n", "windows:\n", "- ", "{",
                 "name: ", "w", ", ", "tasks: ", "[", "access-a", "]", ", ", "cron: ", '"0 2 * * *"', ", ",
                 "duration: ", "99999999999999d", "}", "\n"])  # fmt: skip
@example(tokens=["version: ", "!!int ", "\n"])  # PyYAML's int constructor raises IndexError on ""
def test_loader_on_yaml_token_soup(scratch: Path, tokens: list[str]) -> None:
    load_text(scratch, "".join(tokens))


@FUZZ
@given(content=st.binary(max_size=400))
def test_loader_on_random_bytes(scratch: Path, content: bytes) -> None:
    load_text(scratch, content)


@FUZZ
@given(content=st.text(max_size=300))
def test_loader_on_random_text(scratch: Path, content: str) -> None:
    load_text(scratch, content)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC, None])),
)
NESTED = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(0, 3)), children, max_size=4),
    ),
    max_leaves=25,
)


@FUZZ
@given(document=NESTED)
@example(document={"\n": None})  # an unknown key with a line break must not break "one line per problem"
def test_loader_on_random_structures(scratch: Path, document: Any) -> None:
    load_text(scratch, yaml.safe_dump(document, allow_unicode=True))


# Near-valid schedules: the right keys with values that are often, but not always, right.
DURATIONS = st.one_of(
    st.sampled_from(["1h", "30m", "1h30m", "PT1H", "2d", "0s", "-1h", "1x", "P1Y", "99999999999999d", "1e400h"]),
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 10**20), st.sampled_from("smhdSMHD")),
    st.text(max_size=8),
    st.integers(),
)
CRONS = st.one_of(
    st.sampled_from(["0 2 * * *", "30 2 * * sun", "0 0 L * *", "0 0 * * 5#2", "0 24 * * *", "*/0 * * * *", "@daily"]),
    st.lists(st.sampled_from(["*", "0", "59", "L", "5#6", "1-3", "*/2", "mon", "13", "-1", "60"]), max_size=7).map(
        " ".join
    ),
)
INSTANTS = st.one_of(
    st.sampled_from(
        [
            "2027-03-28T02:30:00",
            "2027-10-31T02:30:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2027-05-01T10:00:00Z",
        ]
    ),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.text(max_size=10),
)
DATES = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.sampled_from(["2027-02-30", "2027-13-01", "tomorrow"]),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
)
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "Australia/Lord_Howe", "Mars/Base", "", "../../etc/passwd", "+01:00"])
SELECTORS = st.lists(st.sampled_from(["access-a", "access-*", "*", "", "nobody", "[", "waf-?"]), max_size=3)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with any subset of ``fields`` (and sometimes an unknown key)."""
    return st.fixed_dictionaries({}, optional={**fields, "surprise": st.integers()})


WINDOW = optional(
    name=st.sampled_from(["w1", "w2", "", "w1"]),
    tasks=SELECTORS,
    status=st.sampled_from(["online", "offline", "paused"]),
    priority=st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.just("high")),
    cron=CRONS,
    duration=DURATIONS,
    end_cron=CRONS,
    timezone=ZONES,
    skip_dates=st.lists(DATES, max_size=2),
    active_from=DATES,
    active_until=DATES,
    start=INSTANTS,
    end=INSTANTS,
)
TASK = optional(
    name=st.sampled_from(["access-a", "access-b", "access-*", "", "waf-1"]),
    pattern=st.sampled_from(["waf-*", "", "["]),
    site_id=st.one_of(st.integers(-5, 2**70), st.just("abc")),
    default_status=st.sampled_from(["online", "offline", "maybe"]),
    mode=st.sampled_from(["enforce", "transitions", "sometimes"]),
)
INCIDENT = optional(
    name=st.sampled_from(["i1", "i1", ""]),
    match=st.one_of(st.just({"type": "cms:*"}), st.just("cms"), NESTED),
    tasks=SELECTORS,
    status=st.sampled_from(["online", "offline", "x"]),
    ttl=DURATIONS,
    release_on=st.one_of(st.just({"data": {"alertState": "OK"}}), NESTED),
)
SCHEDULE_DOC = optional(
    version=st.sampled_from([1, 2, "1", True, None]),
    timezone=ZONES,
    default_status=st.sampled_from(["online", "offline", "maybe"]),
    mode=st.sampled_from(["enforce", "transitions", "x"]),
    tick=DURATIONS,
    safety=st.one_of(
        optional(max_changes=st.integers(-3, 2**70), max_change_ratio=st.floats(allow_nan=True, allow_infinity=True)),
        NESTED,
    ),
    tasks=st.one_of(st.lists(TASK, max_size=4), NESTED),
    windows=st.one_of(st.lists(WINDOW, max_size=3), NESTED),
    incidents=st.one_of(st.lists(INCIDENT, max_size=2), NESTED),
)


@FUZZ
@given(document=SCHEDULE_DOC)
@example(document={"version": 1, "tasks": [{"name": "access-a"}], "windows": [
    {"name": "w", "tasks": ["access-a"], "cron": "0 2 * * *", "active_from": "2027-02-30"}]})  # fmt: skip
def test_loader_on_near_valid_schedules(scratch: Path, document: dict[str, Any]) -> None:
    schedule = load_text(scratch, yaml.safe_dump(document, allow_unicode=True))
    if schedule is not None:
        # Whatever loads can be planned at an ordinary instant without an exception.
        Planner(schedule, NOW).decide(managed_tasks(schedule, [TaskRef("access-a"), TaskRef("waf-1")]))


# --- 2. the event reader ------------------------------------------------------------------------

SCHEDULE_FOR_EVENTS = """\
version: 1
tasks:
  - name: access-a
  - pattern: "waf-*"
incidents:
  - name: origin-errors
    match: {type: "cms:CloudMonitor:*", data: {alertName: "origin-5xx*", alertState: ALERT}}
    tasks: ["access-*"]
    ttl: 2h
    release_on: {data: {alertState: OK}}
"""


@pytest.fixture(scope="module")
def reader(scratch: Path) -> EventReader:
    path = scratch / "events-schedule.yaml"
    path.write_text(SCHEDULE_FOR_EVENTS, encoding="utf-8")
    return EventReader(load_schedule(path), datetime(2026, 11, 28, 2, 30, tzinfo=UTC))  # a pinned "now"


def read_event(reader: EventReader, body: Any) -> None:
    try:
        reader.read(body)
    except EventError as exc:
        assert str(exc), "an EventError says what is wrong"


JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
EVENT_INSTANTS = st.one_of(
    st.sampled_from(
        ["2026-11-28T02:30:00Z", "2026-11-28T02:30:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z"]
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)).map(
        lambda d: d.isoformat()
    ),
    JSON,
)
COMMAND = optional(
    action=st.sampled_from(["reconcile", "hold", "release", "explode", 5]),
    at=EVENT_INSTANTS,
    tasks=st.one_of(st.lists(st.sampled_from(["access-a", "waf-*", "nobody", "", "*"]), max_size=3), JSON),
    status=st.sampled_from(["online", "offline", "paused"]),
    reason=st.one_of(st.sampled_from(["INC-1", ""]), JSON),
    ttl=DURATIONS,
    until=EVENT_INSTANTS,
    id=st.sampled_from(["h-1", "../x", "", "a" * 200]),
    by=JSON,
    dry_run=JSON,
    force=JSON,
)
TIMER = optional(triggerTime=EVENT_INSTANTS, triggerName=JSON, payload=st.one_of(st.just('{"dry_run": true}'), JSON))
CLOUD_EVENT = optional(
    specversion=st.sampled_from(["1.0", "0.3", 1.0]),
    id=st.one_of(st.just("e-1"), JSON),
    source=st.one_of(st.just("acs.cms"), JSON),
    type=st.sampled_from(["cms:CloudMonitor:AlarmStateChanged", "other", ""]),
    subject=JSON,
    data=st.one_of(
        st.just({"alertName": "origin-5xx-rate", "alertState": "ALERT"}),
        st.just({"alertName": "origin-5xx-rate", "alertState": "OK"}),
        COMMAND,
        JSON,
    ),
)
EVENT = st.one_of(COMMAND, TIMER, CLOUD_EVENT, JSON)


@FUZZ
@given(value=st.one_of(EVENT, st.lists(EVENT, max_size=3)))
@example(value={"action": "hold", "tasks": ["access-a"], "reason": "x", "ttl": "99999999999999d"})
@example(value={"action": "reconcile", "at": "0001-01-01T00:00:00+01:00"})
def test_event_reader_on_json_values(reader: EventReader, value: Any) -> None:
    read_event(reader, value)
    read_event(reader, json.dumps(value).encode())


@FUZZ
@given(body=st.binary(max_size=300))
def test_event_reader_on_random_bytes(reader: EventReader, body: bytes) -> None:
    read_event(reader, body)


@FUZZ
@given(depth=st.integers(min_value=1, max_value=60_000), opener=st.sampled_from([b"[", b'{"a":']))
@example(depth=100_000, opener=b"[")
def test_event_reader_on_deep_nesting(reader: EventReader, depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    leaf = b"" if opener == b"[" else b"1"
    read_event(reader, opener * depth + leaf + closer * depth)


# --- 3. the window engine with holds --------------------------------------------------------------

TASKS = ["a", "b", "c"]
HORIZON = timedelta(days=14)
"""Searched ahead by each plan here (400 days in production): every edge drawn below falls well within."""
WINDOW_KINDS = [
    '    cron: "0 2 * * *"\n    duration: 1h\n',
    '    cron: "30 * * * *"\n    duration: 20m\n',
    '    cron: "0 22 * * fri"\n    end_cron: "0 6 * * mon"\n',
    '    cron: "0 12 * * *"\n    duration: 26h\n',
    '    start: "2027-03-27T13:00:00Z"\n    end: "2027-03-28T03:00:00Z"\n',
]


@st.composite
def schedules_with_holds(draw: st.DrawFn) -> tuple[str, list[Hold], datetime]:
    zone = draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
    lines = [f"version: 1\ntimezone: {zone}\ndefault_status: {draw(st.sampled_from(['online', 'offline']))}\n"]
    lines.append("tasks:\n" + "".join(f"  - name: {t}\n" for t in TASKS))
    lines.append("windows:\n")
    for index in range(draw(st.integers(1, 3))):
        selectors = draw(st.sampled_from([["a"], ["b"], ["a", "c"], ["*"]]))
        lines.append(
            f"  - name: w{index}\n    tasks: {json.dumps(selectors)}\n"
            f"    status: {draw(st.sampled_from(['offline', 'online']))}\n"
            f"    priority: {draw(st.integers(0, 1))}\n" + draw(st.sampled_from(WINDOW_KINDS))
        )
    at = NOW + timedelta(minutes=draw(st.integers(0, 3 * 1440)), seconds=draw(st.sampled_from([0, 1, 59])))
    holds = []
    for index in range(draw(st.integers(0, 3))):
        created = at + timedelta(minutes=draw(st.integers(-2 * 1440, 2 * 1440)))
        holds.append(
            Hold(
                id=f"h{index}",
                tasks=tuple(draw(st.sampled_from([["a"], ["b", "c"], ["*"], ["?"]]))),
                status=draw(st.sampled_from(["online", "offline"])),
                created_at=created,
                expires_at=created + timedelta(minutes=draw(st.integers(1, 2 * 1440))),
            )
        )
    return "".join(lines), holds, at


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=schedules_with_holds(), fractions=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=2))
def test_desired_state_with_holds_is_constant_until_next_change(
    scratch: Path, case: tuple[str, list[Hold], datetime], fractions: list[float]
) -> None:
    text, holds, at = case
    path = scratch / "holds.yaml"
    path.write_text(text, encoding="utf-8")
    schedule = load_schedule(path)
    tasks = managed_tasks(schedule, [])

    seen: dict[datetime, dict[str, tuple[str, datetime | None, str]]] = {}

    def decide(instant: datetime) -> dict[str, tuple[str, datetime | None, str]]:
        if instant not in seen:
            plan = Planner(schedule, instant, holds, horizon=HORIZON).decide(tasks)
            seen[instant] = {d.task.ref.name: (d.desired, d.next_change, d.source) for d in plan.decisions}
        return seen[instant]

    first = decide(at)
    for name, (desired, change, source) in first.items():
        context = f"task {name} at {at.isoformat()} ({source}), holds {[h.model_dump() for h in holds]}:\n{text}"
        active = [h for h in holds if h.active_at(at) and any(s in ("*", "?", name) for s in h.tasks)]
        if active:
            newest = max(active, key=lambda h: (h.created_at, h.id))
            assert (desired, source) == (newest.status, f"hold:{newest.id}"), context
        if change is None:
            for days in (1, 7, 13):
                assert decide(at + timedelta(days=days))[name][0] == desired, context
            continue
        assert change > at, context
        span = (change - at).total_seconds()
        samples = {at + timedelta(seconds=1), change - timedelta(seconds=1)}
        samples |= {at + timedelta(seconds=round(span * f)) for f in fractions}
        for sample in sorted(s for s in samples if at < s < change):
            inner = decide(sample)[name]
            assert inner[0] == desired, f"{context}\ndiffers at {sample.isoformat()}"
            assert inner[1] == change, f"{context}\nnext_change seen from {sample.isoformat()}: {inner[1]}"
        assert decide(change)[name][0] != desired, f"{context}\nsame state at next_change {change.isoformat()}"


# --- 4. signer and verifier -----------------------------------------------------------------------

QUERY_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
SIGNED_AT = datetime(2027, 1, 1, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(
    # distinct keys, as every request the client builds has (its parameters are a mapping)
    params=st.lists(st.tuples(QUERY_TEXT.filter(bool), QUERY_TEXT), max_size=5, unique_by=lambda kv: kv[0]),
    secret=st.text(alphabet=st.characters(codec="ascii", min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    token=st.one_of(st.none(), st.text(alphabet="abcdefABCDEF0123456789+/=", min_size=1, max_size=30)),
)
def test_signed_requests_verify_and_tampering_does_not(
    params: list[tuple[str, str]], secret: str, token: str | None
) -> None:
    request = httpx.Request(
        "GET",
        "https://esa.cn-hangzhou.aliyuncs.com/",
        params=tuple(params),
        headers={"x-acs-action": "ListUserDeliveryTasks", "x-acs-version": "2024-09-10"},
    )
    AcsV3Auth(Credentials("fuzz-id", secret, token), clock=lambda: SIGNED_AT, nonce=lambda: "n" * 32).sign(request)
    wire_query = request.url.query.decode("ascii")
    # The official SDK, given the values as they were meant, signs the same: the product's
    # canonicalisation (which the emulator's verifier shares) is not its own judge.
    assert request.headers["Authorization"] == sdk_authorization(request, "fuzz-id", secret, params)
    # The wire carries exactly the canonical query, and it decodes back to what was asked for.
    assert wire_query == sdk_canonical_query(params)
    assert sorted(parse_query(wire_query)) == sorted(params)

    def verify(query: str, with_secret: str) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        keys = {"fuzz-id": KeyPair(with_secret, token)}
        Verifier(keys, lambda: SIGNED_AT).verify(HttpRequest("GET", "/", query, headers, b"", "127.0.0.1"))

    verify(wire_query, secret)
    with pytest.raises(ApiError, match="SignatureDoesNotMatch"):
        verify(wire_query, secret + "x")
    assume(params)
    key, value = params[0]
    tampered = canonical_query([(key, value + "x"), *params[1:]])
    with pytest.raises(ApiError, match="SignatureDoesNotMatch"):
        verify(tampered, secret)
