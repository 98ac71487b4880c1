"""Incoming events -> intents: reconcile at an instant, create a hold, release holds.

FC hands the handler raw bytes: a timer trigger's JSON, a direct command, or a CloudEvents 1.0
envelope from EventBridge (one event or a batch). Every shape is a pydantic model, and anything
that is not exactly one of them is refused with the field it failed on, before anything changes.

``models`` holds the timer's shape and the ``Intent`` every shape becomes, ``commands`` the commands,
``body`` decodes a body and names the delivery, ``incidents`` holds the CloudEvent and matches it to
the schedule's incident rules, ``alerts`` reads the alerts of alert sources, and ``reader`` turns a
body into one ``Intent``, loading the modules of commands, CloudEvents and alerts only for such an
event. Importers name the submodule they use: this package re-exports nothing.
"""
