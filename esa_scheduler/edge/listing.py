"""Read a whole paged listing, or refuse it: a partial inventory must never look complete.

A server may cap ``PageSize`` below what was asked, repeat a page, or announce a ``TotalCount``
that is stale or absurd. The lister follows the page size the server really used, fetches later
pages in small batches that grow while pages come back full (so an inflated total costs a few
calls, not hundreds), and accepts the result only when the distinct tasks it saw are exactly the
``TotalCount`` with no task seen twice. Anything else is an ``IncompleteListing`` error, and the
run that needed the inventory changes nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from esa_scheduler.edge.responses import DeliveryTask, EsaApiError, TaskPage, str_field

INCOMPLETE = "IncompleteListing"
MAX_PAGES = 1000
"""Hard stop for a server whose pages never end (1000 pages of 100 is far beyond any account)."""
FIRST_BATCH = 2
MAX_BATCH = 4
"""At most this many pages in flight: a lying ``TotalCount`` wastes at most ``MAX_BATCH - 1`` calls."""

T = TypeVar("T")
PageFetch = Callable[[int, int], Awaitable[tuple[TaskPage, dict[str, Any]]]]
"""``(page_number, page_size) -> (page, raw body)``."""


def _incomplete(action: str, what: str, body: dict[str, Any] | None = None) -> EsaApiError:
    return EsaApiError(
        action,
        INCOMPLETE,
        f"incomplete {action} listing: {what}",
        request_id=str_field(body or {}, "RequestId"),
        http_status=200,
    )


class _Seen:
    """Distinct tasks in page order; a task met twice means the server repeated itself."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.tasks: dict[str, DeliveryTask] = {}

    def add(self, number: int, page: TaskPage, body: dict[str, Any]) -> None:
        for task in page.tasks:
            if task.task_name in self.tasks:
                what = f"page {number} repeats task {task.task_name!r} already listed ({len(self.tasks)} seen so far)"
                raise _incomplete(self.action, what, body)
            self.tasks[task.task_name] = task


async def gather_in_order(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Every call's result; if any failed, the failure of the first in ``calls`` order is raised, and
    only once none is left running (no call outlives the client, and the error is the same each run)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    done: list[T] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        done.append(result)
    return done


async def list_all(action: str, fetch: PageFetch, page_size: int, max_batch: int = MAX_BATCH) -> list[DeliveryTask]:
    """Every task of a listing, or an ``IncompleteListing`` error naming the pages and counts.

    ``max_batch`` is further capped at ``MAX_BATCH``: the connection pool may allow more, but a batch
    past the real end is pure waste when the announced total is a lie."""
    max_batch = min(max_batch, MAX_BATCH)
    first, first_body = await fetch(1, page_size)
    seen = _Seen(action)
    seen.add(1, first, first_body)
    total = first.total_count
    if len(seen.tasks) >= total:
        return _checked(seen, total, 1, page_size, first_body)
    # Page 1 is not the last: what it holds is the page size the server really uses. A PageSize
    # claim that disagrees with it (or a missing one) cannot be trusted to number later pages.
    used = len(first.tasks)
    if used == 0:
        raise _incomplete(action, f"page 1 is empty but TotalCount is {total}", first_body)
    last_page = math.ceil(total / used)
    number, batch, fetched, body = 2, FIRST_BATCH, 1, first_body
    while number <= last_page:
        if number > MAX_PAGES:
            what = f"TotalCount {total} at {used} per page would take more than {MAX_PAGES} pages"
            raise _incomplete(action, what, body)
        numbers = range(number, min(last_page, number + batch - 1) + 1)
        pages = await gather_in_order([fetch(n, used) for n in numbers])
        ended_at: int | None = None
        for n, (page, body) in zip(numbers, pages, strict=True):
            fetched = n
            if ended_at is not None:
                if page.tasks:
                    what = f"page {n} holds {len(page.tasks)} tasks after page {ended_at} ended the list"
                    raise _incomplete(action, what, body)
                continue
            seen.add(n, page, body)
            if len(page.tasks) < used:
                ended_at = n
        if ended_at is not None:
            break
        number += len(numbers)
        batch = min(batch * 2, max_batch)
    return _checked(seen, total, fetched, used, body)


def _checked(seen: _Seen, total: int, pages: int, size: int, body: dict[str, Any]) -> list[DeliveryTask]:
    if len(seen.tasks) != total:
        what = f"TotalCount is {total} but {pages} page(s) of up to {size} held {len(seen.tasks)} distinct tasks"
        raise _incomplete(seen.action, what, body)
    return list(seen.tasks.values())
