"""ESA's delivery-task API (version 2024-09-10): the five calls the scheduler needs, on ``AcsClient``.

It replaces the official SDK, whose dependency tree costs seconds of cold start. The call itself
(signing, pacing, retries, the deadline) lives in ``acs``; what is ESA's here is the actions,
their models (``responses``) and complete-or-refuse pagination (``listing``).
"""

from __future__ import annotations

from typing import Any

from esa_scheduler.addresses import check_endpoint, is_loopback
from esa_scheduler.edge.acs import AcsClient, ApiRequest, ClientSettings
from esa_scheduler.edge.credentials import Credentials
from esa_scheduler.edge.endpoints import resolve_endpoint
from esa_scheduler.edge.listing import list_all
from esa_scheduler.edge.responses import (
    DeadlineExceeded,
    DeliveryTask,
    EsaApiError,
    StatusChange,
    TaskDetail,
    TaskPage,
    parse_body,
)

API_VERSION = "2024-09-10"
ACTIONS: tuple[str, ...] = (
    "ListUserDeliveryTasks",
    "GetUserDeliveryTask",
    "UpdateUserDeliveryTaskStatus",
    "ListSiteDeliveryTasks",
    "UpdateSiteDeliveryTaskStatus",
)
METHODS = ("online", "offline")
__all__ = [
    "ACTIONS",
    "API_VERSION",
    "ClientSettings",
    "DeadlineExceeded",
    "DeliveryTask",
    "EsaApiError",
    "EsaClient",
    "StatusChange",
    "TaskDetail",
    "TaskPage",
    "check_endpoint",
    "is_loopback",
    "resolve_endpoint",
]

_MAX_PAGE_SIZE = 500


class EsaClient(AcsClient):
    """The ESA delivery-task calls; use as ``async with`` (see ``AcsClient`` for the keywords)."""

    def __init__(
        self, endpoint: str, credentials: Credentials, settings: ClientSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(endpoint, credentials, API_VERSION, settings, **kwargs)

    async def list_user_delivery_tasks(
        self, business_type: str | None = None, page_size: int = 100
    ) -> list[DeliveryTask]:
        """Every account-level delivery task, all pages followed and checked."""
        params = {"BusinessType": business_type} if business_type else {}
        return await self._list("ListUserDeliveryTasks", params, page_size)

    async def list_site_delivery_tasks(
        self, site_id: int, business_type: str | None = None, page_size: int = 100
    ) -> list[DeliveryTask]:
        """Every delivery task of one site, all pages followed and checked."""
        params = {"SiteId": str(site_id)}
        if business_type:
            params["BusinessType"] = business_type
        return await self._list("ListSiteDeliveryTasks", params, page_size)

    async def get_user_delivery_task(self, name: str) -> TaskDetail:
        """One account-level task by name."""
        action = "GetUserDeliveryTask"
        body, _, _ = await self.call(ApiRequest(action, {"TaskName": name}))
        return parse_body(action, TaskDetail, body)

    async def update_user_delivery_task_status(self, task_name: str, method: str) -> StatusChange:
        """Set an account-level task ``online`` or ``offline`` (idempotent on ESA's side)."""
        return await self._update("UpdateUserDeliveryTaskStatus", {"TaskName": task_name}, method)

    async def update_site_delivery_task_status(self, site_id: int, task_name: str, method: str) -> StatusChange:
        """Set a site-level task ``online`` or ``offline``."""
        params = {"SiteId": str(site_id), "TaskName": task_name}
        return await self._update("UpdateSiteDeliveryTaskStatus", params, method)

    async def _update(self, action: str, params: dict[str, str], method: str) -> StatusChange:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        body, _, attempts = await self.call(ApiRequest(action, {**params, "Method": method}))
        return parse_body(action, StatusChange, body).model_copy(update={"attempts": attempts})

    async def _list(self, action: str, params: dict[str, str], page_size: int) -> list[DeliveryTask]:
        if not 1 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE_SIZE}, not {page_size}")

        async def page(number: int, size: int) -> tuple[TaskPage, dict[str, Any]]:
            query = {**params, "PageNumber": str(number), "PageSize": str(size)}
            body, _, _ = await self.call(ApiRequest(action, query))
            return parse_body(action, TaskPage, body), body

        return await list_all(action, page, page_size, max_batch=self.concurrency)
