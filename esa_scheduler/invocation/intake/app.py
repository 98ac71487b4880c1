"""One request to the intake, from FC's HTTP trigger event to its answer and the reconcile it asks for.

The order of checks is the order of cost and of trust: the event and the body's size (400, 413,
before anything decodes more than it must), the route and method (404, 405), the route's
configuration and secret (503: closed by default), the token or signature (401), the body (400),
the DingTalk sender and conversation (403), a replayed message id; only then are holds written.
Every refusal is one ``intake.rejected`` line with its ``reason``; no answer and no log line
carries a token, an app secret or a signature.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from esa_scheduler import config, timeutil
from esa_scheduler.engine.schedule.load import load_schedule
from esa_scheduler.errors import UserError
from esa_scheduler.fc_context import fc_field
from esa_scheduler.invocation.holds import state_dir
from esa_scheduler.invocation.intake.dispatch import Dispatcher, fc_dispatcher, reconcile_for
from esa_scheduler.invocation.intake.http import HttpProblem, Request, problem_response, read_request, respond
from esa_scheduler.invocation.intake.route import Answer, Call
from esa_scheduler.logs import RunLog

ALERT_ROUTES = {"/alerts/cloudmonitor": "cloudmonitor", "/alerts/sls": "sls", "/alerts/alertmanager": "alertmanager"}
CHAT_ROUTE = "/chat/dingtalk"
HEALTH_ROUTE = "/healthz"
METHODS = {**dict.fromkeys(ALERT_ROUTES, "POST"), CHAT_ROUTE: "POST", HEALTH_ROUTE: "GET"}
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Intake:
    """The intake as one deployment runs it: where the schedule and state are, the clock, the dispatcher."""

    schedule_path: str | None = None
    state: str | None = None
    environ: Mapping[str, str] | None = None
    clock: Clock | None = None
    dispatcher: Dispatcher | None = None
    stream: TextIO | None = None

    def handle(self, event: bytes | str | Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """FC's response struct for one HTTP trigger event; never raises for anything a sender did."""
        env = self.environ if self.environ is not None else os.environ
        request_id = fc_field(context, "request_id")
        log = RunLog(fc_request_id=request_id, stream=self.stream, level=env.get(config.LOG_LEVEL, "INFO") or "INFO")
        route = None
        try:
            request = read_request(event, fallback_id=str(request_id or log.run_id))
            route = request.path
            answer = self._route(request, env, log)
        except HttpProblem as problem:
            fields = {"route": route, "reason": problem.reason, "status": problem.status, "error": problem.error}
            log.warning("intake.rejected", **fields, **problem.logged)
            return problem_response(problem)
        except UserError as exc:
            # the schedule or the state folder is unusable: the deployment's fault, so the sender retries
            log.error("intake.failed", route=route, error=str(exc))
            return respond(500, {"ok": False, "error": "the intake is misconfigured; see its log"})
        if answer.rejected is not None:
            log.warning("intake.rejected", route=route, reason=answer.rejected, status=answer.status, **answer.logged)
            return respond(answer.status, answer.payload)
        if answer.touched and route is not None:
            dispatch = self.dispatcher or fc_dispatcher(context, env)
            answer.payload.update(dispatch(reconcile_for(route, request.body, answer.touched), log).answer())
        elif route != HEALTH_ROUTE:
            answer.payload["reconcile"] = "not needed"
        if route != HEALTH_ROUTE:
            log.info("intake.accepted", route=route, status=answer.status, **answer.logged)
        return respond(answer.status, answer.payload)

    def _route(self, request: Request, env: Mapping[str, str], log: RunLog) -> Answer:
        method = METHODS.get(request.path)
        if method is None:
            raise HttpProblem(404, f"no route {request.path!r}", "not_found")
        if request.method != method:
            raise HttpProblem(405, f"{request.path} takes {method}", "method_not_allowed", {"Allow": method})
        if request.path == HEALTH_ROUTE:
            return Answer(200, {"ok": True})
        call = Call(request, load_schedule(self.schedule_path), state_dir(self.state), self._now(), env, log)
        if request.path == CHAT_ROUTE:
            from esa_scheduler.invocation.intake.dingtalk import serve_chat

            return serve_chat(call)
        from esa_scheduler.invocation.intake.alerts import serve_alerts

        return serve_alerts(call, ALERT_ROUTES[request.path])

    def _now(self) -> datetime:
        return self.clock() if self.clock is not None else timeutil.now_to_the_second()
