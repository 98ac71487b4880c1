"""The incident intake (``handler.intake``): alerts and chat commands that reach the scheduler from the network.

It is a second function from the same code package, open to the network: every request is
authenticated (a shared token for ``/alerts/*``, DingTalk's signature for ``/chat/dingtalk``),
bounded and parsed strictly; hold changes are written to the state folder, the answer goes back at
once, and one asynchronous reconcile of the scheduler function is dispatched, so the intake itself
never calls ESA.

``http`` reads FC's HTTP trigger event and writes its answers, ``auth`` checks tokens and signatures,
``app`` routes a request, ``alerts`` and ``dingtalk`` serve the routes (``chat`` obeys the commands,
``replay`` remembers DingTalk message ids), ``sources`` normalize each alert source and ``apply``
turns alerts into holds (the handler's CloudEvents use both too), ``dispatch`` asks FC for the
reconcile, and ``server`` serves the same routes on loopback for ``esa-scheduler serve``.

Importers name the submodule (``intake.apply``, ``intake.sources.cloudmonitor``): this package
re-exports nothing, so the handler's path loads only what it uses.
"""
