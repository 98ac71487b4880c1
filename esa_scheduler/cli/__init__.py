"""The ``esa-scheduler`` command line: ``app`` wires the parser, one module per command group acts.

``main`` and ``build_parser`` are exported here, so the console script (``esa_scheduler.cli:main``)
and ``from esa_scheduler.cli import main`` name the package.
"""

from esa_scheduler.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
