"""Notifications: tell chat groups and webhooks when the scheduler acts, fails, holds or is about to act.

Only ``model`` is imported by the schedule loader; everything that sends is imported lazily, when a
schedule has ``notify:`` entries, so the timer's cold start does not pay for it.
"""
