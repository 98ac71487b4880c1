"""Pictures of the schedule for people and calendar apps: an HTML timeline and an ICS feed.

Both are CLI-only (``plan --html`` / ``plan --ics``) and are never imported on the FC timer path.
"""
