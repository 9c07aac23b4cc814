"""Signed callbacks to billing: schedule on a final status, deliver with backoff.

Body `{order_id, service_id, action, status, result}`; headers X-Bridge-Timestamp,
X-Bridge-Signature = sha256 HMAC over "<timestamp>.<raw body>" and X-Bridge-Delivery
(a uuid chosen when the callback is scheduled, the same on every retry of it). Only
URLs whose origin is allowed are ever called (no SSRF through `callback_url`).
"""

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bridge import metrics
from bridge.container import Clock
from bridge.db.models import Order
from bridge.domain.model import CallbackStatus
from bridge.domain.retry_policy import RetryPolicy
from bridge.domain.states import OrderStatus
from bridge.queue import DELIVER_CALLBACK_TASK, enqueue_after_commit
from bridge.settings import Settings, origin_of

log = structlog.get_logger(__name__)


def allowed_origins(settings: Settings) -> set[str]:
    origins = {origin_of(o) for o in settings.callback_allowed_origins}
    if not origins and settings.billing_callback_url:
        origins.add(origin_of(settings.billing_callback_url))
    return origins


def is_allowed_callback_url(settings: Settings, url: str) -> bool:
    if urlsplit(url).scheme not in ("http", "https"):
        return False
    return origin_of(url) in allowed_origins(settings)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def callback_body(order: Order) -> bytes:
    result = (
        "success"
        if order.status is OrderStatus.COMPLETED
        else (order.last_error or order.status.value)
    )
    return json.dumps(
        {
            "order_id": order.order_id,
            "service_id": order.service_id,
            "action": order.action.value,
            "status": order.status.value,
            "result": result,
        },
        separators=(",", ":"),
    ).encode()


def schedule_callback(
    settings: Settings, session: Session, order: Order, now: datetime
) -> None:
    """Mark the order's callback due and send the delivery task after commit."""
    if not order.callback_url:
        return
    order.callback_status = CallbackStatus.PENDING
    order.callback_next_at = now
    order.callback_attempts = 0
    # A new final status (e.g. completed after an ops retry) is a new delivery.
    order.callback_delivery_id = uuid.uuid4()
    enqueue_after_commit(session, DELIVER_CALLBACK_TASK, str(order.id))


def find_due_callbacks(session: Session, now: datetime, limit: int) -> list[uuid.UUID]:
    stmt = (
        select(Order.id)
        .where(
            Order.callback_status == CallbackStatus.PENDING,
            Order.callback_next_at <= now,
        )
        .order_by(Order.callback_next_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def deliver_callback(
    settings: Settings,
    sessions: sessionmaker[Session],
    http: httpx.Client,
    clock: Clock,
    order_uuid: uuid.UUID,
) -> None:
    """POST the signed callback once; on failure schedule the next try."""
    now = clock()
    claim_until = now + timedelta(seconds=settings.callback_timeout * 2)
    with sessions.begin() as session:
        # Claim: push callback_next_at forward so a duplicate message does not
        # deliver at the same time; the dispatcher retries if we die.
        claimed = session.execute(
            update(Order)
            .where(
                Order.id == order_uuid,
                Order.callback_status == CallbackStatus.PENDING,
                Order.callback_next_at <= now,
            )
            .values(callback_next_at=claim_until)
        ).rowcount  # type: ignore[attr-defined]
        if claimed != 1:
            return
        order = session.get_one(Order, order_uuid)
        url = order.callback_url or ""
        body = callback_body(order)
        # Rows scheduled before the column existed get their id on first delivery.
        if order.callback_delivery_id is None:
            order.callback_delivery_id = uuid.uuid4()
        delivery = str(order.callback_delivery_id)
    error = _post(settings, http, url, body, delivery=delivery, clock=clock)
    with sessions.begin() as session:
        order = session.get_one(Order, order_uuid, with_for_update=True)
        if (
            order.callback_status is not CallbackStatus.PENDING
            or str(order.callback_delivery_id) != delivery
        ):
            # A newer final status (an ops retry or resolve) scheduled its own
            # delivery while this one was on the wire: this answer is not its.
            log.info("callback_superseded", order_id=order.order_id)
            return
        order.callback_attempts += 1
        if error is None:
            order.callback_status = CallbackStatus.DELIVERED
            order.callback_next_at = None
            order.callback_last_error = None
            log.info("callback_delivered", order_id=order.order_id)
            return
        order.callback_last_error = error
        metrics.CALLBACK_FAILURES.inc()
        policy = RetryPolicy(
            base=settings.backoff_base_seconds,
            cap=settings.backoff_cap_seconds,
            max_attempts=settings.callback_max_attempts,
            max_age_seconds=settings.max_step_age,
        )
        delay = policy.next_delay(order.callback_attempts, now=clock(), started_at=None)
        if delay is None:
            order.callback_status = CallbackStatus.FAILED
            order.callback_next_at = None
            log.error("callback_failed", order_id=order.order_id, error=error)
        else:
            order.callback_next_at = clock() + timedelta(seconds=delay)
            log.warning(
                "callback_retry_scheduled",
                order_id=order.order_id,
                error=error,
                delay=round(delay, 3),
            )


def _post(
    settings: Settings,
    http: httpx.Client,
    url: str,
    body: bytes,
    *,
    delivery: str,
    clock: Clock,
) -> str | None:
    """Send once; None on 2xx, else a short reason (never a secret)."""
    if not is_allowed_callback_url(settings, url):
        return "callback origin not allowed"
    secret = settings.effective_callback_secret
    if secret is None:
        return "no callback secret configured"
    timestamp = str(int(clock().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Bridge-Timestamp": timestamp,
        "X-Bridge-Signature": sign(secret.get_secret_value(), timestamp, body),
        "X-Bridge-Delivery": delivery,
    }
    try:
        response = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}"
    if 200 <= response.status_code < 300:  # noqa: PLR2004
        return None
    return f"HTTP {response.status_code}"
