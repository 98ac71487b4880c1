"""Who the function is and where its calls go, resolved once per invocation before any change.

Credentials, the FC region and client settings come from the environment and FC's context; a
``Target`` given by the CLI or a test overrides the endpoint and credentials (the embedded
emulator). Every ESA client of the run, one or one per fleet target, is built here, so they all
log retries the same way and obey the same deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from esa_scheduler import config
from esa_scheduler.edge.acs import ClientSettings
from esa_scheduler.edge.client import EsaClient
from esa_scheduler.edge.credentials import Credentials, resolve_credentials
from esa_scheduler.edge.endpoints import resolve_endpoint
from esa_scheduler.edge.responses import EsaApiError
from esa_scheduler.logs import RunLog


@dataclass(frozen=True)
class Target:
    """Where to send ESA calls and as whom; ``None`` fields are resolved from the environment.

    ``ephemeral`` marks an ESA whose state dies with the run (the embedded emulator): nothing is
    recorded about it, so a later run against the real ESA never inherits its last-run instant.
    ``sts_endpoint`` points role assumption at the same stand-in, so a demo never leaves loopback.
    """

    endpoint: str | None = None
    credentials: Credentials | None = None
    ephemeral: bool = False
    sts_endpoint: str | None = None


def fc_field(context: Any, *path: str) -> Any:
    """``context.a.b`` or ``None``: FC's context differs between runtimes, and tests pass stand-ins."""
    for name in path:
        context = getattr(context, name, None)
    return context


@dataclass(frozen=True)
class Edge:
    """The invocation's identity and settings: the base of every client the run builds."""

    override: Target
    credentials: Credentials
    env: Mapping[str, str]
    settings: ClientSettings
    context: Any
    deadline: float | None
    endpoint: str
    """The ESA endpoint without a fleet target's own: the override, ``ESA_ENDPOINT`` or the region's."""

    @classmethod
    def resolve(cls, override: Target, context: Any, environ: Mapping[str, str], deadline: float | None) -> Edge:
        """Raises ``UserError`` for unusable settings or missing credentials (nothing has changed yet)."""
        env = dict(environ)
        region = fc_field(context, "region")
        if isinstance(region, str) and region and not env.get(config.FC_REGION):
            env[config.FC_REGION] = region
        # a bad ESA_ENDPOINT or region fails here, before anything changed
        endpoint = resolve_endpoint(env, explicit=override.endpoint)
        credentials = override.credentials or resolve_credentials(fc_context=context, environ=env)
        return cls(override, credentials, env, ClientSettings.from_env(env), context, deadline, endpoint)

    def esa_endpoint(self, region: str | None = None, explicit: str | None = None) -> str:
        """A target's own endpoint, else the override (or ``ESA_ENDPOINT``), else the region's.

        An ephemeral override (the embedded emulator) wins over everything: a demo stays on loopback."""
        if self.override.ephemeral and self.override.endpoint:
            return self.endpoint
        return resolve_endpoint(self.env, region=region, explicit=explicit or self.override.endpoint)

    def esa_client(
        self, log: RunLog, *, endpoint: str | None = None, credentials: Credentials | None = None
    ) -> EsaClient:
        """An ESA client that logs each retry as ``api.retry`` on ``log``."""
        return EsaClient(
            endpoint or self.endpoint,
            credentials or self.credentials,
            self.settings,
            on_retry=retry_logger(log),
            deadline=self.deadline,
        )


def retry_logger(log: RunLog) -> Callable[[EsaApiError, float], None]:
    """``on_retry`` for any client of the run (ESA, STS, FC): each retry is one ``api.retry`` line,
    so a call that ends in an error shows what it went through first, whichever API it was."""

    def retrying(error: EsaApiError, delay: float) -> None:
        log.warning(
            "api.retry",
            action=error.action,
            error_code=error.code,
            error=str(error),
            attempt=error.attempts,
            delay_ms=round(delay * 1000),
        )

    return retrying
