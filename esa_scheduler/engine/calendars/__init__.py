"""Calendars: named sets of local dates (public holidays, workdays, listed dates) and ICS event files.

Windows refer to calendars by name: ``skip``/``only_on`` keep or drop an occurrence by the local date
it starts on, and ``calendar:`` makes every event of an ICS file an occurrence. Country data comes
from the ``holidays`` package (China's substituted days off and weekend make-up workdays included)
and ICS expansion from ``icalendar`` + ``recurring-ical-events``: calendars change every year, and
hand-kept tables or a home-grown RRULE expansion would be wrong sooner or later. Those libraries are
imported only when a schedule defines such a calendar, so a schedule without one pays nothing.

``spec`` is the ``calendars:`` entry as written, ``dates`` a calendar as windows ask it (and listed
dates), ``country`` the ``holidays`` calendars, ``ics`` the events of an ICS file, ``ics_read`` and
``ics_checks`` reading and checking that file, ``ics_quirks`` how the reader takes what real
producers write that RFC 5545 forbids, and ``resolve`` turns every file's entries into calendars.
Importers name the submodule they use: this package re-exports nothing.
"""
