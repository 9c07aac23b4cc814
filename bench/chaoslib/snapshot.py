"""What the bridge believes after a run, read from its database as plain dicts.

Read-only; the run's processes are stopped before the final snapshot is taken.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from bridge.db.models import Order, Server, Service

LIVE = ("queued", "running", "waiting", "awaiting_capacity")


@dataclass
class Snapshot:
    """Orders by billing order_id, services by service_id, step keys by key."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    # idempotency key -> {"order_id", "kind", "natural_key"}
    keys: dict[str, dict[str, str]] = field(default_factory=dict)


def status_counts(engine: Engine) -> dict[str, int]:
    """Return the number of orders per status."""
    with Session(engine) as session:
        rows = session.execute(
            select(Order.status, func.count()).group_by(Order.status)
        )
        return {str(status): int(count) for status, count in rows}


def live_orders(engine: Engine) -> int:
    """Return how many orders are not final yet."""
    counts = status_counts(engine)
    return sum(counts.get(s, 0) for s in LIVE)


def leased_by(engine: Engine, pid: int) -> int:
    """Return how many running orders a worker process holds a lease on."""
    # Lease owners are "<host>:<pid>:<thread>:<nonce>" (bridge.engine).
    with Session(engine) as session:
        count = session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.status == "running", Order.lease_owner.like(f"%:{pid}:%"))
        )
    return int(count or 0)


def take(engine: Engine) -> Snapshot:
    """Read every order (with steps), service and server."""
    snap = Snapshot()
    with Session(engine) as session:
        servers = {s.id: s.name for s in session.scalars(select(Server))}
        for service in session.scalars(select(Service)):
            snap.services[service.service_id] = {
                "service_id": service.service_id,
                "status": str(service.status),
                "server": servers.get(service.server_id) if service.server_id else None,
                "username": service.username,
                "domain": service.domain,
                "package": service.package,
            }
        orders = session.scalars(select(Order).options(selectinload(Order.steps)))
        for order in orders:
            snap.orders[order.order_id] = _order(order, servers)
            for step in order.steps:
                snap.keys[step.idempotency_key] = {
                    "order_id": order.order_id,
                    "kind": str(step.kind),
                    "natural_key": natural_key(
                        str(step.kind), step.params, step.request_body
                    ),
                }
    return snap


def _order(order: Order, servers: dict[Any, str]) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "id": str(order.id),
        "service_id": order.service_id,
        "service_seq": order.service_seq,
        "action": str(order.action),
        "status": str(order.status),
        "wait_reason": str(order.wait_reason) if order.wait_reason else None,
        "server": servers.get(order.server_id) if order.server_id else None,
        "attempts": order.attempts,
        "last_error": order.last_error,
        "payload": dict(order.payload or {}),
        "steps": [
            {
                "kind": str(s.kind),
                "status": str(s.status),
                "attempts": s.attempts,
                "error_code": s.error_code,
                "error_message": s.error_message,
                "panel_status": s.panel_status,
                "idempotency_key": s.idempotency_key,
            }
            for s in order.steps
        ],
    }


def natural_key(kind: str, params: dict[str, Any], body: dict[str, Any]) -> str:
    """Return the ledger key a creating step makes (username, domain, address)."""
    match kind:
        case "create_user":
            return str(body.get("username"))
        case "create_domain":
            return str(body.get("domain"))
        case "issue_ssl":
            return str(params.get("domain"))
        case "create_mailbox":
            return f"{body.get('username')}@{body.get('domain')}"
    return ""


LEDGER_KIND = {
    "create_user": "user",
    "create_domain": "domain",
    "issue_ssl": "certificate",
    "create_mailbox": "mailbox",
}
