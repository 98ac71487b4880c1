"""The schedule: YAML files under ``schedule/`` turned into one validated, immutable model.

Loading is strict on purpose (unknown keys are typos, not extensions) and reports every problem
at once, each on one line that names the file, the entry and the field, so an operator can fix a
schedule in one pass. The resolved model carries aware instants and ``ZoneInfo`` objects only.

``spec`` is the file format, ``model`` the resolved schedule a planner reads, ``load`` reads the
files, ``resolve`` (with ``resolve_windows``) turns specs into the model, and ``messages`` words
the problems. Importers name the submodule they use: this package re-exports nothing, so that
importing one part does not load the others.
"""
