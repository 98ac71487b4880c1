"""The emulated Function Compute side: functions run for ``InvokeFunction``, and their records.

An async invocation runs its function in a worker thread of its own, as FC runs it in an instance
of its own: the function may itself call the emulator (a coordinator invoking target runs that
call ESA) without blocking the event loop that serves those calls. Exceptions are recorded, never
raised into the server, and ``join`` lets the emulator stop only after every run has finished.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from esa_scheduler.logs import redact

FunctionBody = Callable[[bytes], object]
Outcome = Literal["pending", "ok", "error"]
JOIN_TIMEOUT = 120.0
"""Seconds ``join`` waits for the runs still going before the emulator stops anyway."""


@dataclass(frozen=True)
class Invocation:
    """One accepted ``InvokeFunction`` call and, once it has run, how it ended.

    ``error`` is ``"<exception type>: <message>"`` when the function raised.
    """

    function: str
    task_id: str | None
    event: bytes
    invocation_type: Literal["Async", "Sync"]
    account: str
    request_id: str
    outcome: Outcome = "pending"
    result: object = None
    error: str | None = None


class FunctionRunner:
    """Runs registered functions, in worker threads for async calls, and keeps every invocation."""

    def __init__(self, functions: Mapping[str, FunctionBody]) -> None:
        self._functions = dict(functions)
        self._records: list[Invocation] = []
        self._task_ids: set[tuple[str, str]] = set()
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition()

    def knows(self, name: str) -> bool:
        """Whether a function of that name is registered."""
        return name in self._functions

    def claim_task(self, function: str, task_id: str) -> bool:
        """Record an async task id for ``function``; ``False`` if it was submitted before."""
        with self._changed:
            if (function, task_id) in self._task_ids:
                return False
            self._task_ids.add((function, task_id))
            return True

    @property
    def invocations(self) -> list[Invocation]:
        """Every accepted invocation so far, in the order they arrived."""
        with self._changed:
            return list(self._records)

    def start(self, invocation: Invocation) -> None:
        """Run an async invocation in a worker thread; its record is kept from now on."""
        index = self._add(invocation)
        thread = threading.Thread(target=self._run, args=(index,), name=f"fc-{invocation.function}", daemon=True)
        with self._changed:
            self._threads.append(thread)
        thread.start()

    def run(self, invocation: Invocation) -> Invocation:
        """Run a sync invocation in the calling thread and return its finished record."""
        return self._run(self._add(invocation))

    def wait(self, count: int, timeout: float) -> list[Invocation]:
        """Block until ``count`` invocations have finished; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(record.outcome != "pending" for record in self._records) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    done = sum(record.outcome != "pending" for record in self._records)
                    raise TimeoutError(f"{done} of {count} invocations finished within {timeout} s")
                self._changed.wait(remaining)
            return list(self._records)

    def join(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Wait for every run, including those started by runs, for ``timeout`` seconds at most."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                running = [thread for thread in self._threads if thread.is_alive()]
                self._threads = running
            remaining = deadline - time.monotonic()
            if not running or remaining <= 0:
                return
            running[0].join(remaining)

    def _add(self, invocation: Invocation) -> int:
        with self._changed:
            self._records.append(invocation)
            return len(self._records) - 1

    def _run(self, index: int) -> Invocation:
        with self._changed:
            record = self._records[index]
        try:
            result = self._functions[record.function](record.event)
        except Exception as exc:  # a failing function is an outcome to record, not a server crash
            finished = replace(record, outcome="error", error=redact(f"{type(exc).__name__}: {exc}"))
        else:
            finished = replace(record, outcome="ok", result=result)
        with self._changed:
            self._records[index] = finished
            self._changed.notify_all()
        return finished
