"""Alibaba Cloud credentials: the value type, and (later) the lookup chain.

The secret and the STS token are kept out of ``repr`` so that no log line, traceback or error
message can carry them by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, optionally with an STS security token; ``source`` says where it came from."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    source: str = "explicit"
