"""Incoming events -> intents: reconcile at an instant, create a hold, release holds.

FC hands the handler raw bytes: a timer trigger's JSON, a direct command, or a CloudEvents 1.0
envelope from EventBridge (one event or a batch). Every shape is a pydantic model, and anything
that is not exactly one of them is refused with the field it failed on, before anything changes.

``models`` holds those shapes and the ``Intent`` they become, ``body`` decodes a body and names the
delivery, ``incidents`` matches CloudEvents to the schedule's incident rules, and ``reader`` turns a
body into one ``Intent``. Importers name the submodule they use: this package re-exports nothing.
"""
