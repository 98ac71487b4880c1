"""Text from outside, made inert in the chat services' markdown before it reaches a group.

A hold's reason and author come from whoever sent the event, task names and error texts from a
server, names from a schedule: any of them could carry ``[log in](https://evil.example)``, bold
text, an HTML tag, a mention or a raw ESC into a message that looks like it comes from the
scheduler. ``escape_markdown`` is applied to every such value where a message or a chat reply is
written (``notify/message.py``; the intake's DingTalk replies).

How, and why this way: none of the three services documents backslash escapes (DingTalk's robot
markdown lists headings, quotes, bold and italic, links, images, lists and ``<font>``; WeCom's adds
inline code, ``<font color>`` and ``<@userid>`` mentions; Feishu renders links, emphasis, ``<at>``
and ``<font>`` in its markdown, and links bare URLs even in plain text). So markup characters are
not escaped but replaced by look-alikes that no renderer reads as markup (``[`` by the fullwidth
U+FF3B, ``*`` by the asterisk operator U+2217, ``<`` by U+FF1C...), the same for all three services,
since their union covers what any of them renders from a plain value. Characters that names use
(``.``, ``-``, ``_`` inside a word) stay as written, so a hold id can still be copied from a
message. URLs are defanged the way security teams write them (``https[:]//evil[.]example/login``):
a scheme, a ``www.`` host or a ``host.tld/path`` is never a link. Control characters (C0, DEL, C1),
surrogates, bidi overrides and zero-width characters are shown as ``\\u001b``; line breaks and tabs
become one space, so a value never starts a line of its own; a value longer than ``limit``
characters is cut with an ellipsis.
"""

from __future__ import annotations

import re
from collections.abc import Callable

SERVICES = frozenset({"dingtalk", "feishu", "wecom"})
MAX_CHARS = 300

_SPACES = re.compile(r"[\t\n\v\f\r \x85\u2028\u2029]+")
"""Whatever breaks a line or stands for a space: one space (a value never starts a line of its own)."""
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200b\u200c\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)
"""Control characters (C0, DEL, C1), surrogates, bidi controls and zero-width characters: they can
hide, reorder or restyle text (the zero-width joiner of emoji sequences is not among them)."""
_LOOKALIKE = str.maketrans(
    {
        "*": "∗",
        "`": "ˋ",
        "~": "∼",
        "[": "［",
        "]": "］",
        "<": "＜",
        ">": "＞",
        "\\": "＼",
    }
)
_EDGE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
"""``_`` that can open or close emphasis; one inside a word (``access_logs``) cannot, and stays."""
_LINE_START = re.compile(r"^(?:[#=]|[-+](?= |$)|\d+[.)](?= |$))")
"""What makes a block when a value starts a line or a list item: a list, a heading, a setext line."""
_START_LOOKALIKE = str.maketrans({"-": "‐", "+": "＋", "=": "＝", "#": "＃", ".": "．", ")": "）"})
_SCHEME = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,31}):(//[^/\s?#]*)")
"""A URL with an authority (``https://``, ``ftp://``, ``dingtalk://``): its colon and the dots of its host."""
_BARE_SCHEME = re.compile(r"\b(mailto|javascript|data|tel|sms|file|vbscript):", re.IGNORECASE)
_HOST = re.compile(
    r"\b(?:www\.[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}(?=/))"
)
"""A ``www.`` host, or a host followed by a path (``evil.example/login``): linked without a scheme."""


def escape_markdown(text: str, service: str, limit: int = MAX_CHARS) -> str:
    """``text`` as inert markdown for ``service`` (``dingtalk``, ``feishu`` or ``wecom``), at most
    ``limit`` characters of it (escapes may add a few)."""
    if service not in SERVICES:
        raise ValueError(f"no markdown escaping for {service!r} (one of {', '.join(sorted(SERVICES))})")
    value = shorten(text, limit).translate(_LOOKALIKE)
    value = _EDGE_UNDERSCORE.sub("＿", value)
    value = _SCHEME.sub(lambda m: f"{m.group(1)}[:]{_dots(m.group(2))}", value)
    value = _BARE_SCHEME.sub(lambda m: f"{m.group(1)}[:]", value)
    value = _HOST.sub(lambda m: _dots(m.group(0)), value)
    value = _LINE_START.sub(lambda m: m.group(0).translate(_START_LOOKALIKE), value)
    return _HIDDEN.sub(lambda m: f"\\u{ord(m.group(0)):04x}", value)


_TYPED_BACK = {ord(look): chr(char) for char, look in _LOOKALIKE.items()} | {ord("＿"): "_"}


def typed_back(text: str) -> str:
    """``text`` with the look-alikes ``escape_markdown`` writes read as what they stand for: a selector
    copied from a chat reply (``access-logs-`` and U+2217) is the selector the reply showed."""
    return text.translate(_TYPED_BACK)


def shorten(text: str, limit: int = MAX_CHARS) -> str:
    """One line of at most ``limit`` characters: whitespace runs are one space, the rest is cut with ``…``."""
    value = _SPACES.sub(" ", text).strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def escaper(kind: str) -> Callable[[str], str]:
    """How a notify target of ``kind`` writes a value into its lines: escaped for a chat service,
    shortened for a webhook (whose receiver gets the raw values as JSON data besides)."""
    if kind in SERVICES:
        return lambda text: escape_markdown(text, kind)
    return shorten


def _dots(host: str) -> str:
    return host.replace(".", "[.]")
