"""Suspension and termination sweeps (design.md §4): ordinary orders for overdue
services, created in batches, refused when the blast-radius guard trips.

Safe when two beats run at once: each batch transaction takes a per-kind advisory
lock on PostgreSQL (SQLite's BEGIN IMMEDIATE serialises writers anyway), so the
second sweep selects after the first one's orders are visible; the deterministic
order_id with ON CONFLICT DO NOTHING is the backstop. Orders are not enqueued here:
the dispatcher sends them in priority order, so a sweep of thousands never floods
the broker ahead of paying customers' orders.
"""

import dataclasses
import zlib
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any, Literal

import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bridge import metrics
from bridge.callbacks import is_allowed_callback_url
from bridge.container import Services
from bridge.db import sweeps as sweeps_db
from bridge.db.models import SweepRun
from bridge.db.sweeps import DueService, SweepTarget
from bridge.domain.model import Action
from bridge.settings import Settings

log = structlog.get_logger(__name__)

SweepKind = Literal["suspend", "terminate"]
SWEEP_KINDS: tuple[SweepKind, ...] = ("suspend", "terminate")
_ACTIONS = {"suspend": Action.SUSPEND, "terminate": Action.TERMINATE}


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep found and did (or, dry-run or tripped, would have done)."""

    kind: str
    today: date
    enabled: bool
    candidates: int = 0
    fleet: int = 0
    orders_created: int = 0
    tripped: bool = False
    dry_run: bool = False
    confirmed_by: str | None = None
    run_id: int | None = None
    # Dry-run only: the first candidates, in the order the sweep would act.
    preview: tuple[DueService, ...] = ()


def guard_trips(settings: Settings, candidates: int, fleet: int) -> bool:
    """True when a sweep would touch an abnormal share of the fleet.

    Small fleets (at most `sweep_guard_floor` services) are never blocked.
    """
    return (
        fleet > settings.sweep_guard_floor
        and candidates > settings.sweep_guard_max_share * fleet
    )


def run_sweep(
    services: Services,
    kind: SweepKind,
    *,
    today: date | None = None,
    dry_run: bool = False,
    confirm: bool = False,
    actor: str = "sweep",
    preview_limit: int = 1000,
) -> SweepReport:
    """Run one sweep of `kind` as of `today` (UTC, from the clock by default).

    A disabled sweep does nothing (a dry run still previews). Every other run is
    recorded in `sweep_runs`; `confirm` releases the guard for this run only and
    names `actor` as the operator who did.
    """
    settings = services.settings
    day = today or services.clock().astimezone(UTC).date()
    target = SweepTarget(_ACTIONS[kind], day, _grace_days(settings, kind))
    enabled = _enabled(settings, kind)
    if not enabled and not dry_run:
        log.info("sweep_disabled", kind=kind)
        return SweepReport(kind, day, enabled=False)
    report, run_id = _start(
        services,
        target,
        kind,
        dry_run=dry_run,
        confirm=confirm,
        actor=actor,
        preview_limit=preview_limit,
    )
    report = dataclasses.replace(report, enabled=enabled)
    if dry_run:
        log.info(
            "sweep_previewed",
            kind=kind,
            candidates=report.candidates,
            fleet=report.fleet,
            would_trip=report.tripped,
        )
        return report
    if report.tripped:
        metrics.SWEEP_GUARD_TRIPS.labels(kind).inc()
        log.error(
            "sweep_guard_tripped",
            kind=kind,
            candidates=report.candidates,
            fleet=report.fleet,
            max_share=settings.sweep_guard_max_share,
        )
        return report
    created = _create_orders(services, target, actor=actor, run_id=run_id)
    with services.sessions.begin() as session:
        run = session.get_one(SweepRun, run_id)
        run.orders_created = created
        run.finished_at = services.clock()
    metrics.SWEEP_ORDERS.labels(kind).inc(created)
    log.info(
        "sweep_finished",
        kind=kind,
        candidates=report.candidates,
        orders_created=created,
        confirmed_by=report.confirmed_by,
    )
    return dataclasses.replace(report, orders_created=created)


def _start(
    services: Services,
    target: SweepTarget,
    kind: str,
    *,
    dry_run: bool,
    confirm: bool,
    actor: str,
    preview_limit: int,
) -> tuple[SweepReport, int]:
    """Count, judge the guard, record the run (finished already unless it acts)."""
    now = services.clock()
    with services.sessions.begin() as session:
        candidates = sweeps_db.count_due(session, target)
        fleet = sweeps_db.count_fleet(session)
        tripped = guard_trips(services.settings, candidates, fleet) and not confirm
        preview: tuple[DueService, ...] = ()
        if dry_run:
            preview = tuple(sweeps_db.find_due(session, target, limit=preview_limit))
        run = SweepRun(
            kind=kind,
            started_at=now,
            finished_at=now if dry_run or tripped else None,
            candidates=candidates,
            active_services=fleet,
            tripped=tripped,
            dry_run=dry_run,
            confirmed_by=actor if confirm and not dry_run else None,
        )
        session.add(run)
        session.flush()  # assigns the run id that tags its orders' audit entries
        report = SweepReport(
            kind=kind,
            today=target.today,
            enabled=True,
            candidates=candidates,
            fleet=fleet,
            tripped=tripped,
            dry_run=dry_run,
            confirmed_by=run.confirmed_by,
            run_id=run.id,
            preview=preview,
        )
        return report, run.id


def _create_orders(
    services: Services, target: SweepTarget, *, actor: str, run_id: int
) -> int:
    """Create the orders batch by batch (one transaction each); return how many."""
    settings = services.settings
    url = settings.billing_callback_url
    callback_url = url if url and is_allowed_callback_url(settings, url) else None
    created = 0
    after = None
    while True:
        with services.sessions.begin() as session:
            _serialise(session, target.action)
            batch = sweeps_db.find_due(
                session, target, limit=settings.sweep_batch, after=after, lock=True
            )
            if not batch:
                return created
            created += len(
                sweeps_db.insert_orders(
                    session,
                    target,
                    batch,
                    actor=actor,
                    callback_url=callback_url,
                    run_id=run_id,
                )
            )
        after = batch[-1].sort_key


def _serialise(session: Session, action: Action) -> None:
    """Hold the per-kind sweep lock until this transaction ends (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"bridge.sweep.{action.value}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _enabled(settings: Settings, kind: str) -> bool:
    if kind == "suspend":
        return settings.suspend_sweep_enabled
    return settings.terminate_sweep_enabled


def _grace_days(settings: Settings, kind: str) -> int:
    if kind == "suspend":
        return settings.suspend_after_days
    return settings.terminate_after_days


def recent_runs(services: Services, limit: int = 20) -> list[dict[str, Any]]:
    """The latest sweep runs, newest first (CLI `sweep status`)."""
    with services.sessions() as session:
        runs = session.scalars(
            select(SweepRun).order_by(SweepRun.id.desc()).limit(limit)
        ).all()
        return [sweep_run_view(run) for run in runs]


def sweep_run_view(run: SweepRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "candidates": run.candidates,
        "active_services": run.active_services,
        "orders_created": run.orders_created,
        "tripped": run.tripped,
        "dry_run": run.dry_run,
        "confirmed_by": run.confirmed_by,
    }
