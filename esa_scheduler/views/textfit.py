"""Where text goes on the HTML timeline without a browser to measure it: width estimates and free space.

The page has no script, so every label is placed when the page is written. Widths are estimated
per character from DejaVu Sans, the widest of the usual UI faces (Segoe UI, San Francisco,
Helvetica and Liberation Sans all run narrower), so a label judged to fit does fit wherever the
page is opened; the cost is a little room given away on narrower faces.
"""

from __future__ import annotations

from bisect import bisect_left

FONT_PX = 12
"""Every text of the chart, in viewBox units: the viewBox is drawn at least that large at 1280 px."""

_CLASSES = (  # characters, em width in regular, em width in bold (DejaVu Sans maxima, rounded up)
    ("ijlI.,:;'|", 0.34, 0.40),
    ("frt()/-!", 0.41, 0.50),
    (" ", 0.33, 0.35),
    ("0123456789", 0.64, 0.70),
    ("abcdeghknopqsuvxyz", 0.64, 0.72),
    ("mw", 0.98, 1.05),
    ("MW", 1.0, 1.11),
    ("ABCDEFGHJKLNOPQRSTUVXYZ", 0.79, 0.85),
    ("_*", 0.5, 0.53),
)
_REGULAR = {char: regular for chars, regular, _ in _CLASSES for char in chars}
_BOLD = {char: bold for chars, _, bold in _CLASSES for char in chars}
_OTHER_EM = 1.0
"""Anything else (symbols, accents, CJK): a full em, the widest a common glyph gets."""
ELLIPSIS = "…"


def text_width(text: str, bold: bool = False, size: float = FONT_PX) -> float:
    """An upper bound of ``text``'s rendered width at ``size`` px."""
    table = _BOLD if bold else _REGULAR
    return size * sum(table.get(char, _OTHER_EM) for char in text)


def fit(text: str, room: float, keep: int | None = None, bold: bool = False) -> str | None:
    """``text`` if it fits ``room``, else its longest prefix of at least ``keep`` characters (all of
    them by default) followed by an ellipsis that does, else None.

    A window's name is kept whole (a cut name could read as another window's); a hold's reason may
    be cut, its id may not.
    """
    if text_width(text, bold) <= room:
        return text
    least = len(text) if keep is None else keep
    table = _BOLD if bold else _REGULAR
    used, n = FONT_PX * table.get(ELLIPSIS, _OTHER_EM), 0
    for char in text:
        used += FONT_PX * table.get(char, _OTHER_EM)
        if used > room:
            break
        n += 1
    return text[:n].rstrip() + ELLIPSIS if n >= least else None


class Shelf:
    """The x intervals taken on one line of text (a label lane, an axis band).

    Intervals never overlap (``take`` follows a successful ``free``), so they stay sorted by both
    ends and one bisection answers whether a span is free.
    """

    def __init__(self) -> None:
        self._los: list[float] = []
        self._his: list[float] = []

    def free(self, lo: float, hi: float) -> bool:
        """Whether nothing taken meets the open span (lo, hi)."""
        i = bisect_left(self._los, hi)
        return i == 0 or self._his[i - 1] <= lo

    def take(self, lo: float, hi: float) -> None:
        """Mark (lo, hi) as taken; the caller checked it is free."""
        i = bisect_left(self._los, lo)
        self._los.insert(i, lo)
        self._his.insert(i, hi)
