"""The pure engine: the schedule model, calendars, cron, window timelines and the planner (no I/O)."""
