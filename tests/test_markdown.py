"""``escape_markdown``: every construct the three chat services render from text comes out inert, and
the names an operator copies from a message (hold ids, task names) come out as written.

The end-to-end proof, a hostile hold reason reaching each service's loopback receiver, is in
tests/test_notify.py; this is the table of constructs, one line each.
"""

from __future__ import annotations

import pytest

from esa_scheduler.invocation.notify.markdown import MAX_CHARS, SERVICES, escape_markdown

CASES: list[tuple[str, str, str]] = [
    ("link", "[log in](http://evil.example/login)", "［log in］(http[:]//evil[.]example/login)"),
    ("image", "![x](https://evil.example/a.png)", "!［x］(https[:]//evil[.]example/a.png)"),
    ("bare-url", "see https://evil.example", "see https[:]//evil[.]example"),
    ("url-with-userinfo", "ftp://user@files.evil.example/x", "ftp[:]//user@files[.]evil[.]example/x"),
    ("app-scheme", "dingtalk://dingtalkclient/page/link?url=x", "dingtalk[:]//dingtalkclient/page/link?url=x"),
    ("www-host", "go to www.evil.example now", "go to www[.]evil[.]example now"),
    ("host-with-path", "evil.example/login", "evil[.]example/login"),
    ("javascript", "javascript:alert(1)", "javascript[:]alert(1)"),
    ("mailto", "mailto:boss@evil.example", "mailto[:]boss@evil.example"),
    ("bold", "**URGENT** and __this__", "∗∗URGENT∗∗ and ＿＿this＿＿"),
    ("italic-underscores", "_quiet_", "＿quiet＿"),
    ("strike-and-code", "~~no~~ `rm -rf`", "∼∼no∼∼ ˋrm -rfˋ"),
    ("heading", "# Take action", "＃ Take action"),
    ("list", "- item", "‐ item"),
    ("plus-list", "+ item", "＋ item"),
    ("ordered-list", "1. first", "1． first"),
    ("ordered-paren", "2) second", "2） second"),
    ("setext", "===", "＝=="),
    ("quote", "> quoted", "＞ quoted"),
    ("html", "<font color=red>x</font><br>", "＜font color=red＞x＜/font＞＜br＞"),
    ("wecom-mention", "<@userid>", "＜@userid＞"),
    ("feishu-at-all", '<at user_id="all"></at>', '＜at user_id="all"＞＜/at＞'),
    ("backslash-escape", "\\*not bold\\*", "＼∗not bold＼∗"),
    ("escape-sequence", "\x1b[31mred\x1b[0m", "\\u001b［31mred\\u001b［0m"),
    ("nul-bell-del", "a\x00b\x07c\x7f", "a\\u0000b\\u0007c\\u007f"),
    ("c1-csi", "x\x9b2Jy", "x\\u009b2Jy"),
    ("bidi-override", "abc\u202edcba", "abc\\u202edcba"),
    ("zero-width", "pay\u200bpal", "pay\\u200bpal"),
    ("line-breaks", "one\ntwo\r\n# three\u2028four\x85five\tsix", "one two # three four five six"),
    ("lone-surrogate", "bad\ud800text", "bad\\ud800text"),
]
KEPT = [
    "inc-origin-errors-1a2b3c4d",
    "access_logs_prod",
    "h-0f3a9c21",
    "site.logs.v2",
    "INC-4211 origin 5xx at 10.5% for 3 minutes",
    "2026-11-28T02:30:00Z",
    "负载过高 (origin)",
    "👩‍💻 on call",
]
"""Names and plain text that carry no markup: copied from a message, they must still work."""


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize(("text", "inert"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_construct_comes_out_inert(service: str, text: str, inert: str) -> None:
    assert escape_markdown(text, service) == inert


@pytest.mark.parametrize("text", KEPT)
def test_names_and_plain_text_are_kept_as_written(text: str) -> None:
    assert {escape_markdown(text, service) for service in SERVICES} == {text}


def test_an_overlong_value_is_cut_before_it_is_escaped() -> None:
    """The cut never splits an escape in two: it is made on the text as given, then escaped."""
    cut = escape_markdown("x" * (MAX_CHARS - 2) + "\x1b" * 10, "dingtalk")
    assert cut == "x" * (MAX_CHARS - 2) + "\\u001b" + "…"
    assert escape_markdown("y" * 1000, "wecom", limit=20) == "y" * 19 + "…"


def test_an_unknown_service_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="webhook"):
        escape_markdown("text", "webhook")
