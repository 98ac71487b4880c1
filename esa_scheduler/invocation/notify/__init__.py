"""Notifications: tell chat groups and webhooks when the scheduler acts, fails, holds or is about to act.

The ``notify:`` entries are part of the schedule format (``engine/schedule/spec.py``); everything here
sends, and is imported lazily, only when a schedule has ``notify:`` entries, so the timer's cold start
does not pay for it.
"""
