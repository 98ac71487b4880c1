"""The incident intake: alerts and chat commands that reach the scheduler from the network.

Importers name the submodule (``intake.apply``, ``intake.sources.cloudmonitor``): this package
re-exports nothing, so the handler's path loads only what it uses.
"""
