"""Operator actions on the server registry: add, edit, drain, remove (audited).

Credentials are write-only: they are merged and encrypted here, and neither views
nor audit entries ever carry them (an audit entry says "credentials replaced").
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bridge import audit
from bridge.container import Services
from bridge.crypto import SecretBox
from bridge.db.models import Order, Server, Service
from bridge.db.servers import find_server_by_name, get_server_by_name
from bridge.domain.model import AuthMode, ServerState
from bridge.errors import ConfigurationError, InvalidOrderError
from bridge.fleet import ServerSpec, describe_server, save_server
from bridge.ops.errors import OperationRefusedError
from bridge.panel.tls import normalise_fingerprint
from bridge.webhook_subscriptions import Sleep, sync_subscription, unsubscribe

# Fields an edit may set back to "none" (unlimited capacity, system trust, the
# contract's routes).
CLEARABLE = frozenset({"capacity", "ca_bundle", "tls_fingerprint", "route_overrides"})
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ServerChanges:
    """What an operator gives to add or edit a server; None leaves a field as is."""

    url: str | None = None
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    totp_secret: str | None = None
    force_login: bool | None = None
    rate_limit_per_min: int | None = None
    group: str | None = None
    capacity: int | None = None
    ca_bundle: str | None = None
    tls_fingerprint: str | None = None
    state: ServerState | None = None
    webhooks: bool | None = None
    # Per operation: its new override, or None to drop it (back to the default
    # route). Applied after `clear` ("route_overrides" in it drops them all first).
    routes: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    clear: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_credentials(self) -> bool:
        return any((self.api_key, self.username, self.password, self.totp_secret))


def server_detail(server: Server) -> dict[str, Any]:
    """A server as operators see it (never its credentials)."""
    return {
        **describe_server(server),
        "force_login": server.force_login,
        "ca_bundle": server.ca_bundle,
        "tls_fingerprint": server.tls_fingerprint,
        "license_max_users": server.license_max_users,
        "created_at": server.created_at.isoformat(),
        "updated_at": server.updated_at.isoformat(),
    }


def list_servers(session: Session) -> list[dict[str, Any]]:
    return [
        server_detail(s) for s in session.scalars(select(Server).order_by(Server.name))
    ]


def _credentials(
    current_mode: AuthMode, current: dict[str, str], changes: ServerChanges
) -> tuple[AuthMode, dict[str, str]]:
    """The auth mode and credentials after `changes` (given ones win)."""
    login_given = any((changes.username, changes.password, changes.totp_secret))
    if changes.api_key and login_given:
        raise InvalidOrderError("api_key", "give an API key or login credentials")
    if changes.api_key:
        return AuthMode.API_KEY, {"api_key": changes.api_key}
    if not login_given:
        return current_mode, current
    # Switching from api_key to login needs a username and password of its own.
    base = dict(current) if current_mode is AuthMode.LOGIN else {}
    for name in ("username", "password", "totp_secret"):
        value = getattr(changes, name)
        if value:
            base[name] = value
    return AuthMode.LOGIN, base


def _tls(
    changes: ServerChanges, ca_bundle: str | None, fingerprint: str | None
) -> tuple[str | None, str | None]:
    """CA bundle and pin after `changes`; giving one drops the other."""
    if changes.tls_fingerprint:
        try:
            normalise_fingerprint(changes.tls_fingerprint)
        except ConfigurationError as exc:
            raise InvalidOrderError("tls_fingerprint", str(exc)) from None
        return None, changes.tls_fingerprint
    if changes.ca_bundle:
        if not Path(changes.ca_bundle).is_file():
            raise InvalidOrderError("ca_bundle", "no such file on this host")
        return changes.ca_bundle, None
    return ca_bundle, fingerprint


def _routes(
    current: Mapping[str, Mapping[str, str]], changes: ServerChanges
) -> dict[str, Mapping[str, str]]:
    """The route overrides after `changes` (checked when the server is saved)."""
    routes = {} if "route_overrides" in changes.clear else dict(current)
    for operation, entry in changes.routes.items():
        if entry is None:
            routes.pop(operation, None)
        else:
            routes[operation] = entry
    return routes


def _merged(server: Server, box: SecretBox, changes: ServerChanges) -> ServerSpec:
    creds = box.decrypt_json(server.credentials)
    mode, creds = _credentials(server.auth_mode, creds, changes)
    ca_bundle, fingerprint = _tls(changes, server.ca_bundle, server.tls_fingerprint)
    clear = changes.clear
    return ServerSpec(
        name=server.name,
        base_url=changes.url or server.base_url,
        auth_mode=mode,
        api_key=creds.get("api_key"),
        username=creds.get("username"),
        password=creds.get("password"),
        totp_secret=creds.get("totp_secret"),
        force_login=_given(changes.force_login, server.force_login),
        rate_limit_per_min=_given(
            changes.rate_limit_per_min, server.rate_limit_per_min
        ),
        group=changes.group or server.group_name,
        capacity=(
            None if "capacity" in clear else _given(changes.capacity, server.capacity)
        ),
        tls_verify=server.tls_verify,
        ca_bundle=None if "ca_bundle" in clear else ca_bundle,
        tls_fingerprint=None if "tls_fingerprint" in clear else fingerprint,
        state=changes.state or server.state,
        webhooks=_given(changes.webhooks, server.webhooks_enabled),
        route_overrides=_routes(server.route_overrides or {}, changes),
    )


def _given(value: _T | None, current: _T) -> _T:
    return current if value is None else value


def _new_spec(name: str, changes: ServerChanges) -> ServerSpec:
    if not changes.url:
        raise InvalidOrderError("url", "required for a new server")
    if not changes.has_credentials:
        raise InvalidOrderError("credentials", "an API key or username/password")
    mode, creds = _credentials(AuthMode.API_KEY, {}, changes)
    ca_bundle, fingerprint = _tls(changes, None, None)
    return ServerSpec(
        name=name,
        base_url=changes.url,
        auth_mode=mode,
        api_key=creds.get("api_key"),
        username=creds.get("username"),
        password=creds.get("password"),
        totp_secret=creds.get("totp_secret"),
        force_login=bool(changes.force_login),
        rate_limit_per_min=_given(changes.rate_limit_per_min, 60),
        group=changes.group or "default",
        capacity=changes.capacity,
        ca_bundle=ca_bundle,
        tls_fingerprint=fingerprint,
        state=changes.state or ServerState.ACTIVE,
        webhooks=bool(changes.webhooks),
        route_overrides=_routes({}, changes),
    )


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    skip = {"updated_at", "created_at", "circuit_open_until", "auth_error"}
    return {
        k: [before.get(k), v]
        for k, v in after.items()
        if k not in skip and before.get(k) != v
    }


def _save(
    services: Services,
    session: Session,
    spec: ServerSpec,
    actor: str,
    credentials_changed: bool,
) -> tuple[dict[str, Any], bool]:
    existing = find_server_by_name(session, spec.name)
    before = server_detail(existing) if existing is not None else {}
    # Flush so server_detail below sees the defaults and timestamps of a new row.
    server = save_server(session, services.box, spec)
    session.flush()
    after = server_detail(server)
    detail: dict[str, Any] = {"server": spec.name, "changed": _diff(before, after)}
    if credentials_changed:
        detail["auth"] = "credentials replaced"
    audit.record(
        session,
        actor=actor,
        action="server_edited" if existing is not None else "server_added",
        before=before.get("state"),
        after=after["state"],
        detail=detail,
    )
    return after, existing is None


def add_server(
    services: Services, spec: ServerSpec, actor: str, *, sleep: Sleep | None = None
) -> dict[str, Any]:
    """Register server `spec.name`, or replace it wholesale (`servers add`).

    `sleep` (as in the other functions here) lets the webhook (un)subscription
    wait for the shared budget; without it a budget wait is reported.
    """
    with services.sessions.begin() as session:
        _save(services, session, spec, actor, credentials_changed=True)
    return _with_webhook(services, spec.name, actor, sleep)


def put_server(
    services: Services, name: str, changes: ServerChanges, actor: str
) -> tuple[dict[str, Any], bool]:
    """Add server `name` or edit only the given fields; True when it is new.

    Raises InvalidOrderError for missing or contradictory fields.
    """
    with services.sessions.begin() as session:
        server = find_server_by_name(session, name)
        if server is None:
            spec = _new_spec(name, changes)
        else:
            spec = _merged(server, services.box, changes)
        _, created = _save(services, session, spec, actor, changes.has_credentials)
    return _with_webhook(services, name, actor), created


def edit_server(
    services: Services,
    name: str,
    changes: ServerChanges,
    actor: str,
    *,
    sleep: Sleep | None = None,
) -> dict[str, Any]:
    """Edit only the given fields of server `name`. Raises NotFoundError."""
    with services.sessions.begin() as session:
        spec = _merged(get_server_by_name(session, name), services.box, changes)
        _save(services, session, spec, actor, changes.has_credentials)
    return _with_webhook(services, name, actor, sleep)


def _with_webhook(
    services: Services, name: str, actor: str, sleep: Sleep | None = None
) -> dict[str, Any]:
    """Bring the panel subscription in line with the server's setting; the view
    after it, with what happened under `webhook`."""
    webhook = sync_subscription(services, name, actor=actor, sleep=sleep)
    with services.sessions() as session:
        return server_detail(get_server_by_name(session, name)) | {"webhook": webhook}


def drain_server(
    services: Services, name: str, actor: str, *, sleep: Sleep | None = None
) -> dict[str, Any]:
    """No new accounts on `name`; its existing accounts are still managed."""
    changes = ServerChanges(state=ServerState.DRAINING)
    return edit_server(services, name, changes, actor, sleep=sleep)


def remove_server(
    services: Services, name: str, actor: str, *, sleep: Sleep | None = None
) -> str | None:
    """Delete server `name` if nothing refers to it; a warning for the operator
    when the panel kept the bridge's webhook subscription, else None.

    Orders are history and keep pointing at their server, so a server that has
    been used is refused: set its state to `disabled` instead. A failed
    unsubscribe does not keep the server (the operator asked for it gone, and
    its events then only meet a 404), but is said. Raises NotFoundError and
    OperationRefusedError.
    """
    with services.sessions() as session:
        _refuse_if_used(session, get_server_by_name(session, name))
        subscribed = get_server_by_name(session, name).webhook_id is not None
    # Unsubscribe first: a removed server must not keep receiving events.
    webhook = (
        unsubscribe(services, name, actor=actor, sleep=sleep) if subscribed else None
    )
    with services.sessions.begin() as session:
        server = get_server_by_name(session, name)
        _refuse_if_used(session, server)
        before = server_detail(server)
        session.delete(server)
        audit.record(
            session,
            actor=actor,
            action="server_removed",
            before=before["state"],
            detail={"server": name, "url": before["url"], "group": before["group"]}
            | ({"webhook": webhook} if webhook else {}),
        )
    if not webhook or not webhook.get("error"):
        return None
    hook_id = webhook.get("id")
    return (
        f"the panel at {before['url']} still has the bridge's webhook subscription "
        f"{hook_id} ({webhook['error']}); delete it there: DELETE "
        f"/api/v1/webhooks/{hook_id} with an admin key, or the panel's Webhooks page. "
        f"Until then its deliveries to /v1/panel-events/{name} are answered 404."
    )


def _refuse_if_used(session: Session, server: Server) -> None:
    accounts = session.scalar(
        select(func.count(Service.service_id)).where(Service.server_id == server.id)
    )
    orders = session.scalar(
        select(func.count(Order.id)).where(Order.server_id == server.id)
    )
    if accounts or orders:
        msg = (
            f"server {server.name!r} is still referenced by {accounts} service(s) "
            f"and {orders} order(s); drain or disable it instead "
            f"(bridge servers edit {server.name} --state disabled)"
        )
        raise OperationRefusedError(msg)
