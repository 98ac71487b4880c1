"""``POST /chat/dingtalk``: a DingTalk enterprise internal robot in HTTP mode.

DingTalk posts the message as JSON with ``timestamp`` and ``sign`` headers and shows the group the
message returned in the HTTP answer. The signature is checked before the body is read, then who
sent it and from where (``allow_senders``, ``allow_conversations``: 403 for anyone else), then the
``msgId`` against the replay store; only then is the command obeyed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from esa_scheduler.errors import EventError, first_problem
from esa_scheduler.invocation.holds import HoldStore
from esa_scheduler.invocation.intake.auth import dingtalk_ok
from esa_scheduler.invocation.intake.chat import Chat, Outcome
from esa_scheduler.invocation.intake.http import HttpProblem
from esa_scheduler.invocation.intake.replay import ReplayStore
from esa_scheduler.invocation.intake.route import Answer, Call, disabled, unauthorized
from esa_scheduler.strict_json import loads_strict


class _Open(BaseModel):
    """DingTalk adds fields over time: unknown ones are ignored, the ones used are checked."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, defer_build=True)


class Text(_Open):
    """``text``: what the sender wrote, the @mention included or not."""

    content: str = Field(max_length=8192)


class ChatMessage(_Open):
    """The fields of DingTalk's callback that the intake reads."""

    msgtype: str
    msgId: str = Field(min_length=1, max_length=256)
    conversationId: str = Field(min_length=1)
    senderStaffId: str | None = None
    """Missing for people outside the organisation: they can never be allowed."""
    text: Text | None = None


def read_message(body: bytes) -> ChatMessage:
    """The callback's body; 400 with the field for anything else."""
    try:
        return ChatMessage.model_validate(loads_strict(body, "body"))
    except EventError as exc:
        raise HttpProblem(400, str(exc), "malformed") from exc
    except ValidationError as exc:
        problem = first_problem(exc)
        where = problem.removeprefix("(top level)") if problem.startswith("(top level)") else f".{problem}"
        raise HttpProblem(400, f"body{where}", "malformed") from exc


def serve_chat(call: Call) -> Answer:
    """Check, de-duplicate and obey one chat message; the answer is the robot's reply."""
    chat = call.schedule.intake.dingtalk if call.schedule.intake is not None else None
    if chat is None:
        raise disabled("intake.dingtalk is not configured")
    secret = call.secret(chat.app_secret_env)
    if not dingtalk_ok(call.request, secret, call.now):
        raise unauthorized()
    message = read_message(call.request.body)
    sender = message.senderStaffId
    who = {"sender": sender, "conversation": message.conversationId}  # logged, so an operator can allow them
    if chat.allow_conversations is not None and message.conversationId not in chat.allow_conversations:
        raise HttpProblem(403, "forbidden: this conversation may not give commands", "forbidden", logged=who)
    if sender is None or sender not in chat.allow_senders:
        raise HttpProblem(403, "forbidden: this sender may not give commands", "forbidden", logged=who)
    if not ReplayStore(call.state).claim(message.msgId, call.now):
        return Answer(200, {"ok": True, "duplicate": True}, logged={"sender": sender}, rejected="duplicate")
    content = message.text.content if message.msgtype == "text" and message.text is not None else "help"
    outcome: Outcome = Chat(call.schedule, HoldStore(call.state), call.now, sender, call.log).run(content)
    payload = {"ok": outcome.ok, **outcome.message()}
    return Answer(200, payload, touched=outcome.changed, logged={"sender": sender, "verb": outcome.verb})
