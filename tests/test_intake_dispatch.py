"""The reconcile after the intake changed holds: dispatched through FC's ``InvokeFunction`` (the emulator
plays FC, running the scheduler's handler against the emulated ESA), refused as a duplicate for a
repeated task id, reported when it cannot go out, and understood by the scheduler, which reads hold ids
in ``touched`` as those holds' tasks.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import fc_context, write_schedule
from intake_support import APP_SECRET, NOW, SCHEDULE, TOKEN, chat_body, http_event, signed

from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, Emulator
from esa_scheduler.engine.holds import Hold
from esa_scheduler.invocation.connection import Target
from esa_scheduler.invocation.function import execute
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.intake.app import Intake
from esa_scheduler.invocation.intake.dispatch import fc_dispatcher, reconcile_for
from esa_scheduler.invocation.statefile import record_completed_run
from esa_scheduler.logs import RunLog
from esa_scheduler.timeutil import utc_iso

EMULATED = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, source="test")


class Scheduler:
    """The scheduler function as the emulated FC runs it: ``handler.handler``'s ``execute`` on the event,
    at the pinned instant, against the emulated ESA.

    Its log goes to the intake's stream: the process has one logger, so two runs at once (the intake
    answering, the scheduler reconciling in an emulator thread) must share where lines go."""

    def __init__(self, schedule: Path, state: Path) -> None:
        self.schedule, self.state = schedule, state
        self.events: list[dict[str, Any]] = []
        self.emulator: Emulator | None = None
        self.stream = io.StringIO()

    def __call__(self, event: bytes) -> object:
        assert self.emulator is not None
        command = json.loads(event)
        self.events.append(command)
        summary = execute(
            command,
            target=Target(self.emulator.url, EMULATED, ephemeral=True),
            schedule_path=str(self.schedule),
            state=str(self.state),
            stream=self.stream,
            now=NOW,
        )
        return summary.to_json()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Scheduler, Emulator, dict[str, str]]]:
    schedule = write_schedule(tmp_path / "schedule", SCHEDULE)
    scheduler = Scheduler(schedule, tmp_path / "state")
    tasks = [{"TaskName": "access-logs-dev", "Status": "online"}, {"TaskName": "waf-edge", "Status": "online"}]
    with Emulator(tasks=tasks, functions={"esa-scheduler": scheduler}) as emu:
        scheduler.emulator = emu
        env = {
            "ESA_INTAKE_TOKEN": TOKEN,
            "ESA_DINGTALK_APP_SECRET": APP_SECRET,
            "ESA_SCHEDULER_FUNCTION": "esa-scheduler",
            "ESA_FC_ENDPOINT": emu.url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": EMULATOR_ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": EMULATOR_ACCESS_KEY_SECRET,
        }
        yield scheduler, emu, env


def intake(scheduler: Scheduler, env: dict[str, str]) -> Intake:
    """The intake as FC runs it (FC's dispatcher), its log kept in memory."""
    return Intake(str(scheduler.schedule), str(scheduler.state), env, lambda: NOW, None, scheduler.stream)


def post_chat(box: Intake, text: str, msg_id: str) -> dict[str, Any]:
    response = box.handle(http_event("POST", "/chat/dingtalk", chat_body(text, msg_id), headers=signed()), fc_context())
    payload: dict[str, Any] = json.loads(response["body"])
    return payload


def log_events(box: Intake) -> list[dict[str, Any]]:
    assert isinstance(box.stream, io.StringIO)
    return [json.loads(line) for line in box.stream.getvalue().splitlines()]


def test_a_hold_dispatches_one_async_reconcile_that_takes_the_task_offline(
    world: tuple[Scheduler, Emulator, dict[str, str]],
) -> None:
    scheduler, emu, env = world
    box = intake(scheduler, env)
    payload = post_chat(box, "hold waf-* 2h INC-7 waf noise", "m1")
    assert payload["ok"] is True and payload["reconcile"] == "dispatched"
    (invocation,) = emu.wait_for_invocations(1, timeout=30)
    assert invocation.invocation_type == "Async" and invocation.outcome == "ok", invocation.error
    (hold,) = HoldStore(scheduler.state).active(NOW)
    assert scheduler.events == [{"action": "reconcile", "touched": [hold.id]}]
    assert (
        invocation.task_id
        == reconcile_for("/chat/dingtalk", chat_body("hold waf-* 2h INC-7 waf noise", "m1"), []).task_id
    )
    assert emu.status("waf-edge") == "offline" and emu.status("access-logs-dev") == "online"
    (line,) = [entry for entry in log_events(box) if entry["event"] == "intake.dispatched"]
    assert line["task_id"] == invocation.task_id and line["duplicate"] is False and line["invocation_id"]


def test_the_same_request_again_is_refused_by_fc_and_reconciles_once(
    world: tuple[Scheduler, Emulator, dict[str, str]],
) -> None:
    _, emu, env = world
    dispatch = fc_dispatcher(fc_context(), env)
    log = RunLog(stream=io.StringIO())
    reconcile = reconcile_for("/alerts/cloudmonitor", b"alertName=x&alertState=ALERT", ["inc-a-12345678"])
    assert dispatch(reconcile, log).answer() == {"reconcile": "dispatched"}
    assert dispatch(reconcile, log).answer() == {"reconcile": "already dispatched"}
    assert len(emu.wait_for_invocations(1, timeout=30)) == 1
    other = reconcile_for("/alerts/cloudmonitor", b"alertName=x&alertState=OK", ["inc-a-12345678"])
    assert other.task_id != reconcile.task_id


def test_without_the_scheduler_function_the_holds_are_written_and_the_answer_says_so(
    world: tuple[Scheduler, Emulator, dict[str, str]],
) -> None:
    scheduler, emu, env = world
    box = intake(scheduler, {k: v for k, v in env.items() if k != "ESA_SCHEDULER_FUNCTION"})
    payload = post_chat(box, "hold waf-* 2h INC-7", "m1")
    assert payload["ok"] is True
    assert (payload["reconcile"], payload["note"]) == (
        "not dispatched",
        "the hold changes are saved; the scheduler's next timer tick applies them",
    )
    assert len(HoldStore(scheduler.state).active(NOW)) == 1 and emu.invocations == []
    assert [e["event"] for e in log_events(box)].count("intake.not_dispatched") == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"ESA_FC_ENDPOINT": "http://127.0.0.1:{port}"}, "InvokeFunction"),
        ({"ESA_SCHEDULER_FUNCTION": "not a name"}, "ESA_SCHEDULER_FUNCTION='not a name' is not an FC function name"),
        ({"ESA_FC_ENDPOINT": "http://203.0.113.5"}, "plain http on a non-loopback host"),
    ],
    ids=["unreachable", "bad-name", "not-https"],
)
def test_a_failed_dispatch_keeps_the_hold_changes_and_says_the_timer_applies_them(
    world: tuple[Scheduler, Emulator, dict[str, str]], change: dict[str, str], error: str
) -> None:
    scheduler, emu, env = world
    box = intake(scheduler, {**env, **{k: v.format(port=closed_port()) for k, v in change.items()}})
    payload = post_chat(box, "hold waf-* 2h INC-7", "m1")
    assert payload["ok"] is True and payload["reconcile"] == "failed"
    assert payload["note"] == "the hold changes are saved; the scheduler's next timer tick applies them"
    assert len(HoldStore(scheduler.state).active(NOW)) == 1 and emu.invocations == []
    (line,) = [e for e in log_events(box) if e["event"] == "intake.dispatch_failed"]
    assert error in line["error"] and line["note"] == payload["note"]


# --- the scheduler reads hold ids in touched ----------------------------------------------------------

TRANSITIONS = """\
version: 1
mode: transitions
tasks:
  - name: access-logs-dev
"""


def test_a_hold_id_in_touched_stands_for_its_tasks(tmp_path: Path) -> None:
    """In transitions mode a task acts only on an edge or when touched: the intake names the hold it
    changed, and the scheduler must act on that hold's tasks even though no edge falls in this tick."""
    schedule = write_schedule(tmp_path / "schedule", TRANSITIONS)
    state = tmp_path / "state"
    hold = Hold(
        id="h-0badcafe",
        tasks=("access-logs-dev",),
        status="offline",
        reason="INC-1",
        created_at=NOW - timedelta(minutes=10),
        expires_at=NOW + timedelta(hours=1),
    )
    HoldStore(state).save(hold)
    record_completed_run(state, NOW - timedelta(minutes=5))  # the hold began before the last run
    with Emulator(tasks=[{"TaskName": "access-logs-dev", "Status": "online"}]) as emu:
        target = Target(emu.url, EMULATED)

        def reconcile(touched: list[str]) -> str:
            event = {"action": "reconcile", "at": utc_iso(NOW), "touched": touched}
            summary = execute(event, target=target, schedule_path=str(schedule), state=str(state), now=NOW)
            return str(summary.results[0].action)

        assert reconcile([]) == "skipped"
        assert reconcile(["h-00000000"]) == "skipped"  # no such hold: an id that selects nothing
        assert reconcile([hold.id]) == "updated"
        assert emu.status("access-logs-dev") == "offline"


def test_a_dispatch_fc_does_not_answer_is_cut_at_its_budget(world: tuple[Scheduler, Emulator, dict[str, str]]) -> None:
    """FC accepts the connection and never answers: the request still gets its answer, the hold stays."""
    scheduler, _, env = world
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        box = intake(scheduler, {**env, "ESA_FC_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}"})
        payload = post_chat(box, "hold waf-* 2h INC-7", "m1")
    assert payload["reconcile"] == "failed" and len(HoldStore(scheduler.state).active(NOW)) == 1
    (line,) = [e for e in log_events(box) if e["event"] == "intake.dispatch_failed"]
    assert line["error"] == "no answer from FC within 3 s"
