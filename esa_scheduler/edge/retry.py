"""When to try a failed call again, and the run's deadline that every wait must respect.

An unattended function must end before Function Compute kills it, with its summary logged. So
the deadline is checked by everything that waits (the retry backoff, the pacer, a queue for a
connection slot) and nothing starts an attempt after it; a hanging attempt is cut one read
timeout after the deadline at the latest.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

from esa_scheduler.edge.responses import NONCE_REUSED, EsaApiError
from esa_scheduler.timeutil import now_utc


@dataclass(frozen=True)
class Deadline:
    """A cut-off on the monotonic clock after which no attempt starts; ``at=None`` means none."""

    at: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def remaining(self) -> float:
        """Seconds left (infinite without a deadline, negative once it has passed)."""
        return math.inf if self.at is None else self.at - self.clock()

    def passed(self) -> bool:
        """True once no new attempt may start."""
        return self.remaining() <= 0

    def allows_wait(self, seconds: float) -> bool:
        """Whether waiting ``seconds`` still leaves the next attempt before the cut-off."""
        return seconds < self.remaining()


@dataclass(frozen=True)
class RetryPolicy:
    """Full-jitter exponential backoff within an attempt budget and a total retry time.

    The server's own hint (``Retry-After`` / ``x-acs-retry-after``) wins over the backoff, spread
    by up to half again so throttled callers do not all return together.
    """

    max_attempts: int
    base_delay: float
    max_delay: float
    max_total_retry_time: float

    def delay(
        self,
        error: EsaApiError,
        attempt: int,
        retry_after: float | None,
        nonce_clashes: int,
        rng: random.Random,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the error is final."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if error.code == NONCE_REUSED:
            # A nonce clash is a coincidence, not load: one immediate re-sign is enough.
            return 0.0 if nonce_clashes == 1 else None
        if retry_after is not None:
            return rng.uniform(retry_after, retry_after * 1.5)
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return rng.uniform(0, cap)

    def within_budget(self, retrying_for: float, delay: float) -> bool:
        """Whether waiting ``delay`` more keeps the call within its total retry time."""
        return retrying_for + delay <= self.max_total_retry_time


def retry_after(headers: Mapping[str, str], now: Callable[[], datetime] = now_utc) -> float | None:
    """The server's wait hint in seconds, or ``None`` when it sent none we can read.

    ESA's ``x-acs-retry-after`` is in milliseconds (as the official SDK reads it); the standard
    ``Retry-After`` is whole seconds or an HTTP date.
    """
    acs = headers.get("x-acs-retry-after", "").strip()
    if acs.isascii() and acs.isdigit() and int(acs) > 0:
        return int(acs) / 1000.0
    standard = headers.get("retry-after", "").strip()
    if standard.isascii() and standard.isdigit():
        return float(standard) if int(standard) > 0 else None
    if not standard:
        return None
    try:
        when = parsedate_to_datetime(standard)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    seconds = (when - now()).total_seconds()
    return seconds if seconds > 0 else None
