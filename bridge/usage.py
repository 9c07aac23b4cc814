"""Disk and bandwidth usage per service: collection from the panels (a run per
server, resumable step by step) and the queries billing's usage-update reads.

Collection spends only the usage lane of a server's budget (BRIDGE_USAGE_BUDGET_SHARE,
bridge.lanes), so provisioning is never starved. It reads the bulk endpoint page by
page and falls back to one call per account when the panel lacks it (404) or the
credential may not use it (403). When no account answers either (every one 404),
the panel has no usage endpoint at the configured paths: the run ends with that
error (one warning per run; `usage sync` exits 1) instead of "0 stored". One run
per server at a time: a Redis lock holds the run's id; a run that dies releases it
by expiry (BRIDGE_USAGE_LOCK_SECONDS).
"""

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bridge.container import Services
from bridge.db.models import Server, Service, ServiceUsage
from bridge.db.servers import get_server_by_name
from bridge.domain.model import ServerState
from bridge.domain.states import ServiceStatus
from bridge.errors import BridgeError, NotFoundError, RateLimitedError
from bridge.lanes import usage_client
from bridge.panel import (
    PanelClient,
    PanelError,
    PanelNotFoundError,
    PanelRejectedError,
    PanelRetryableError,
    PanelThrottledError,
)

log = structlog.get_logger(__name__)

BULK = "bulk"
PER_USER = "user"
# Per account after the bulk form failed, while no account has answered yet: if
# none does, the panel has no usage endpoint at all (at these paths).
PROBE = "probe"
# Accounts whose usage is worth collecting (a terminated one is gone).
_MEASURED = (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED)
MAX_PER_PAGE = 500


class UsageRunBusyError(BridgeError):
    """A collection run for this server is already in progress."""


class UsageCollectionError(BridgeError):
    """A run ended without collecting: no usage endpoint, panel down or refusing."""


class _NoUsageEndpointError(Exception):
    """Neither the bulk nor the per-account usage path exists on the panel."""


@dataclass(frozen=True, slots=True)
class UsageProgress:
    """Where a run stands after one step: done, or resume at `cursor` later."""

    server: str
    cursor: str
    done: bool
    stored: int
    retry_after: float | None = None
    # Why the run ended without finishing (None: finished, or resumes later).
    error: str | None = None


def lock_key(server: str) -> str:
    return f"bridge:usage:{{{server}}}:run"


def begin_run(services: Services, server: str) -> str | None:
    """Take the server's run lock; the run id, or None when a run holds it."""
    run_id = uuid.uuid4().hex
    ttl = max(1, math.ceil(services.settings.usage_lock_seconds))
    taken = services.redis.set(lock_key(server), run_id, nx=True, ex=ttl)
    return run_id if taken else None


def end_run(services: Services, server: str, run_id: str) -> None:
    """Release the lock if this run still holds it."""
    key = lock_key(server)
    if services.redis.get(key) == run_id.encode():
        services.redis.delete(key)


def start_usage_runs(services: Services) -> list[tuple[str, str]]:
    """Beat: start a run on every server not disabled and not already running.

    Returns (server, run_id) pairs for the caller to enqueue as first steps.
    """
    now = services.clock()
    with services.sessions() as session:
        names = [
            s.name
            for s in session.scalars(
                select(Server)
                .where(Server.state != ServerState.DISABLED)
                .order_by(Server.name)
            )
            # A panel whose circuit is open or whose credentials were rejected
            # is left alone until it recovers.
            if not s.auth_error
            and (s.circuit_open_until is None or s.circuit_open_until <= now)
        ]
    started = []
    for name in names:
        run_id = begin_run(services, name)
        if run_id is not None:
            started.append((name, run_id))
    log.info("usage_runs_started", servers=[s for s, _ in started])
    return started


def collect_step(
    services: Services, server_name: str, cursor: str, run_id: str
) -> UsageProgress:
    """Collect until the usage lane says wait, the run ends, or it fails.

    A run whose lock is no longer ours (expired and taken over) stops at once.
    Any exception (the server gone, its client unbuildable: ConfigurationError)
    ends the run too: the lock is released, so a retry reports the same error
    instead of "already running" until the lock expires.
    """
    key = lock_key(server_name)
    if services.redis.get(key) != run_id.encode():
        log.info("usage_run_superseded", server=server_name)
        return UsageProgress(server_name, cursor, done=True, stored=0)
    services.redis.expire(key, max(1, math.ceil(services.settings.usage_lock_seconds)))
    resumes = False
    try:
        progress = _collect(services, server_name, cursor)
        resumes = not progress.done
        return progress
    finally:
        if not resumes:
            end_run(services, server_name, run_id)


def _collect(services: Services, server_name: str, cursor: str) -> UsageProgress:
    """The panel calls of one step; done unless the lane or the panel says wait."""
    with services.sessions() as session:
        server = get_server_by_name(session, server_name)
        client = usage_client(services, server)
        server_id = server.id
    stored = 0
    try:
        while True:
            cursor, count, done = _advance(services, client, server_id, cursor)
            stored += count
            if done:
                log.info("usage_run_finished", server=server_name)
                return UsageProgress(server_name, cursor, done=True, stored=stored)
    except RateLimitedError as exc:
        return UsageProgress(server_name, cursor, False, stored, exc.retry_after)
    except PanelThrottledError as exc:
        return UsageProgress(server_name, cursor, False, stored, exc.retry_after)
    except _NoUsageEndpointError:
        routes = client.routes
        error = (
            f"server {server_name}: the panel has no usage endpoint (bulk "
            f"{routes['list_usage'].path} missing or refused, and "
            f"{routes['get_user_usage'].path} answered 404 for every account); "
            f"set the panel's paths with `bridge servers edit {server_name} "
            f"--route-override list_usage=GET:/… "
            f"--route-override get_user_usage=GET:/…/{{username}}`"
        )
        log.warning("usage_endpoint_missing", server=server_name, error=error)
    except PanelRetryableError as exc:
        # Down or flaky: end the run rather than poll a sick panel; the next beat
        # tick starts afresh (usage is a periodic snapshot, nothing is owed).
        log.warning("usage_panel_unavailable", server=server_name, error=str(exc))
        error = f"server {server_name}: panel unavailable: {exc}"
    except PanelError as exc:
        log.error("usage_run_failed", server=server_name, error=str(exc))
        error = f"server {server_name}: usage collection failed: {exc}"
    finally:
        client.close()
    # Only the failures above get here: the run ends, and says why.
    return UsageProgress(server_name, cursor, True, stored, error=error)


def _advance(
    services: Services, client: PanelClient, server_id: uuid.UUID, cursor: str
) -> tuple[str, int, bool]:
    """One panel call: (next cursor, rows stored, finished)."""
    mode, _, position = cursor.partition(":")
    if mode in ("", BULK):
        page = int(position or 1)
        try:
            result = client.list_usage(
                page=page, per_page=services.settings.usage_per_page
            )
        except (PanelNotFoundError, PanelRejectedError) as exc:
            if page != 1:
                raise
            # No bulk endpoint (404) or not an admin key (403): one call per user.
            log.info("usage_bulk_unavailable", server_id=str(server_id), error=str(exc))
            return f"{PROBE}:", 0, False
        count = _store(services, server_id, result.items)
        if result.has_more and result.items:
            return f"{BULK}:{page + 1}", count, False
        return f"{BULK}:{page}", count, True
    with services.sessions() as session:
        service = session.scalars(
            select(Service)
            .where(
                Service.server_id == server_id,
                Service.status.in_(_MEASURED),
                Service.service_id > position,
            )
            .order_by(Service.service_id)
            .limit(1)
        ).one_or_none()
        if service is None:
            if mode == PROBE and position:
                raise _NoUsageEndpointError
            return cursor, 0, True
        service_id, username = service.service_id, service.username or ""
    try:
        response = client.get_user_usage(username)
    except PanelNotFoundError:
        if mode == PROBE:
            # No account has answered yet: the path itself may be missing (said
            # once, at the end of the run, not once per account).
            log.info("usage_account_not_found", service_id=service_id)
        else:
            log.warning("usage_account_missing", service_id=service_id)
        return f"{mode}:{service_id}", 0, False
    item = response.data if isinstance(response.data, dict) else {}
    count = _store(services, server_id, [{**item, "username": username}])
    return f"{PER_USER}:{service_id}", count, False


def _figure(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)


def _text(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) else None


def _store(
    services: Services, server_id: uuid.UUID, items: list[dict[str, Any]]
) -> int:
    """Upsert the figures of the items that belong to a live service of the server."""
    figures = {}
    for item in items:
        disk = _figure(item.get("disk_used_mb"))
        bandwidth = _figure(item.get("bandwidth_used_mb"))
        username = item.get("username")
        if isinstance(username, str) and disk is not None and bandwidth is not None:
            figures[username] = (disk, bandwidth, item)
    if not figures:
        return 0
    now = services.clock()
    with services.sessions.begin() as session:
        services_by_user = {
            s.username or "": s
            for s in session.scalars(
                select(Service).where(
                    Service.server_id == server_id,
                    Service.status.in_(_MEASURED),
                    Service.username.in_(list(figures)),
                )
            )
        }
        ids = [s.service_id for s in services_by_user.values()]
        rows = {
            r.service_id: r
            for r in session.scalars(
                select(ServiceUsage).where(ServiceUsage.service_id.in_(ids))
            )
        }
        for username, service in services_by_user.items():
            disk, bandwidth, item = figures[username]
            row = rows.get(service.service_id)
            if row is None:
                row = ServiceUsage(service_id=service.service_id)
                session.add(row)
            row.server_id = server_id
            row.username = username
            row.disk_used_mb = disk
            row.bandwidth_used_mb = bandwidth
            row.period_start = _text(item.get("period_start"))
            row.measured_at = _text(item.get("measured_at"))
            row.collected_at = now
    return len(services_by_user)


def sync_server(
    services: Services,
    name: str,
    *,
    sleep: Callable[[float], None],
    on_step: Callable[[UsageProgress], None] | None = None,
) -> int:
    """Operator's `usage sync`: run a whole collection now, waiting for budget.

    Raises NotFoundError, UsageRunBusyError, UsageCollectionError (no usage
    endpoint, panel unavailable or refusing; what was stored before stays).
    """
    with services.sessions() as session:
        get_server_by_name(session, name)
    run_id = begin_run(services, name)
    if run_id is None:
        msg = f"a usage collection for {name} is already running"
        raise UsageRunBusyError(msg)
    cursor, stored = "", 0
    while True:
        progress = collect_step(services, name, cursor, run_id)
        stored += progress.stored
        cursor = progress.cursor
        if on_step is not None:
            on_step(progress)
        if progress.error is not None:
            raise UsageCollectionError(progress.error)
        if progress.done:
            return stored
        sleep(progress.retry_after or 0)


# --- queries (billing's usage-update run, `usage show`) ---


def usage_row(row: ServiceUsage, server: str | None) -> dict[str, Any]:
    return {
        "service_id": row.service_id,
        "server": server,
        "username": row.username,
        "disk_used_mb": row.disk_used_mb,
        "bandwidth_used_mb": row.bandwidth_used_mb,
        "period_start": row.period_start,
        "measured_at": row.measured_at,
        "collected_at": row.collected_at.isoformat(),
    }


def service_usage(session: Session, service_id: str) -> dict[str, Any]:
    """The latest figures of one service (`usage` null before the first collection).

    Raises NotFoundError for an unknown service.
    """
    service = session.get(Service, service_id)
    if service is None:
        msg = f"service {service_id!r} not found"
        raise NotFoundError(msg)
    row = session.get(ServiceUsage, service_id)
    server = service.server.name if service.server is not None else None
    return {
        "service_id": service_id,
        "usage": usage_row(row, server) if row is not None else None,
    }


def list_usage(
    session: Session,
    *,
    server: str | None,
    since: datetime | None,
    page: int,
    per_page: int,
) -> dict[str, Any]:
    """Figures collected since `since` (optionally on one server), oldest first.

    Raises NotFoundError for an unknown server.
    """
    clauses = []
    if server is not None:
        clauses.append(ServiceUsage.server_id == get_server_by_name(session, server).id)
    if since is not None:
        clauses.append(ServiceUsage.collected_at >= since)
    total = (
        session.scalar(select(func.count()).select_from(ServiceUsage).where(*clauses))
        or 0
    )
    stmt = (
        select(ServiceUsage, Server.name)
        .join(Server, Server.id == ServiceUsage.server_id)
        .where(*clauses)
        .order_by(ServiceUsage.collected_at, ServiceUsage.service_id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = [usage_row(row, name) for row, name in session.execute(stmt)]
    return {
        "usage": rows,
        "meta": {
            "total": total,
            "page": page,
            "per_page": per_page,
            "last_page": max(1, math.ceil(total / per_page)),
        },
    }
