"""The bridge's webhook subscription on each panel (`ssl.issued`, `user.*`).

Subscribed when a server has webhooks enabled and BRIDGE_PUBLIC_URL is set (on
`servers add`/`edit`/`test`), removed on `servers remove` or when disabled. The
Idempotency-Key is stored (`webhook_id = "pending:<key>"`) before the create is
sent, so a lost answer is retried with the same key and the panel replays it
rather than making a second subscription. The secret is kept encrypted only.
"""

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from bridge import audit
from bridge.container import Services
from bridge.db.models import Server
from bridge.db.servers import get_server_by_name
from bridge.errors import ConfigurationError, RateLimitedError
from bridge.panel import PanelClient, PanelError, PanelNotFoundError

log = structlog.get_logger(__name__)

EVENTS = ["ssl.issued", "user.*"]
PENDING = "pending:"
_MAX_BUDGET_WAITS = 5
_T = TypeVar("_T")
Sleep = Callable[[float], None]
# The CLI waits this long at most for the shared budget before each call (as
# `servers test` and import wait for theirs); a longer wait is reported instead.
CLI_MAX_BUDGET_WAIT_SECONDS = 10.0


def receiver_url(services: Services, server_name: str) -> str | None:
    """Where the panel posts this server's events (None: BRIDGE_PUBLIC_URL unset)."""
    base = services.settings.public_url
    if not base:
        return None
    return f"{base.rstrip('/')}/v1/panel-events/{server_name}"


def sync_subscription(
    services: Services,
    server_name: str,
    *,
    actor: str,
    sleep: Sleep | None = None,
) -> dict[str, Any]:
    """Subscribe or unsubscribe server `server_name` to match its setting.

    Never raises for a panel problem: the answer says what happened, for the
    CLI and API to show. `sleep` lets a caller wait for the shared budget.
    Raises NotFoundError for an unknown server.
    """
    with services.sessions() as session:
        server = get_server_by_name(session, server_name)
        enabled, current = server.webhooks_enabled, server.webhook_id
    if not enabled:
        if current and not current.startswith(PENDING):
            return unsubscribe(services, server_name, actor=actor, sleep=sleep)
        return {"enabled": False, "subscribed": False, "note": "webhooks disabled"}
    if current and not current.startswith(PENDING):
        return {"enabled": True, "subscribed": True, "id": current}
    url = receiver_url(services, server_name)
    if url is None:
        note = "BRIDGE_PUBLIC_URL is not set: not subscribed (polling only)"
        return {"enabled": True, "subscribed": False, "note": note}
    return _subscribe(services, server_name, url, actor, sleep)


def _budgeted(call: Callable[[], _T], sleep: Sleep | None) -> _T:
    for _ in range(_MAX_BUDGET_WAITS):
        try:
            return call()
        except RateLimitedError as exc:
            if sleep is None:
                raise
            sleep(exc.retry_after)
    return call()


def _subscribe(
    services: Services, server_name: str, url: str, actor: str, sleep: Sleep | None
) -> dict[str, Any]:
    with services.sessions.begin() as session:
        server = get_server_by_name(session, server_name)
        if not (server.webhook_id or "").startswith(PENDING):
            server.webhook_id = PENDING + str(uuid.uuid4())
        key = (server.webhook_id or "").removeprefix(PENDING)
        client = _client(services, server)
    if client is None:
        return _failed("server configuration is invalid")
    try:
        response = _budgeted(
            lambda: client.create_webhook(url, EVENTS, idempotency_key=key), sleep
        )
    except RateLimitedError as exc:
        return _failed(f"panel budget exhausted; retry in {exc.retry_after:.0f}s")
    except PanelNotFoundError:
        return _failed("the panel has no webhooks endpoint (POST /api/v1/webhooks/)")
    except PanelError as exc:
        return _failed(str(exc))
    data = response.data.get("data") if isinstance(response.data, dict) else None
    hook_id = data.get("id") if isinstance(data, dict) else None
    secret = data.get("secret") if isinstance(data, dict) else None
    if not isinstance(hook_id, str) or not isinstance(secret, str) or not secret:
        return _failed("the panel's answer has no subscription id and secret")
    with services.sessions.begin() as session:
        server = get_server_by_name(session, server_name)
        server.webhook_id = hook_id
        server.webhook_secret = services.box.encrypt(secret)
        audit.record(
            session,
            actor=actor,
            action="webhook_subscribed",
            detail={"server": server_name, "webhook_id": hook_id, "events": EVENTS},
        )
    log.info("webhook_subscribed", server=server_name, webhook_id=hook_id)
    return {"enabled": True, "subscribed": True, "id": hook_id, "events": EVENTS}


def unsubscribe(
    services: Services,
    server_name: str,
    *,
    actor: str,
    sleep: Sleep | None = None,
) -> dict[str, Any]:
    """Delete the panel subscription (a 404 means it is already gone)."""
    with services.sessions() as session:
        server = get_server_by_name(session, server_name)
        hook_id = server.webhook_id
        client = _client(services, server)
    note = None
    if hook_id and not hook_id.startswith(PENDING) and client is not None:
        try:
            key = str(uuid.uuid4())
            _budgeted(
                lambda: client.delete_webhook(hook_id, idempotency_key=key), sleep
            )
        except PanelNotFoundError:
            note = "subscription was already gone on the panel"
        except (PanelError, RateLimitedError) as exc:
            # Keep the id: a later edit/remove tries again.
            return _failed(f"unsubscribe failed: {exc}") | {"id": hook_id}
    with services.sessions.begin() as session:
        server = get_server_by_name(session, server_name)
        server.webhook_id = None
        server.webhook_secret = None
        enabled = server.webhooks_enabled
        audit.record(
            session,
            actor=actor,
            action="webhook_unsubscribed",
            detail={"server": server_name, "webhook_id": hook_id, "note": note},
        )
    log.info("webhook_unsubscribed", server=server_name, webhook_id=hook_id)
    return {"enabled": enabled, "subscribed": False, "note": note or "unsubscribed"}


def _client(services: Services, server: Server) -> PanelClient | None:
    try:
        return services.panels.client_for(server)
    except ConfigurationError:
        return None


def _failed(error: str) -> dict[str, Any]:
    return {"enabled": True, "subscribed": False, "error": error}
