"""A hostile ESA on loopback (issue 14): every scenario ends with every managed task reported or the
run failed closed, a bounded number of calls, a bounded run time, and no secret in any output."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import clean_environment, endpoint_env, fc_context, parse_lines, set_env, updates, write_schedule

import handler as fc_handler
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import Emulator, Faults
from esa_scheduler.invocation.function import RunFailed, Target, execute
from esa_scheduler.invocation.reconciler import RunSummary

AT = "2026-11-28T02:30:00Z"
"""Inside the ``nightly`` window of ``SCHEDULE``: every managed task should go offline."""
TASKS = 240
SCHEDULE = """\
version: 1
timezone: UTC
tasks:
  - pattern: "t-*"
  - name: s-1
    site_id: 1001
windows:
  - name: nightly
    tasks: ["t-*", "s-*"]
    status: offline
    cron: "0 2 * * *"
    duration: 1h
"""
SEED = [{"TaskName": f"t-{i:03d}", "Status": "online"} for i in range(TASKS)] + [
    {"TaskName": "s-1", "Status": "online", "SiteId": 1001}
]
STS_KEY_ID = "STS.hardening-key-id"
STS_SECRET = "sts-secret-that-must-never-show-0123"
STS_TOKEN = "sts-token-that-must-never-show-CAIS0123456789"
STS = Credentials(STS_KEY_ID, STS_SECRET, STS_TOKEN)


@pytest.fixture
def schedule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    clean_environment(monkeypatch, tmp_path)
    return write_schedule(tmp_path / "schedule", SCHEDULE)


@pytest.fixture
def esa() -> Iterator[Emulator]:
    with Emulator(tasks=SEED, sts_credentials=[(STS_KEY_ID, STS_SECRET, STS_TOKEN)]) as running:
        yield running


def run(
    esa: Emulator, schedule: Path, *, budget_s: float | None = None, **env: str
) -> tuple[RunSummary, list[dict[str, Any]], str]:
    stream = io.StringIO()
    summary = execute(
        {"action": "reconcile", "at": AT},
        target=Target(esa.url, STS),
        schedule_path=str(schedule),
        state=str(schedule.parent.parent / "state"),
        budget_s=budget_s,
        stream=stream,
        environ={"ESA_MAX_RPS": "0", **env},
    )
    return summary, parse_lines(stream.getvalue()), stream.getvalue()


def list_calls(esa: Emulator) -> int:
    by_action = esa.stats["by_action"]
    return int(by_action.get("ListUserDeliveryTasks", 0))


def offline(esa: Emulator) -> int:
    return sum(1 for task in esa.tasks.values() if task.Status == "offline")


def assert_failed_closed(esa: Emulator, summary: RunSummary, *needles: str) -> None:
    assert summary.failed and summary.results == []
    assert summary.error is not None
    for needle in needles:
        assert needle in summary.error, summary.error
    assert updates(esa) == 0 and offline(esa) == 0


# --- listings are complete or the run fails closed ------------------------------------------------


def test_an_honest_listing_takes_exactly_the_pages_needed(esa: Emulator, schedule: Path) -> None:
    summary, _, _ = run(esa, schedule)
    assert not summary.failed
    assert summary.counts["updated"] == TASKS + 1
    assert list_calls(esa) == 3  # 240 tasks at 100 a page


def test_a_capped_page_size_is_followed_to_the_end(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(page_size_cap=20)
    summary, _, _ = run(esa, schedule)
    assert not summary.failed
    assert summary.counts["updated"] == TASKS + 1
    assert offline(esa) == TASKS + 1
    assert list_calls(esa) == TASKS // 20


def test_a_repeated_page_fails_closed(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(page_size_cap=50, repeat_page=3)
    summary, lines, _ = run(esa, schedule)
    assert_failed_closed(esa, summary, "IncompleteListing", "page 3 repeats task 't-050'")
    assert lines[-1]["event"] == "run.summary" and lines[-1]["ok"] is False


def test_an_inflated_total_count_costs_a_few_calls_then_fails_closed(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(total_count=100_000)
    summary, _, _ = run(esa, schedule)
    assert_failed_closed(esa, summary, "TotalCount is 100000", "held 240 distinct tasks")
    assert list_calls(esa) <= 3 + 2


@pytest.mark.parametrize(("cap", "concurrency"), [(30, "16"), (10, "16"), (5, "64")])
def test_an_inflated_total_count_wastes_at_most_three_calls_whatever_the_concurrency(
    esa: Emulator, schedule: Path, cap: int, concurrency: str
) -> None:
    esa.faults = Faults(total_count=100_000, page_size_cap=cap)
    summary, _, _ = run(esa, schedule, ESA_CONCURRENCY=concurrency)
    assert_failed_closed(esa, summary, "TotalCount is 100000", "held 240 distinct tasks")
    needed = TASKS // cap + 1  # the pages that hold the 240 tasks, then the short or empty page that ends them
    assert needed <= list_calls(esa) <= needed + 3


def test_an_inflated_total_count_on_a_site_listing_fails_closed_too(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(total_count=1)  # true for the site (1 task), a lie for the account's 240
    summary, _, _ = run(esa, schedule)
    assert_failed_closed(esa, summary, "ListUserDeliveryTasks", "TotalCount is 1")


def test_handler_raises_on_an_incomplete_listing(
    esa: Emulator, schedule: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    esa.faults = Faults(page_size_cap=50, repeat_page=2)
    set_env(monkeypatch, {**endpoint_env(esa.url), "ESA_SCHEDULE": str(schedule)})
    event = json.dumps({"action": "reconcile", "at": AT}).encode()
    with pytest.raises(RunFailed, match="IncompleteListing"):
        fc_handler.handler(event, fc_context())
    assert updates(esa) == 0


# --- the deadline bounds everything ---------------------------------------------------------------

READ_TIMEOUT = 0.5
BUDGET = 2.0
CUT_OFF = 1.0
"""``deadline_from`` keeps at least 5 s (at most half the budget) for calls in flight: 2 s -> 1 s."""
SLACK = 1.0
"""Scheduling noise on a busy 2-core machine; the point is "bounded", not "fast"."""


def timed_run(esa: Emulator, schedule: Path) -> tuple[RunSummary, list[dict[str, Any]], float]:
    started = time.monotonic()
    summary, lines, _ = run(esa, schedule, budget_s=BUDGET, ESA_READ_TIMEOUT=str(READ_TIMEOUT))
    return summary, lines, time.monotonic() - started


def test_hanging_updates_end_by_the_deadline_plus_one_read_timeout(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(hang_actions=frozenset({"UpdateUserDeliveryTaskStatus", "UpdateSiteDeliveryTaskStatus"}))
    summary, lines, elapsed = timed_run(esa, schedule)
    assert elapsed <= CUT_OFF + READ_TIMEOUT + SLACK
    assert summary.failed and summary.error is not None and summary.error.startswith("deadline")
    results = [line for line in lines if line["event"] == "task.result"]
    assert len(results) == TASKS + 1, "every managed task is reported"
    assert {(r["action"], r["error"]) for r in results} == {("skipped", "deadline")}
    # tasks whose attempt hung say why they were retrying; the others never started
    assert {r["error_code"] for r in results} <= {"Timeout", None}
    assert any(r["error_code"] == "Timeout" for r in results)
    assert lines[-1]["event"] == "run.summary" and lines[-1]["ok"] is False


def test_a_hanging_listing_ends_by_the_deadline_plus_one_read_timeout(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(hang_actions=frozenset({"*"}))
    summary, _, elapsed = timed_run(esa, schedule)
    assert elapsed <= CUT_OFF + READ_TIMEOUT + SLACK
    assert_failed_closed(esa, summary, "DeadlineExceeded", "Timeout")


def test_throttling_longer_than_the_deadline_stops_without_waiting(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(too_many_requests_rate=1.0, retry_after_s=10)
    summary, _, elapsed = timed_run(esa, schedule)
    assert elapsed <= CUT_OFF + SLACK
    assert_failed_closed(esa, summary, "DeadlineExceeded", "HTTPError")
    assert list_calls(esa) <= 2  # the account and site listings' first attempts: no wait fits in the budget


def test_the_handler_raises_when_the_deadline_leaves_tasks_undone(
    esa: Emulator, schedule: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    esa.faults = Faults(hang_actions=frozenset({"UpdateUserDeliveryTaskStatus"}))
    set_env(
        monkeypatch, {**endpoint_env(esa.url), "ESA_SCHEDULE": str(schedule), "ESA_READ_TIMEOUT": str(READ_TIMEOUT)}
    )
    event = json.dumps({"action": "reconcile", "at": AT}).encode()
    with pytest.raises(RunFailed, match="deadline"):
        fc_handler.handler(event, fc_context(timeout=BUDGET))
    monkeypatch.setenv("ESA_FAIL_ON_ERROR", "false")
    result = fc_handler.handler(event, fc_context(timeout=BUDGET))
    assert result["ok"] is False and result["tasks"] == TASKS + 1 and result["counts"]["skipped"] >= TASKS


# --- throttling by status -------------------------------------------------------------------------


def test_http_429_pages_are_retried_until_the_run_converges(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(too_many_requests_rate=0.1, retry_after_s=0, seed=7)
    summary, lines, _ = run(esa, schedule)
    assert not summary.failed
    assert offline(esa) == TASKS + 1
    assert esa.stats["by_outcome"]["http-429"] > 0
    retries = [line for line in lines if line["event"] == "api.retry"]
    assert retries and {line["error_code"] for line in retries} == {"HTTPError"}


# --- no credential on any output ------------------------------------------------------------------


def test_echoed_credentials_never_reach_the_logs(esa: Emulator, schedule: Path) -> None:
    esa.faults = Faults(
        echo_credentials=True, too_many_requests_rate=0.05, unavailable_rate=0.05, retry_after_s=0, seed=3
    )
    esa.script_fault("t-001", "InvalidParameter", count=1)
    summary, lines, raw = run(esa, schedule)
    assert STS_SECRET not in raw and STS_TOKEN not in raw
    echoed = [line for line in lines if line["event"] in ("api.retry", "task.result") and line.get("error")]
    assert echoed and all("request signed with ***" in line["error"] for line in echoed)
    failed = [r for r in summary.results if r.action == "failed"]
    assert [r.decision.task.ref.name for r in failed] == ["t-001"]
    assert failed[0].error is not None and STS_SECRET not in failed[0].error


# --- the last completed run, for transitions mode -------------------------------------------------


def test_the_last_run_record_never_moves_back_and_survives_garbage(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from esa_scheduler.invocation.holds import HoldStore
    from esa_scheduler.invocation.statefile import (
        LAST_RUN_FILE,
        last_completed_run,
        record_completed_run,
        transitions_since,
    )

    later = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
    record_completed_run(tmp_path, later)
    record_completed_run(tmp_path, later - timedelta(hours=1))  # a CLI run at a past --at
    assert last_completed_run(tmp_path) == later
    assert HoldStore(tmp_path).active(later) == []  # the record is not mistaken for a hold
    tick = timedelta(minutes=1)
    assert transitions_since(later, later + timedelta(minutes=5), tick) == later
    assert transitions_since(later, later + timedelta(days=3), tick) == later + timedelta(days=2)
    assert transitions_since(later, later, tick) == later - tick
    (tmp_path / LAST_RUN_FILE).write_text("{not json", encoding="utf-8")
    assert last_completed_run(tmp_path) is None
    assert transitions_since(None, later, tick) == later - tick
