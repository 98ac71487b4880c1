"""One parser per alert source, each turning what the source sends into normalized ``Alert``s
(``engine/alerts.py``) or one ``EventError("FIELD: problem")``: never a traceback, never an echo of
more than a glimpse of the input."""
