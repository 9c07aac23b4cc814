"""`GET /metrics`: event metrics (multiprocess-aware) plus state read at scrape time.

State gauges come from the database (live orders by action/status, queue depth,
dispatcher lag) and Redis (how long each server's budget is blocked), so they are
right whichever process scrapes them.
"""

import os
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select

from bridge.api.edge import EdgeRoute
from bridge.container import Services
from bridge.db.models import Order, Server
from bridge.db.orders import LIVE_STATUSES
from bridge.domain.states import OrderStatus
from bridge.errors import BridgeError
from bridge.fleet import panel_config
from bridge.panel.client import bucket_key

router = APIRouter(tags=["health"], route_class=EdgeRoute)

_LISTED = (*LIVE_STATUSES, OrderStatus.AWAITING_CAPACITY, OrderStatus.FAILED)


class StateCollector(Collector):
    """Gauges computed from the DB and Redis on each scrape."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        services = self._services
        now = services.clock()
        orders = GaugeMetricFamily(
            "bridge_orders",
            "Orders not yet finished (and failed ones).",
            labels=["action", "status"],
        )
        due_filter = (
            Order.status.in_(LIVE_STATUSES),
            or_(Order.next_attempt_at.is_(None), Order.next_attempt_at <= now),
            or_(Order.lease_until.is_(None), Order.lease_until < now),
        )
        with services.sessions() as session:
            for action, status, count in session.execute(
                select(Order.action, Order.status, func.count())
                .where(Order.status.in_(_LISTED))
                .group_by(Order.action, Order.status)
            ):
                orders.add_metric([action.value, status.value], count)
            depth, oldest = session.execute(
                select(
                    func.count(),
                    func.min(func.coalesce(Order.next_attempt_at, Order.created_at)),
                ).where(*due_filter)
            ).one()
            servers = list(session.scalars(select(Server).order_by(Server.name)))
        yield orders
        yield GaugeMetricFamily(
            "bridge_queue_depth", "Orders due now and not leased.", value=depth
        )
        lag = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "bridge_dispatcher_lag_seconds",
            "Age of the oldest due, unleased order.",
            value=max(lag, 0.0),
        )
        yield self._blocked(servers)

    def _blocked(self, servers: list[Server]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "bridge_budget_blocked_seconds",
            "Seconds each server's shared budget stays blocked after a 429.",
            labels=["server"],
        )
        limiter = self._services.limiter
        for server in servers:
            try:
                key = bucket_key(panel_config(server, self._services.box))
                until = limiter.blocked_until(key)
                now = limiter.redis_time()
            except BridgeError:
                continue  # Redis away or a key we cannot decrypt: skip, not 500
            family.add_metric([server.name], max((until or now) - now, 0.0))
        return family


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus exposition: event metrics of every process plus current state."""
    services: Services = request.app.state.services
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        events = CollectorRegistry()
        multiprocess.MultiProcessCollector(events)  # type: ignore[no-untyped-call]
    else:
        events = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector(services))
    body = generate_latest(events) + generate_latest(state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
