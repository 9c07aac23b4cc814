"""`mint_sso()`: a single-use panel login link for a service's account (§10.1).

The link is a credential: it is returned to the caller and nothing else — never
logged, stored or audited (the audit entry says which service and when, and for
a refusal, why). Minted only with an API key (a JWT must never travel in a URL),
through the server's priority lane: a person is waiting, so queued work stands
aside for one slot. It also needs one of the server's in-flight slots
(BRIDGE_SERVER_MAX_IN_FLIGHT) and waits for one at most
BRIDGE_SSO_MAX_WAIT_SECONDS, then answers "busy".
"""

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from bridge import audit
from bridge.container import Services
from bridge.db.models import Server, Service
from bridge.domain.model import AuthMode, ServerState
from bridge.domain.states import ServiceStatus
from bridge.errors import BridgeError, NotFoundError, RateLimitedError
from bridge.lanes import priority_client
from bridge.panel import (
    PanelAuthError,
    PanelError,
    PanelNotFoundError,
    PanelPermanentError,
    PanelRetryableError,
)

log = structlog.get_logger(__name__)

MIN_EXPIRES = 30
MAX_EXPIRES = 900
_TARGET_PATH = re.compile(r"/[\x21-\x7e]{0,511}")


class SsoConflictError(BridgeError):
    """SSO cannot be offered for this service as things stand (409)."""


class SsoUnavailableError(BridgeError):
    """The panel cannot mint now (throttled, down, credentials rejected) (503)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class SsoPanelError(BridgeError):
    """The panel answered 404: no such account there, or no SSO endpoint (502)."""


@dataclass(frozen=True, slots=True)
class SsoLink:
    url: str = ""
    expires_at: datetime | None = None

    def __repr__(self) -> str:  # the url is a credential
        return f"SsoLink(expires_at={self.expires_at!r})"


def check_target_path(value: str | None) -> str | None:
    """A panel-relative path (`/…`, printable, <= 512 chars) or None.

    Raises ValueError otherwise (an absolute URL would be an open redirect).
    """
    if value is None:
        return None
    if not _TARGET_PATH.fullmatch(value) or value.startswith("//"):
        msg = "must be a panel-relative path starting with / (no scheme or host)"
        raise ValueError(msg)
    return value


# Every way a mint can end without a link (the route maps each to its status).
_REFUSAL_KIND: dict[type[BridgeError], str] = {  # -> detail["refusal"]
    NotFoundError: "not_found",
    SsoConflictError: "conflict",
    SsoUnavailableError: "unavailable",
    SsoPanelError: "panel",
}
_REFUSALS = tuple(_REFUSAL_KIND)


def mint_sso(
    services: Services,
    service_id: str,
    *,
    target_path: str | None = None,
    expires_in: int | None = None,
    actor: str = "billing",
    sleep: Callable[[float], None] = time.sleep,
) -> SsoLink:
    """Mint a link that logs the service's account into its panel, once.

    Raises NotFoundError (unknown service), SsoConflictError (service not active,
    server in login mode), SsoUnavailableError, SsoPanelError. Every outcome is
    audited: `sso_minted`, or `sso_refused` with the refusal's kind and reason
    (one place, below, so a new refusal cannot skip it); never the link.
    """
    lifetime = min(
        max(expires_in or services.settings.sso_link_seconds, MIN_EXPIRES), MAX_EXPIRES
    )
    server_name: str | None = None
    try:
        with services.sessions() as session:
            service = session.get(Service, service_id)
            if service is None:
                msg = f"service {service_id!r} not found"
                raise NotFoundError(msg)
            server_name = service.server.name if service.server else None
            server = _check_mintable(service, services.clock())
            username = service.username or ""
            client = priority_client(services, server)
        try:
            data = _mint(
                client,
                services,
                username=username,
                lifetime=lifetime,
                target_path=target_path,
                sleep=sleep,
            )
        finally:
            client.close()
        url = data.get("consume_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise SsoUnavailableError("the panel's answer held no usable link")
    except _REFUSALS as exc:
        kind = next(k for cls, k in _REFUSAL_KIND.items() if isinstance(exc, cls))
        _audit(
            services,
            actor=actor,
            service_id=service_id,
            server=server_name,
            action="sso_refused",
            refusal=kind,
            reason=str(exc),
        )
        log.info(
            "sso_refused",
            service_id=service_id,
            server=server_name,
            refusal=kind,
            reason=str(exc),
        )
        raise
    granted = data.get("expires_in")
    seconds = granted if isinstance(granted, int) and granted > 0 else lifetime
    expires_at = services.clock() + timedelta(seconds=seconds)
    _audit(
        services,
        actor=actor,
        service_id=service_id,
        server=server_name,
        action="sso_minted",
        expires_in=seconds,
    )
    log.info("sso_minted", service_id=service_id, server=server_name)
    return SsoLink(url=url, expires_at=expires_at)


def _check_mintable(service: Service, now: datetime) -> Server:
    if service.status is not ServiceStatus.ACTIVE:
        msg = f"service is {service.status.value}: SSO needs an active service"
        raise SsoConflictError(msg)
    server = service.server
    if server is None or not service.username:
        msg = "service has no panel account"
        raise SsoConflictError(msg)
    if server.auth_mode is not AuthMode.API_KEY:
        msg = (
            f"server {server.name} is registered in login mode: SSO needs an API "
            f"key (bridge servers edit {server.name} --api-key wsp_…)"
        )
        raise SsoConflictError(msg)
    if server.state is ServerState.DISABLED:
        raise SsoUnavailableError(f"server {server.name} is disabled")
    if server.auth_error:
        raise SsoUnavailableError(f"server {server.name}: panel credentials rejected")
    if server.circuit_open_until is not None and server.circuit_open_until > now:
        wait = (server.circuit_open_until - now).total_seconds()
        raise SsoUnavailableError(f"panel {server.name} is unavailable", wait)
    return server


def _mint(
    client: Any,
    services: Services,
    *,
    username: str,
    lifetime: int,
    target_path: str | None,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    budget = services.settings.sso_max_wait_seconds
    waited = 0.0
    while True:
        try:
            response = client.mint_sso(
                username,
                expires_in=lifetime,
                target_path=target_path,
                # The panel does not de-duplicate auth calls; a fresh key per mint
                # keeps a replay from ever handing one nonce to two clicks.
                idempotency_key=str(uuid.uuid4()),
            )
        except RateLimitedError as exc:
            if waited + exc.retry_after > budget:
                # No token, or every in-flight slot of the server taken: the
                # person gets a clear "busy" rather than a hung request.
                raise SsoUnavailableError(
                    "panel busy (rate budget or concurrent calls used up); "
                    "try again shortly",
                    exc.retry_after,
                ) from exc
            sleep(exc.retry_after)
            waited += exc.retry_after
            continue
        except PanelError as exc:
            raise _map_panel_error(exc) from exc
        data: dict[str, Any] = response.data if isinstance(response.data, dict) else {}
        return data


def _map_panel_error(exc: PanelError) -> BridgeError:
    if isinstance(exc, PanelNotFoundError):
        return SsoPanelError(
            "the panel answered 404: no such account there, or no SSO endpoint"
        )
    if isinstance(exc, PanelRetryableError):
        retry_after = getattr(exc, "retry_after", None)
        return SsoUnavailableError(
            f"panel unavailable ({exc.status or 'no answer'})", retry_after
        )
    if isinstance(exc, PanelAuthError):
        return SsoUnavailableError("panel credentials rejected")
    if isinstance(exc, PanelPermanentError):
        return SsoConflictError(f"panel refused SSO: {exc.message or exc.status}")
    return SsoUnavailableError("panel error")


def _audit(
    services: Services,
    *,
    actor: str,
    service_id: str,
    server: str | None,
    action: str,
    refusal: str | None = None,
    reason: str | None = None,
    expires_in: int | None = None,
) -> None:
    detail: dict[str, Any] = {"server": server}
    if refusal is not None:
        detail["refusal"] = refusal
    if reason is not None:
        detail["reason"] = reason
    if expires_in is not None:
        detail["expires_in"] = expires_in
    with services.sessions.begin() as session:
        audit.record(
            session, actor=actor, action=action, service_id=service_id, detail=detail
        )
