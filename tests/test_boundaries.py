"""Edges the subject tests left unpinned (issue 18): each test here fails with a one-line change at
its edge. A listing page after the end that still holds tasks, on the emulator; a hold over an
active window of higher priority, through ``plan``. (The deadline's cut-off instant is pinned in
test_client.py, trimmed header values in test_signer.py.)"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import run_cli, utc, write_schedule

from esa_scheduler.edge.client import ClientSettings, EsaApiError, EsaClient
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.emulator import EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, EmulatedTask, Emulator, Faults
from esa_scheduler.invocation.holds import Hold, HoldStore

# --- a listing that goes on after its end -------------------------------------------------------


def test_a_page_after_the_short_page_that_still_holds_tasks_is_refused() -> None:
    # GIVEN 45 tasks at 10 a page and a TotalCount of 100: pages 2-3 come as one batch, then pages
    # 4-7. Page 5 is short (5 tasks), so the list ended there, but page 6 repeats it and holds tasks
    tasks = [EmulatedTask(TaskName=f"t-{i:02d}", Status="online") for i in range(45)]
    with Emulator(tasks=tasks) as esa:
        esa.faults = Faults(total_count=100, repeat_page=6)

        async def listing() -> None:
            creds = Credentials(EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET)
            async with EsaClient(esa.url, creds, ClientSettings(max_rps=None)) as client:
                await client.list_user_delivery_tasks(page_size=10)

        # WHEN the client lists them THEN the listing is refused, naming the page and where it ended
        with pytest.raises(EsaApiError) as info:
            asyncio.run(listing())
        assert info.value.code == "IncompleteListing"
        assert info.value.message == (
            "incomplete ListUserDeliveryTasks listing: page 6 holds 5 tasks after page 5 ended the list"
        )
        assert esa.stats["by_action"] == {"ListUserDeliveryTasks": 7}


# --- a hold wins over any window ----------------------------------------------------------------

PRIORITY_SCHEDULE = """\
version: 1
timezone: UTC
default_status: offline
tasks:
  - name: access-a
windows:
  - name: business-hours
    tasks: [access-a]
    status: online
    priority: 100
    cron: "0 8 * * *"
    duration: 10h
"""


def test_a_hold_overrides_an_active_window_of_higher_priority(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a priority-100 window keeping access-a online from 08:00 to 18:00, and an offline hold
    # from 10:00 to 11:00 (holds have no priority: the newest active one decides)
    schedule = write_schedule(tmp_path / "schedule", PRIORITY_SCHEDULE)
    start = utc("2027-06-01T10:00")
    hold = Hold(
        id="h-incident",
        tasks=("access-a",),
        status="offline",
        reason="origin errors",
        created_at=start,
        expires_at=start + timedelta(hours=1),
    )
    HoldStore(tmp_path / "state").save(hold)

    def planned(at: str) -> dict[str, object]:
        args = ["--schedule", str(schedule), "--state-dir", str(tmp_path / "state"), "--json", "--at", at]
        code, out, err = run_cli(capsys, "plan", *args)
        assert code == 0, err
        (task,) = json.loads(out)["tasks"]
        assert isinstance(task, dict)
        return task

    # WHEN planned inside the hold THEN the hold decides, and the window takes over when it ends
    inside = planned("2027-06-01T10:30:00Z")
    assert (inside["desired"], inside["source"]) == ("offline", "hold:h-incident")
    assert inside["matches"] == ["window:business-hours"]
    assert inside["next_change"] == "2027-06-01T11:00:00Z"
    after = planned("2027-06-01T11:00:00Z")
    assert (after["desired"], after["source"]) == ("online", "window:business-hours")
