"""ESA's delivery-task actions over one account's in-memory state: list, get and update."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from esa_scheduler.emulator.models import (
    THROTTLING_CODES,
    ApiError,
    EmulatedTask,
    Faults,
    TaskKey,
)
from esa_scheduler.emulator.params import Params, Payload, int_param

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500
SCRIPTED_RETRY_AFTER_MS = 1000
"""``x-acs-retry-after`` sent with a scripted throttling fault (the rate limiter computes its own)."""


class Stats:
    """Calls counted by action and outcome: what tests assert on, through ``/_emulator/stats``."""

    def __init__(self) -> None:
        self.by_action: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.by_action_outcome: dict[str, Counter[str]] = {}

    def record(self, action: str, outcome: str) -> None:
        """One call, counted once in each of the three tallies."""
        self.by_action[action] += 1
        self.by_outcome[outcome] += 1
        self.by_action_outcome.setdefault(action, Counter())[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        """Plain dicts, so a test or the stats endpoint can keep them after the counters move on."""
        return {
            "total": sum(self.by_action.values()),
            "by_action": dict(self.by_action),
            "by_outcome": dict(self.by_outcome),
            "by_action_outcome": {action: dict(c) for action, c in self.by_action_outcome.items()},
        }


class Account:
    """One account's ESA state: its tasks, the faults scripted on them, its counters."""

    def __init__(self, account_id: str, tasks: list[EmulatedTask], error: str | None = None) -> None:
        self.id = account_id
        self.tasks: dict[TaskKey, EmulatedTask] = {t.key: t for t in tasks}
        self.scripted: dict[TaskKey, deque[str]] = {}
        self.stats = Stats()
        self.error = error


def page(account: Account, params: Params, site_id: int | None, faults: Faults) -> Payload:
    """One page of List*DeliveryTasks; ``faults`` can cap the page size, repeat a page or misreport the
    total, the paging bugs a client must survive."""
    number = int_param(params, "PageNumber", 1)
    size = min(int_param(params, "PageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), faults.page_size_cap or MAX_PAGE_SIZE)
    business_type = params.get("BusinessType")
    matching = [
        task
        for task in account.tasks.values()
        if task.SiteId == site_id and business_type in (None, "", task.BusinessType)
    ]
    shown = number - 1 if number == faults.repeat_page else number
    start = (shown - 1) * size
    return {
        "TotalCount": len(matching) if faults.total_count is None else faults.total_count,
        "PageNumber": number,
        "PageSize": size,
        "Tasks": [task.summary() for task in matching[start : start + size]],
    }


def target(account: Account, params: Params, site_id: int | None) -> EmulatedTask:
    """The task a Get or Update names, after any fault scripted on it (ESA's own message when it is missing)."""
    name = params.get("TaskName")
    if not name:
        raise ApiError("InvalidParameter", "TaskName is required.")
    task = account.tasks.get((site_id, name))
    if task is None:
        where = f" on site {site_id}" if site_id is not None else ""
        raise ApiError("InvalidParameter", f"The delivery task {name!r} does not exist{where}.")
    scripted = account.scripted.get(task.key)
    if scripted:
        code = scripted.popleft()
        retry_after = SCRIPTED_RETRY_AFTER_MS if code in THROTTLING_CODES else None
        raise ApiError(code, retry_after_ms=retry_after)
    return task


def update(account: Account, params: Params, site_id: int | None) -> Payload:
    """Set a task's status, as Update*DeliveryTaskStatus does."""
    task = target(account, params, site_id)
    method = params.get("Method")
    if method not in ("online", "offline"):
        raise ApiError("InvalidParameter", f"Method must be online or offline, got {method!r}.")
    account.tasks[task.key] = task.model_copy(update={"Status": method})
    return {"TaskName": task.TaskName, "Status": method}
