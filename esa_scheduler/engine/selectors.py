"""Task selectors: an exact task name or a shell glob, as windows, holds, incidents and notify entries
write them (and CloudEvent fields are matched the same way)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Generic, TypeVar

GLOB_CHARS = frozenset("*?[")
T = TypeVar("T")


def is_glob(selector: str) -> bool:
    """A selector with shell wildcards matches names; any other selector is an exact name."""
    return any(c in GLOB_CHARS for c in selector)


def selector_matches(selector: str, name: str) -> bool:
    """Case-sensitive match, because ESA task names are case-sensitive."""
    return fnmatch.fnmatchcase(name, selector) if is_glob(selector) else selector == name


def selectors_overlap(a: str, b: str) -> bool:
    """Whether two selectors may select a common name: either may be a glob the other (a name, or a
    glob read as one) matches, so windows, holds and task patterns that could meet are found."""
    return selector_matches(a, b) or selector_matches(b, a)


class SelectorIndex(Generic[T]):
    """Which values' selectors match a name, without trying every selector on every name.

    Exact names are a dict lookup and ``prefix*`` globs (the common case) a lookup per distinct
    prefix length; only other globs fall back to matching one by one.
    """

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._exact: dict[str, list[T]] = {}
        self._prefixes: dict[int, dict[str, list[T]]] = {}
        self._globs: list[tuple[re.Pattern[str], T]] = []
        for selector, value in entries:
            head = selector[:-1]
            if not is_glob(selector):
                self._exact.setdefault(selector, []).append(value)
            elif selector.endswith("*") and not is_glob(head):
                self._prefixes.setdefault(len(head), {}).setdefault(head, []).append(value)
            else:
                self._globs.append((re.compile(fnmatch.translate(selector)), value))

    def lookup(self, name: str) -> list[T]:
        """Every value whose selector matches ``name``, in insertion order, without repeats."""
        found = list(self._exact.get(name, ()))
        for length, table in self._prefixes.items():
            if len(name) >= length:
                found.extend(table.get(name[:length], ()))
        found.extend(value for pattern, value in self._globs if pattern.match(name))
        return list(dict.fromkeys(found))
