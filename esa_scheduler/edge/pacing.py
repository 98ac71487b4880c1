"""Client-side pacing: one account quota shared by every call of a run.

ESA throttles per account, so the client spaces its own requests instead of spending its retries
on refusals; when ESA throttles anyway, every caller slows down at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from esa_scheduler.edge.retry import Deadline

# Pacing allows this much traffic ahead of the steady rate, so a lone call never waits.
_BURST_SECONDS = 0.1
_MIN_INTERVAL = 0.05
_EPISODE = 1.0


class Pacer:
    """Spaces requests ``1/rate`` apart with a small burst allowance (GCRA, virtual scheduling).

    Each caller reserves its slot before awaiting, so no lock is needed on one event loop and
    the waits come out exact even when the injected sleep returns at once. When ESA throttles,
    the spacing doubles for every caller at once (and eases back on success), so a run settles
    at the rate the account is allowed instead of spending its retries in lockstep.
    """

    def __init__(self, rate: float, sleep: Callable[[float], Awaitable[None]], clock: Callable[[], float]):
        self._base = 1.0 / rate if rate else 0.0
        self._interval = self._base
        burst = max(1.0, rate * _BURST_SECONDS)
        self._tolerance = (burst - 1.0) * self._base
        self._sleep = sleep
        self._clock = clock
        self._next: float | None = None
        self._last_slow_down: float | None = None

    async def wait(self, deadline: Deadline | None = None) -> bool:
        """Wait for this caller's slot; ``False`` (nothing reserved) when it comes after the deadline."""
        now = self._clock()
        slot = now if self._next is None else max(self._next, now)
        tolerance = self._tolerance if self._interval == self._base else 0.0
        delay = slot - tolerance - now
        if deadline is not None and (deadline.passed() or (delay > 0 and not deadline.allows_wait(delay))):
            return False
        self._next = slot + self._interval
        if delay > 0:
            await self._sleep(delay)
        return True

    def slow_down(self) -> None:
        """Throttled: halve the rate (down to one request per second), once per episode.

        Many calls in flight are refused together for one overload; counting each of them would
        halve the rate a dozen times for a single event.
        """
        now = self._clock()
        if self._last_slow_down is not None and now - self._last_slow_down < _EPISODE:
            return
        self._last_slow_down = now
        self._interval = min(max(self._interval * 2, _MIN_INTERVAL), 1.0)

    def recover(self) -> None:
        """A success: ease back towards the configured rate."""
        if self._interval > self._base:
            eased = self._interval * 0.9
            self._interval = self._base if eased <= max(self._base, _MIN_INTERVAL / 2) else eased
