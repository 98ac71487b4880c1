"""The ``calendars:`` entry as a schedule file writes it: a country, listed dates or an ICS file."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

CalendarKind = Literal["holidays", "workdays"]


def empty_list() -> list[Any]:
    """The ``default_factory`` of a spec's list field, which pydantic inspects cheaply. It reads a
    default factory's signature as it builds a validator, and that of a builtin (``list``, ``dict``)
    is parsed from its text with tokenize, whose first use compiles a large regular expression (some
    2 ms of a cold start); a Python function's is read from its code. Models outside the schedule's
    JSON schema take a plain default (``[]``, ``{}``), which pydantic copies for each instance."""
    return []


def empty_dict() -> dict[str, Any]:
    """``empty_list``'s counterpart for a mapping field."""
    return {}


def reject_date_times(value: object) -> object:
    """A pydantic ``before`` check for date fields: YAML reads ``2026-12-25 10:00`` as a date-time,
    which pydantic would quietly truncate to its date; refuse it instead."""
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, datetime) for v in values):
        raise ValueError("expected a date like 2026-12-25, not a date-time")
    return value


def _date_item(value: object) -> object:
    """One item of ``dates`` and the patch lists: a date (YAML reads 2026-12-24 as one) or a string
    that ``parse_dates`` reads. Anything else is one problem here: pydantic would report it once per
    type of ``date | str``, and would read an integer as seconds since 1970."""
    reject_date_times(value)
    if not isinstance(value, date | str):
        raise ValueError("expected a date like 2026-12-24 or a range like 2026-12-28..2027-01-03")
    return value


DateItem = Annotated[date | str, BeforeValidator(_date_item)]


class CalendarSpec(BaseModel):
    """One entry of the top-level ``calendars:`` map: a country, a list of dates, or an ICS file."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    country: str | None = Field(default=None, min_length=1, description="ISO 3166-1 country code, e.g. CN or DE")
    subdiv: str | None = Field(default=None, min_length=1, description="subdivision code of the country, e.g. BE")
    kind: CalendarKind | None = Field(
        default=None,
        description="holidays (default): the country's public holidays, substituted days off included; "
        "workdays: Monday to Friday minus those holidays, plus official make-up workdays",
    )
    dates: list[DateItem] | None = Field(default=None, description="dates and inclusive ranges: 2026-12-28..2027-01-03")
    ics: str | None = Field(default=None, min_length=1, description="RFC 5545 file, relative to the schedule file")
    add_holidays: list[DateItem] = Field(default_factory=empty_list, description="dates to treat as days off")
    add_workdays: list[DateItem] = Field(default_factory=empty_list, description="dates to treat as working days")
    remove: list[DateItem] = Field(default_factory=empty_list, description="dates taken out of the library's own set")
