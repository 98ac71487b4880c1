"""JSON from outside, read one way: bounded, UTF-8, and without the guesses ``json`` makes for us.

Python's ``json`` keeps the last of two equal keys, so ``{"action": "release", ..., "action": "hold"}``
reads as a hold, while another reader of the same bytes (a log viewer, a proxy, a second parser)
may see a release: a body that means two things is refused. So are ``NaN`` and ``Infinity`` (not
JSON, and a ``NaN`` timeout compares false with everything), lone UTF-16 surrogates (text that no
UTF-8 log line or file can hold), nesting past ``MAX_DEPTH`` and bodies past ``MAX_BYTES``. Every
refusal is one line naming where, like ``event[0].data: duplicate key 'action'``.

Events (``invocation/events``), the intake's bodies, notify answers, the context file of ``invoke``
and the emulator's task files all read JSON through ``loads_strict``; it lives in the foundation so
that every layer can.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from esa_scheduler.errors import EventError

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
KEY_CHARS = 64

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_Path = tuple[Any, ...] | None
"""A location as a linked list ``(parent, key or index)``: built for every container, rendered only on error."""


def utf8_text(raw: bytes, where: str) -> str:
    """Bytes from outside as text, or one line naming the first byte that is not UTF-8 (JSON bodies
    and the intake's forms alike)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _text(raw: bytes | str, where: str, max_bytes: int | None) -> str:
    """The body as text, within the byte limit: FC hands over bytes, callers in tests hand over text."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if max_bytes is not None and size > max_bytes:
        raise EventError(f"{where}: {size} bytes is larger than the {max_bytes}-byte limit")
    if isinstance(raw, bytes):
        raw = utf8_text(raw, where)
    if not raw.strip():
        raise EventError(f"{where}: the body is empty (expected JSON)")
    return raw


def loads_strict(raw: bytes | str, where: str, *, max_bytes: int | None = MAX_BYTES, as_items: bool = False) -> Any:
    """Parse JSON text that came from outside, or raise ``EventError`` with one line naming the place.

    ``where`` names the document (``event``, ``body``, a file path). ``as_items`` reads it as the
    event reader does, a list of items where a lone object is item 0, so a problem in a lone object
    is named ``where[0]`` like every other problem the reader reports."""
    text = _text(bytes(raw) if isinstance(raw, bytearray) else raw, where, max_bytes)
    duplicates: dict[int, str] = {}

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        made = dict(items)
        if len(made) != len(items):
            duplicates[id(made)] = _first_repeat(items)
        return made

    def constant(name: str) -> Any:
        raise EventError(f"{where}: not valid JSON ({name} is not a JSON number)")

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except RecursionError as exc:
        raise EventError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise EventError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    _check(value, where, duplicates, as_items, texts=_may_hold_surrogates(text))
    return value


def _may_hold_surrogates(text: str) -> bool:
    """Whether the parsed document can hold a lone surrogate, found without walking its strings: UTF-8
    cannot encode one, so it comes from a ``\\ud800``-style escape, or from text a caller decoded
    itself (both checks run at C speed; walking every string of a large body would not)."""
    if "\\u" in text and _ESCAPED_SURROGATE.search(text):
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_repeat(items: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in items:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("called only when a key repeats")


def check_parsed(value: Any, where: str, *, as_items: bool = False) -> None:
    """The checks of ``loads_strict`` that still apply to JSON handed over already parsed (the CLI's
    commands, tests): nesting and text that is not valid Unicode."""
    _check(value, where, {}, as_items, texts=True)


def _check(value: Any, where: str, duplicates: Mapping[int, str], as_items: bool, texts: bool) -> None:
    """Walk the containers depth first (iteratively, so a hostile body cannot exhaust the stack) and
    refuse at the first problem met. Scalars count as a level of nesting, as they always have (a
    container at the last level may not hold anything); their text is looked at only when the
    document may hold a lone surrogate (``texts``)."""
    root: _Path = (None, 0) if as_items and isinstance(value, dict) else None
    if not isinstance(value, (dict, list)):
        if texts and isinstance(value, str):
            _check_text(value, where, root)
        return
    stack: list[tuple[dict[str, Any] | list[Any], int, _Path]] = [(value, 1, root)]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH or (depth == MAX_DEPTH and node):
            raise EventError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict) and id(node) in duplicates:
            raise EventError(f"{_render(where, path)}: duplicate key {_shown(duplicates[id(node)])}")
        if texts:
            _check_texts(node, where, path)
        steps = node.items() if isinstance(node, dict) else enumerate(node)
        inner = [(step, child) for step, child in steps if isinstance(child, (dict, list))]
        stack.extend((child, depth + 1, (path, step)) for step, child in reversed(inner))


def _check_texts(node: dict[str, Any] | list[Any], where: str, path: _Path) -> None:
    """The keys and string values of one container."""
    if isinstance(node, dict):
        for key in node:
            _check_text(key, where, path)
    steps = node.items() if isinstance(node, dict) else enumerate(node)
    for step, child in steps:
        if isinstance(child, str):
            _check_text(child, where, (path, step))


def _check_text(text: str, where: str, path: _Path) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise EventError(f"{_render(where, path)}: lone surrogate \\u{code:04x} is not text") from None


def _render(where: str, path: _Path) -> str:
    """``event[0].data.alerts[2]``: keys that are not plain names are quoted."""
    parts: list[str] = []
    while path is not None:
        path, step = path
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append(f".{step}" if step.isidentifier() and len(step) <= KEY_CHARS else f"[{_shown(step)}]")
    return where + "".join(reversed(parts))


def _shown(key: str) -> str:
    """A key as a problem line quotes it: at most ``KEY_CHARS`` of it, so a hostile key cannot flood a log."""
    return repr(key if len(key) <= KEY_CHARS else key[: KEY_CHARS - 1] + "…")
