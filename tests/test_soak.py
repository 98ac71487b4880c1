"""Fault soak: one run over 1,000 managed tasks against a misbehaving emulator must converge.

The emulator throttles a seeded 30% of the tasks that need a change (``Throttling.User`` with
``x-acs-retry-after``, scripted per task), answers 10% of all API requests with 503
``ServiceUnavailable``, drops 5% of connections without an answer, and adds jittered latency.
One run (``esa-scheduler run``, i.e. one ``execute``, in a child process so that a run that does not
converge can be stopped at the time limit) must then

- bring every managed task to its desired state (checked on the emulator's final state),
- log exactly one ``task.result`` line per managed task, with its final action,
- send no Update call for a task that was already right (a recording emulator notes the
  TaskName of every Update request, retries included), and
- report summary counts that add up to the managed tasks, with ``updated`` == the tasks that
  needed a change.

A second test checks that a large run stops starting calls at its deadline, so that the summary
is always written before FC's timeout.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import child_environment, endpoint_env

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.signer import parse_query
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator, Faults
from esa_scheduler.emulator.replies import Reply
from esa_scheduler.emulator.verify import HttpRequest
from esa_scheduler.invocation.function import Target, execute

pytestmark = pytest.mark.slow

SEED = 20261128
AT = "2026-11-28T02:30:00Z"
"""Inside the ``nightly`` window (02:00-03:00 UTC), outside ``weekly``."""

USER_PATTERN_TASKS = 900
NAMED_TASKS = 50
SITE_TASKS = 50
SITE_ID = 2001
MANAGED = USER_PATTERN_TASKS + NAMED_TASKS + SITE_TASKS
UNMANAGED = 40

THROTTLED_SHARE = 0.30
UNAVAILABLE_RATE = 0.10
DROP_RATE = 0.05
LATENCY_MS = 1.0
JITTER_MS = 6.0
TIME_LIMIT_S = 45.0

UPDATE_ACTIONS = ("UpdateUserDeliveryTaskStatus", "UpdateSiteDeliveryTaskStatus")

NAMED_ENTRIES = "".join(
    f"  - name: named-{i:03d}\n" + ("    default_status: offline\n" if i % 2 else "") for i in range(NAMED_TASKS)
)
SCHEDULE = f"""\
version: 1
timezone: UTC
default_status: online
tasks:
  - pattern: "soak-*"
  - pattern: "edge-*"
    site_id: {SITE_ID}
{NAMED_ENTRIES}\
windows:
  - name: nightly
    tasks: ["soak-a*", "edge-a*"]
    status: offline
    cron: "0 2 * * *"
    duration: 1h
  - name: weekly
    tasks: ["soak-b*"]
    status: offline
    cron: "0 12 * * sun"
    duration: 2h
"""

Key = tuple[int | None, str]


class RecordingEmulator(Emulator):
    """The emulator, noting the (SiteId, TaskName) of every Update request it receives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.update_requests: list[Key] = []
        self._record_lock = threading.Lock()

    def handle(self, request: HttpRequest) -> Reply:
        action = request.headers.get("x-acs-action", "")
        if action in UPDATE_ACTIONS:
            params = dict(parse_query(request.query))
            site = int(params["SiteId"]) if action == "UpdateSiteDeliveryTaskStatus" else None
            with self._record_lock:
                self.update_requests.append((site, params.get("TaskName", "")))
        return super().handle(request)


def desired_state(site: int | None, name: str) -> str:
    """What ``SCHEDULE`` says at ``AT``, written out independently of the planner."""
    if site is None and name.startswith("soak-a"):
        return "offline"
    if site == SITE_ID and name.startswith("edge-a"):
        return "offline"
    if site is None and name.startswith("named-"):
        return "offline" if int(name.split("-")[1]) % 2 else "online"
    return "online"


def inventory(rng: random.Random) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for i in range(USER_PATTERN_TASKS):
        group = "a" if i % 3 == 0 else "b" if i % 3 == 1 else "c"
        tasks.append({"TaskName": f"soak-{group}{i:04d}", "Status": rng.choice(["online", "offline"])})
    for i in range(NAMED_TASKS):
        tasks.append({"TaskName": f"named-{i:03d}", "Status": rng.choice(["online", "offline"])})
    for i in range(SITE_TASKS):
        group = "a" if i % 2 else "z"
        tasks.append(
            {"TaskName": f"edge-{group}{i:03d}", "Status": rng.choice(["online", "offline"]), "SiteId": SITE_ID}
        )
    # Never touched, never reported: other names, and a soak-* name on a site no pattern covers.
    for i in range(UNMANAGED):
        tasks.append({"TaskName": f"other-{i:03d}", "Status": rng.choice(["online", "offline"])})
    tasks.append({"TaskName": "soak-a9999", "Status": "online", "SiteId": 3003})
    return tasks


def run_in_subprocess(emulator: Emulator, schedule: Path, tmp: Path) -> tuple[int | None, str, str, float]:
    """``esa-scheduler run`` (that is, one ``execute``) in a child process, killed at ``TIME_LIMIT_S``.

    A child process is the only way to bound a run that does not converge: an in-process run
    could not be stopped, and would go on writing to the shared logger during later tests.
    """
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = child_environment({"HOME": str(home), **endpoint_env(emulator.url), "ESA_CONCURRENCY": "32"})
    command = [sys.executable, "-m", "esa_scheduler", "run", "--schedule", str(schedule), "--at", AT]
    command += ["--state-dir", str(tmp / "state"), "--json"]
    started = time.monotonic()
    try:
        done = subprocess.run(command, env=env, cwd=tmp, capture_output=True, timeout=TIME_LIMIT_S, check=False)
    except subprocess.TimeoutExpired as expired:
        return None, _text(expired.stdout), _text(expired.stderr), time.monotonic() - started
    return done.returncode, done.stdout.decode(), done.stderr.decode(), time.monotonic() - started


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def test_one_run_converges_under_faults(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    seed_tasks = inventory(rng)
    initial: dict[Key, str] = {(t.get("SiteId"), t["TaskName"]): t["Status"] for t in seed_tasks}
    managed = {key for key in initial if key[1].startswith(("soak-", "named-", "edge-")) and key[0] != 3003}
    assert len(managed) == MANAGED
    plan = {key: desired_state(*key) for key in managed}
    needs_change = {key for key in managed if initial[key] != plan[key]}
    already_right = managed - needs_change
    # The seed gives a real mix, so both halves of the claim are exercised.
    assert 300 < len(needs_change) < 700, len(needs_change)

    schedule = tmp_path / "soak.yaml"
    schedule.write_text(SCHEDULE, encoding="utf-8")
    faults = Faults(
        latency_ms=LATENCY_MS,
        jitter_ms=JITTER_MS,
        unavailable_rate=UNAVAILABLE_RATE,
        drop_rate=DROP_RATE,
        seed=SEED,
    )
    emulator = RecordingEmulator(tasks=seed_tasks, faults=faults)
    with emulator:
        throttled = rng.sample(sorted(needs_change, key=str), round(THROTTLED_SHARE * len(needs_change)))
        for site, name in throttled:
            emulator.script_fault(name, "Throttling.User", count=1, site_id=site)
        code, out, err, elapsed = run_in_subprocess(emulator, schedule, tmp_path)
        final = {key: task.Status for key, task in emulator.tasks.items()}
        stats = emulator.stats
        update_requests = list(emulator.update_requests)

    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    results = [line for line in lines if line["event"] == "task.result"]
    retries = Counter(line["error_code"] for line in lines if line["event"] == "api.retry")
    not_updated = Counter(r["error_code"] for r in results if r["action"] == "failed")
    diverged = {key: (final[key], plan[key]) for key in managed if final[key] != plan[key]}
    report = (
        f"exit {code} after {elapsed:.1f}s; {stats['total']} API requests, outcomes {stats['by_outcome']}; "
        f"{len(results)} task.result lines, {len(diverged)} task(s) not converged, failed by code "
        f"{dict(not_updated)}, retries by code {dict(retries)}"
    )
    assert code is not None, f"the run did not finish within {TIME_LIMIT_S:.0f}s: {report}"
    assert "Traceback" not in err, err[-3000:]

    # The faults really happened, in roughly the advertised proportions.
    assert stats["by_outcome"].get("Throttling.User", 0) >= len(throttled), report
    assert stats["by_outcome"].get("ServiceUnavailable", 0) > 0.05 * stats["total"], report
    assert stats["by_outcome"].get("dropped", 0) > 0.02 * stats["total"], report

    # 1. Every managed task converged; nothing else was touched.
    assert diverged == {}, f"not converged, e.g. {sorted(diverged.items(), key=str)[:5]}: {report}"
    untouched = {key: final[key] for key in initial if key not in managed and final[key] != initial[key]}
    assert untouched == {}, report

    # 2. Exactly one task.result line per managed task, with its final action.
    per_task = Counter((r["site_id"], r["task"]) for r in results)
    assert set(per_task) == managed, report
    assert {key: n for key, n in per_task.items() if n != 1} == {}
    actions = {(r["site_id"], r["task"]): r["action"] for r in results}
    assert actions == {key: "updated" if key in needs_change else "unchanged" for key in managed}, report
    for r in results:
        assert r["desired"] == plan[(r["site_id"], r["task"])]
        assert r["previous"] == initial[(r["site_id"], r["task"])]
    attempts = {(r["site_id"], r["task"]): r["attempts"] for r in results}
    assert all(attempts[key] >= 2 for key in throttled)

    # 3. No Update call for a task that was already right; each changed task succeeded exactly once.
    assert set(update_requests) & already_right == set()
    assert set(update_requests) == needs_change
    ok_updates = sum(stats["by_action_outcome"].get(action, {}).get("ok", 0) for action in UPDATE_ACTIONS)
    assert ok_updates == len(needs_change), report

    # 4. The summary adds up, and the log's last line is the same summary.
    summary = json.loads(out)
    counts = summary["counts"]
    assert sum(counts.values()) == summary["tasks"] == MANAGED
    assert counts["updated"] == len(needs_change)
    assert counts["unchanged"] == len(already_right)
    assert counts["failed"] == counts["skipped"] == counts["missing"] == counts["would_update"] == 0
    assert summary["ok"] is True and summary["error"] is None and summary["blocked"] is None
    assert code == 0
    # A connection dropped while reused is re-sent once by the transport without a new client attempt.
    dropped = stats["by_outcome"].get("dropped", 0)
    assert stats["total"] - dropped <= summary["api_calls"] <= stats["total"], report
    assert lines[-1]["event"] == "run.summary" and lines[-1]["counts"] == counts


def test_deadline_stops_starting_calls_in_a_large_run(tmp_path: Path) -> None:
    """docs/operations.md, Failure handling: no call starts after the deadline's cut-off, so the summary
    is always written. With 200 changes at 50 ms each, two at a time (5 s of work) and a
    deadline 1 s in, the run must end soon after the deadline and skip what it could not start."""
    tasks = [{"TaskName": f"slow-{i:03d}", "Status": "offline"} for i in range(200)]
    schedule = tmp_path / "slow.yaml"
    schedule.write_text("version: 1\ntimezone: UTC\ntasks:\n  - pattern: 'slow-*'\n", encoding="utf-8")
    stream = io.StringIO()
    with Emulator(tasks=tasks, faults=Faults(latency_ms=50)) as emulator:
        started = time.monotonic()
        summary = execute(
            {"action": "reconcile", "at": AT},
            target=Target(emulator.url, Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)),
            schedule_path=str(schedule),
            state=str(tmp_path / "state"),
            budget_s=2.0,  # the deadline keeps max(5 s, 10%) in reserve, but never less than half: 1 s
            stream=stream,
            environ={"ESA_MAX_RPS": "0", "ESA_CONCURRENCY": "2"},
        )
        elapsed = time.monotonic() - started
        updated = sum(1 for t in emulator.tasks.values() if t.Status == "online")
    counts = summary.counts
    assert sum(counts.values()) == 200
    assert counts["updated"] == updated
    assert elapsed < 2.0, f"the run took {elapsed:.1f}s past a 1 s deadline; counts {counts}"
    assert counts["skipped"] > 0, f"nothing was skipped after the deadline; counts {counts}"
