"""What an order targets: a create's new service row, and the order's server.

Shared by intake's two paths (`bridge.intake` and `bridge.intake_fast`).
"""

from bridge.db.base import utcnow
from bridge.db.models import Server, Service
from bridge.db.servers import Placement
from bridge.domain.model import AccountSpec, Action, OrderSpec, ServerState
from bridge.domain.states import ServiceStatus
from bridge.errors import InvalidOrderError


def new_service(spec: OrderSpec) -> Service:
    """A transient service row for a create (every defaulted column set)."""
    if spec.account is None:
        raise InvalidOrderError("account", "required for create")
    created = utcnow()
    service = Service(
        service_id=spec.service_id,
        order_seq=0,
        owns_account=False,
        suspension_reason=None,
        suspended_at=None,
        paid_until=None,
        created_at=created,
        updated_at=created,
    )
    set_account(service, spec, spec.account)
    return service


def set_account(service: Service, spec: OrderSpec, account: AccountSpec) -> None:
    service.status = ServiceStatus.PENDING
    service.username = account.username
    service.account_role = account.role
    service.domain = spec.domain
    service.package = account.package


def choose_server(
    spec: OrderSpec, service: Service, placement: Placement
) -> Server | None:
    """The order's server: the service's, the named one, or placed in its group."""
    if spec.action is not Action.CREATE:
        if service.server is None:
            raise InvalidOrderError("service_id", "service has no server")
        return service.server
    if spec.server:
        server = placement.named(spec.server)
        if server is None:
            raise InvalidOrderError("server", "unknown server")
        if server.state is not ServerState.ACTIVE:
            raise InvalidOrderError("server", f"server is {server.state.value}")
        # An explicitly named server is the operator's call: capacity is not
        # enforced here, only for placement.
        return server
    return placement.place(spec.server_group)
