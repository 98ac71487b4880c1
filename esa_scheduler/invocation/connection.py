"""Who the function is and where its calls go, resolved once per invocation before any change.

Credentials, the FC region and client settings come from the environment and FC's context; a
``Target`` given by the CLI or a test overrides the endpoint and credentials (the embedded
emulator). Every ESA client of the run, one or one per fleet target, is built here, so they all
log retries the same way and obey the same deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from esa_scheduler import config
from esa_scheduler.edge.credentials import Credentials, resolve_credentials
from esa_scheduler.edge.endpoints import resolve_endpoint, resolve_fc_endpoint, resolve_sts_endpoint
from esa_scheduler.edge.responses import EsaApiError
from esa_scheduler.errors import ConfigError
from esa_scheduler.fc_context import fc_field
from esa_scheduler.logs import RunLog

if TYPE_CHECKING:  # the clients (and httpx) load when resolve runs, after the event and schedule passed
    from esa_scheduler.edge.acs import ClientSettings
    from esa_scheduler.edge.client import EsaClient


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


@dataclass(frozen=True)
class SelfFunction:
    """This function as FC's ``InvokeFunction`` addresses it: how an ``async`` coordinator invokes itself."""

    endpoint: str
    name: str
    qualifier: str | None


def _self_function(context: Any, env: Mapping[str, str]) -> SelfFunction:
    """Name, qualifier and FC endpoint of this function, from FC's context (and ``ESA_FC_ENDPOINT``)."""
    from esa_scheduler.edge.fc_invoke import FC_NAME, FC_QUALIFIER

    name, qualifier = fc_field(context, "function", "name"), fc_field(context, "function", "qualifier") or None
    if not isinstance(name, str) or not FC_NAME.fullmatch(name):
        raise ConfigError(
            f"function.name {name!r} in FC's context is not an FC function name: {config.FANOUT}=async "
            "invokes the function by it"
        )
    if qualifier is not None and not (isinstance(qualifier, str) and FC_QUALIFIER.fullmatch(qualifier)):
        raise ConfigError(f"function.qualifier {qualifier!r} in FC's context is not an FC version or alias")
    account_id, region = fc_field(context, "account_id"), fc_field(context, "region")
    endpoint = resolve_fc_endpoint(
        env, account_id=None if account_id is None else str(account_id), region=str(region or "")
    )
    return SelfFunction(endpoint, name, qualifier)


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
    sts_endpoint: str | None = None
    """Where ``AssumeRole`` goes; resolved only when a target of the run has a role."""
    function: SelfFunction | None = None
    """This function, resolved only when the run fans out over FC (``ESA_FANOUT=async``)."""

    @classmethod
    def resolve(
        cls,
        override: Target,
        context: Any,
        environ: Mapping[str, str],
        deadline: float | None,
        *,
        assume_roles: bool = False,
        invoke_self: bool = False,
    ) -> Edge:
        """Raises ``UserError`` for unusable settings or missing credentials (nothing has changed yet).

        ``assume_roles`` (a target has a ``role_arn``) and ``invoke_self`` (async fan-out) also
        resolve the STS endpoint and this function's FC address, so a bad ``ESA_STS_ENDPOINT``,
        ``ESA_FC_ENDPOINT`` or FC context is refused before a hold is written, not halfway through.
        """
        from esa_scheduler.edge.acs import ClientSettings

        env = dict(environ)
        region = fc_field(context, "region")
        if isinstance(region, str) and region and not env.get(config.FC_REGION):
            env[config.FC_REGION] = region
        # a bad ESA_ENDPOINT or region fails here, before anything changed
        endpoint = resolve_endpoint(env, explicit=override.endpoint)
        credentials = override.credentials or resolve_credentials(fc_context=context, environ=env)
        sts_endpoint = (override.sts_endpoint or resolve_sts_endpoint(env)) if assume_roles else None
        function = _self_function(context, env) if invoke_self else None
        settings = ClientSettings.from_env(env)
        return cls(override, credentials, env, settings, context, deadline, endpoint, sts_endpoint, function)

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
        from esa_scheduler.edge.client import EsaClient

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
