"""What a final order status does to its service (design.md §3 service table).

Shared by the engine (completion/failure) and operators (resolve by hand).
"""

from datetime import datetime

from bridge.db.models import Order
from bridge.domain.model import Action, SuspendReason
from bridge.domain.states import OrderStatus, ServiceStatus, next_service_status


def apply_service_effect(order: Order, status: OrderStatus, now: datetime) -> None:
    """Move the order's service to where a final `status` of the order leaves it."""
    service = order.service
    if status in (OrderStatus.FAILED, OrderStatus.CANCELLED):
        # A create that did not complete leaves no usable account: `failed` lets
        # billing post a new create for the service.
        if order.action is Action.CREATE and service.status is ServiceStatus.PENDING:
            service.status = ServiceStatus.FAILED
        return
    match order.action:
        case Action.CREATE:
            service.status = next_service_status(service.status, ServiceStatus.ACTIVE)
            service.server_id = order.server_id
        case Action.SUSPEND:
            service.status = next_service_status(
                service.status, ServiceStatus.SUSPENDED
            )
            service.suspension_reason = SuspendReason(
                order.payload.get("reason") or SuspendReason.OTHER
            )
            service.suspended_at = now
        case Action.UNSUSPEND:
            service.status = next_service_status(service.status, ServiceStatus.ACTIVE)
            service.suspension_reason = None
            service.suspended_at = None
        case Action.TERMINATE:
            service.status = next_service_status(
                service.status, ServiceStatus.TERMINATED
            )
            service.owns_account = False  # the account is gone
        case Action.CHANGE_PACKAGE:
            service.package = order.payload.get("package", service.package)
        case Action.CHANGE_PASSWORD:
            pass


def wipe_secrets(order: Order) -> None:
    """Drop every stored password of an order that can no longer run again.

    Called when an order reaches completed, cancelled or resolved: nothing will
    send those secrets any more, so they do not outlive their use.
    """
    for step in order.steps:
        step.secret_body = None
