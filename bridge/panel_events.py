"""Panel webhook deliveries: verify, de-duplicate, and act on the few that matter.

`ssl.issued` wakes the order waiting on that domain's certificate (next attempt
now); the engine still reads the certificate before acting, so an event is only
a hint and polling stays the fallback. `user.*` events about a managed account
are noted in the audit log. Anything else is accepted and ignored.
"""

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge import audit
from bridge.container import Services
from bridge.db.models import Order, PanelEventDelivery, Server, Service, Step
from bridge.db.servers import find_server_by_name
from bridge.domain.model import StepKind
from bridge.domain.states import OrderStatus, StepStatus, WaitReason
from bridge.errors import BridgeError, CryptoError
from bridge.queue import RUN_ORDER_TASK, enqueue_after_commit

log = structlog.get_logger(__name__)

MAX_SKEW_SECONDS = 300
# Longer than the skew window: a replay older than this fails the timestamp check.
DEDUPE_SECONDS = 3 * MAX_SKEW_SECONDS
_USER_EVENTS = frozenset(
    {
        "user.created",
        "user.suspended",
        "user.unsuspended",
        "user.deleted",
        "user.package_changed",
    }
)


class PanelEventRejectedError(BridgeError):
    """A delivery refused before anything was read from it (status to answer)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook POST as received (raw body: the signature covers its bytes)."""

    server: str
    body: bytes
    signature: str | None
    delivery_id: str | None


def receive(services: Services, delivery: Delivery) -> dict[str, Any]:
    """Verify and apply one delivery; return what was done.

    Raises PanelEventRejectedError: 404 (unknown server, or not subscribed),
    401 (bad signature, stale timestamp), 400 (malformed body or headers).
    """
    now = services.clock()
    with services.sessions.begin() as session:
        server = find_server_by_name(session, delivery.server)
        if server is None or not server.webhook_secret:
            raise PanelEventRejectedError(
                404, f"no webhook subscription for server {delivery.server!r}"
            )
        _verify_signature(services, server, delivery)
        event, data = _parse(delivery.body, now)
        if not delivery.delivery_id or len(delivery.delivery_id) > 128:  # noqa: PLR2004
            raise PanelEventRejectedError(
                400, "X-WisPanel-Delivery: missing or too long"
            )
        if event != "ssl.issued" and event not in _USER_EVENTS:
            return {"event": event, "result": "ignored"}
        if not _first_time(session, server, delivery.delivery_id, event, now):
            return {"event": event, "result": "duplicate"}
        if event == "ssl.issued":
            woken = wake_ssl_orders(session, server, str(data.get("domain", "")), now)
            result = {"event": event, "result": "applied", "woken": woken}
        else:
            result = {
                "event": event,
                "result": _note_user_event(session, server, event, data),
            }
    log.info(
        "panel_event",
        server=delivery.server,
        panel_event=result["event"],
        result=result["result"],
    )
    return result


def _verify_signature(services: Services, server: Server, delivery: Delivery) -> None:
    try:
        secret = services.box.decrypt(server.webhook_secret or "")
    except CryptoError:
        raise PanelEventRejectedError(401, "webhook secret unreadable") from None
    expected = hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    scheme, _, given = (delivery.signature or "").partition("=")
    # compare_digest on equal-type operands: constant time over the hex digest.
    if scheme != "sha256" or not hmac.compare_digest(expected, given.strip().lower()):
        raise PanelEventRejectedError(401, "X-WisPanel-Signature does not match")


def _parse(body: bytes, now: datetime) -> tuple[str, dict[str, Any]]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise PanelEventRejectedError(400, "body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        raise PanelEventRejectedError(400, "body: 'event' missing")
    stamp = payload.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise PanelEventRejectedError(400, "body: 'timestamp' missing")
    try:
        seconds = float(stamp)  # a 400-digit integer overflows
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):  # NaN would pass the window check below
        raise PanelEventRejectedError(400, "body: 'timestamp' must be a finite number")
    if abs(now.timestamp() - seconds) > MAX_SKEW_SECONDS:
        raise PanelEventRejectedError(401, "timestamp outside the 300 s window")
    data = payload.get("data")
    return payload["event"], data if isinstance(data, dict) else {}


def _first_time(
    session: Session, server: Server, delivery_id: str, event: str, now: datetime
) -> bool:
    """Record the delivery id; False when it was already applied (a replay)."""
    session.execute(
        delete(PanelEventDelivery).where(
            PanelEventDelivery.server_id == server.id,
            PanelEventDelivery.expires_at < now,
        )
    )
    try:
        with session.begin_nested():
            session.add(
                PanelEventDelivery(
                    server_id=server.id,
                    delivery_id=delivery_id,
                    event=event,
                    received_at=now,
                    expires_at=now + timedelta(seconds=DEDUPE_SECONDS),
                )
            )
    except IntegrityError:
        return False
    return True


def wake_ssl_orders(
    session: Session, server: Server, domain: str, now: datetime
) -> list[str]:
    """Make due now the orders waiting (ssl_pending) on `domain`'s certificate."""
    domain = domain.strip().lower()
    rows = session.execute(
        select(Order.id, Step.params)
        .join(Step, Step.order_uuid == Order.id)
        .where(
            Order.server_id == server.id,
            Order.status == OrderStatus.WAITING,
            Order.wait_reason == WaitReason.SSL_PENDING,
            Step.kind == StepKind.ISSUE_SSL,
            Step.status.in_((StepStatus.PENDING, StepStatus.IN_FLIGHT)),
        )
    ).all()
    ids = [
        r.id for r in rows if str((r.params or {}).get("domain", "")).lower() == domain
    ]
    if not ids:
        return []
    woken = session.scalars(
        update(Order)
        .where(
            Order.id.in_(ids),
            Order.status == OrderStatus.WAITING,
            Order.wait_reason == WaitReason.SSL_PENDING,
        )
        .values(next_attempt_at=now, enqueued_at=now)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    ).all()
    for order_uuid in woken:
        enqueue_after_commit(session, RUN_ORDER_TASK, str(order_uuid))
    return [str(u) for u in woken]


def _note_user_event(
    session: Session, server: Server, event: str, data: dict[str, Any]
) -> str:
    """Audit a user event about a managed account (no state change: a hint only)."""
    username = str(data.get("username", ""))
    service = session.scalars(
        select(Service)
        .where(Service.server_id == server.id, Service.username == username)
        .order_by(Service.created_at.desc())
        .limit(1)
    ).first()
    if service is None:
        return "ignored"
    audit.record(
        session,
        actor=f"panel:{server.name}",
        action="panel_event",
        service_id=service.service_id,
        before=service.status.value,
        after=service.status.value,
        detail={"event": event, "username": username},
    )
    return "noted"
