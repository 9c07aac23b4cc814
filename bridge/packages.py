"""The panels' packages (plans), cached per server: refresh, list, and the intake
check that turns a typo in a package name into a 422 before payment, not a failed
create after it.

A server's list is "known" once a refresh stored at least one package (every
panel has `default`); while unknown, intake accepts any name, as before.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bridge.container import Services
from bridge.db.models import PanelPackage, Server
from bridge.db.servers import get_server_by_name
from bridge.domain.model import Action, OrderSpec, ServerState
from bridge.errors import (
    BridgeError,
    InvalidOrderError,
    NotFoundError,
    RateLimitedError,
)
from bridge.panel import PanelError, PanelNotFoundError

log = structlog.get_logger(__name__)

_MAX_BUDGET_WAITS = 5
_MAX_NAMES_IN_ERROR = 50


class PackagesUnavailableError(BridgeError):
    """The panel's package list could not be read; the cache is unchanged."""


@dataclass(frozen=True, slots=True)
class PackageList:
    server: str
    refreshed_at: datetime | None
    packages: tuple[dict[str, Any], ...]


def refresh_packages(
    services: Services,
    name: str,
    *,
    sleep: Callable[[float], None] | None = None,
) -> PackageList:
    """Read server `name`'s packages from its panel and replace its cached list.

    With `sleep` (the CLI) a missing budget token is waited for; without it
    RateLimitedError is raised (a scheduled refresh tries again next tick).
    Raises NotFoundError, PackagesUnavailableError, RateLimitedError.
    """
    with services.sessions() as session:
        client = services.panels.client_for(get_server_by_name(session, name))
    items = _read_all(client, sleep)
    now = services.clock()
    with services.sessions.begin() as session:
        server = get_server_by_name(session, name)
        _replace(session, server, items, now)
    log.info("packages_refreshed", server=name, count=len(items))
    return PackageList(server=name, refreshed_at=now, packages=tuple(items))


def _read_all(
    client: Any, sleep: Callable[[float], None] | None
) -> list[dict[str, Any]]:
    for attempt in range(_MAX_BUDGET_WAITS + 1):
        try:
            page = client.list_packages()
            break
        except RateLimitedError as exc:
            if sleep is None or attempt == _MAX_BUDGET_WAITS:
                raise
            sleep(exc.retry_after)
        except PanelNotFoundError as exc:
            msg = "the panel has no package list (GET packages answered 404)"
            raise PackagesUnavailableError(msg) from exc
        except PanelError as exc:
            msg = f"the panel's package list could not be read: {exc}"
            raise PackagesUnavailableError(msg) from exc
    items = [
        dict(item)
        for item in page.items
        if isinstance(item.get("name"), str) and item["name"]
    ]
    if not items:
        msg = "the panel listed no packages (every panel has 'default')"
        raise PackagesUnavailableError(msg)
    return items


def _replace(
    session: Session, server: Server, items: list[dict[str, Any]], now: datetime
) -> None:
    names = [item["name"] for item in items]
    session.execute(
        delete(PanelPackage).where(
            PanelPackage.server_id == server.id, PanelPackage.name.not_in(names)
        )
    )
    existing = {
        p.name: p
        for p in session.scalars(
            select(PanelPackage).where(PanelPackage.server_id == server.id)
        )
    }
    for item in items:
        details = {k: v for k, v in item.items() if k != "name"}
        row = existing.get(item["name"])
        if row is None:
            row = PanelPackage(server_id=server.id, name=item["name"])
            session.add(row)
        row.details = details
        row.refreshed_at = now


def cached_packages(session: Session, server: Server) -> PackageList:
    """The cached list of `server` (empty `packages` while unknown)."""
    rows = list(
        session.scalars(
            select(PanelPackage)
            .where(PanelPackage.server_id == server.id)
            .order_by(PanelPackage.name)
        )
    )
    return PackageList(
        server=server.name,
        refreshed_at=max((r.refreshed_at for r in rows), default=None),
        packages=tuple({"name": r.name, **r.details} for r in rows),
    )


def group_packages(session: Session, group: str) -> dict[str, Any]:
    """The packages every known server of `group` offers (what placement can use).

    Raises NotFoundError when no server is in the group.
    """
    servers = list(
        session.scalars(
            select(Server)
            .where(Server.group_name == group, Server.state == ServerState.ACTIVE)
            .order_by(Server.name)
        )
    )
    if not servers:
        msg = f"no active server in group {group!r}"
        raise NotFoundError(msg)
    lists = [cached_packages(session, s) for s in servers]
    known = [pl for pl in lists if pl.packages]
    names = _common_names(known)
    return {
        "group": group,
        "servers": [s.name for s in servers],
        "known_servers": [pl.server for pl in known],
        "packages": [{"name": n} for n in sorted(names or ())],
    }


def _common_names(lists: list[PackageList]) -> set[str] | None:
    common: set[str] | None = None
    for package_list in lists:
        names = {p["name"] for p in package_list.packages}
        common = names if common is None else common & names
    return common


def valid_package_names(
    session: Session, server: Server | None, group: str | None
) -> tuple[str, set[str]] | None:
    """Where a package must exist for an order, and the names allowed there.

    None when nothing is known (no cached list): the order is not checked.
    """
    if server is not None:
        # Names only, through the connection: this runs on every create's intake.
        names = set(
            session.connection().scalars(
                select(PanelPackage.name).where(PanelPackage.server_id == server.id)
            )
        )
        return (f"server {server.name}", names) if names else None
    stmt = select(Server).where(Server.state == ServerState.ACTIVE)
    if group is not None:
        stmt = stmt.where(Server.group_name == group)
    known = [
        pl
        for pl in (cached_packages(session, s) for s in session.scalars(stmt))
        if pl.packages
    ]
    common = _common_names(known)
    if common is None:
        return None
    return (f"group {group}" if group else "the fleet", common)


PackageLookup = Callable[
    [Session, Server | None, str | None], tuple[str, set[str]] | None
]


def check_order_package(
    session: Session,
    spec: OrderSpec,
    server: Server | None,
    *,
    lookup: PackageLookup | None = None,
) -> None:
    """Intake hook: refuse a create/change_package whose package the target lacks.

    `lookup` replaces `valid_package_names` (a batch of creates reads each
    target's list once). Raises InvalidOrderError (422) naming the field and the
    valid names.
    """
    if spec.action is Action.CREATE and spec.account is not None:
        field, package = "account.package", spec.account.package
    elif spec.action is Action.CHANGE_PACKAGE and spec.package:
        field, package = "package", spec.package
    else:
        return
    target = server
    if spec.action is Action.CREATE and not spec.server:
        # Placed by the bridge: the group's list (what every known server of it
        # offers, as GET /v1/packages?group= shows billing), not the one server
        # this order happened to land on, so the answer does not depend on
        # placement and the account could move to any server of the group.
        target = None
    allowed = (lookup or valid_package_names)(session, target, spec.server_group)
    if allowed is None:
        return
    where, names = allowed
    if package in names:
        return
    listed = sorted(names)[:_MAX_NAMES_IN_ERROR]
    reason = f"unknown package {package!r} on {where}; valid: {', '.join(listed)}"
    raise InvalidOrderError(field, reason)


def refresh_all_packages(services: Services) -> dict[str, str]:
    """Scheduled refresh of every non-disabled server; one failure skips one server."""
    with services.sessions() as session:
        names = list(
            session.scalars(
                select(Server.name).where(Server.state != ServerState.DISABLED)
            )
        )
    outcome: dict[str, str] = {}
    for name in names:
        try:
            refresh_packages(services, name)
            outcome[name] = "ok"
        except (PackagesUnavailableError, RateLimitedError, NotFoundError) as exc:
            log.warning("packages_refresh_failed", server=name, error=str(exc))
            outcome[name] = str(exc)
    return outcome
