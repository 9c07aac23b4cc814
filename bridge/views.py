"""Public JSON shapes of orders and services (API, CLI --json, callbacks share them).

Never includes a secret: passwords live only encrypted on steps.
"""

from datetime import date, datetime
from typing import Any

from bridge.db.models import Order, Service


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def order_view(order: Order) -> dict[str, Any]:
    """The order as billing and operators see it."""
    return {
        "id": str(order.id),
        "order_id": order.order_id,
        "service_id": order.service_id,
        "action": order.action.value,
        "status": order.status.value,
        "wait_reason": order.wait_reason.value if order.wait_reason else None,
        "server": order.server.name if order.server else None,
        "requested_by": order.requested_by.value,
        "attempts": order.attempts,
        "next_attempt_at": _iso(order.next_attempt_at),
        "last_error": order.last_error,
        "paid_until": order.payload.get("paid_until"),
        "callback_status": order.callback_status.value,
        "created_at": _iso(order.created_at),
        "updated_at": _iso(order.updated_at),
        "finished_at": _iso(order.finished_at),
        "steps": [
            {
                "position": step.position,
                "kind": step.kind.value,
                "status": step.status.value,
                "attempts": step.attempts,
                "last_error": step.error_message,
            }
            for step in order.steps
        ],
    }


def service_view(service: Service) -> dict[str, Any]:
    return {
        "service_id": service.service_id,
        "status": service.status.value,
        "server": service.server.name if service.server else None,
        "username": service.username,
        "domain": service.domain,
        "package": service.package,
        "paid_until": _day(service.paid_until),
        "suspension_reason": (
            service.suspension_reason.value if service.suspension_reason else None
        ),
    }
