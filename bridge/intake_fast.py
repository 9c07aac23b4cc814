"""Intake's fast path: creates of services the bridge has never seen.

A billing burst (a sale, a migration) is mostly these. Nothing is locked or
looked up first: the new rows' unique keys (service id, order_id, intake key,
one live service per panel username and server) refuse whatever the careful
path (`bridge.intake`) would have found, and then it runs instead to replay,
explain or re-create. Creates arriving together share one transaction
(`Services.intake_commits`, `bridge.group_commit`).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge.container import Services
from bridge.db.models import Server
from bridge.db.servers import Placement
from bridge.domain.model import OrderSpec
from bridge.errors import InvalidOrderError
from bridge.intake_rows import PlannedRows, enqueue_rows, planned_rows, write_rows
from bridge.intake_target import choose_server, new_service
from bridge.metrics import INTAKE_BATCH_SIZE
from bridge.packages import check_order_package, valid_package_names


@dataclass(frozen=True, slots=True)
class _NewCreate:
    """One caller's create of a new service, waiting for a shared transaction."""

    spec: OrderSpec
    keys: list[str]
    digest: str


def accept_new_service(
    services: Services, spec: OrderSpec, *, keys: list[str], digest: str
) -> dict[str, Any] | None:
    """Persist a create of a new service (with whatever arrives with it); its
    202 body, or None: take the careful path."""
    response: dict[str, Any] | None = services.intake_commits.submit(
        _NewCreate(spec, keys, digest), partial(_accept_new_services, services)
    )
    return response


def _accept_new_services(
    services: Services, batch: Sequence[_NewCreate]
) -> list[dict[str, Any] | None]:
    """Persist a batch of new-service creates in one transaction.

    Each order still gets its whole plan in the transaction that answers it
    (design.md §1.1); the batch only shares the reads, statements and commit.
    An order the checks refuse is left out (None: its caller takes the careful
    path, which gives the refusal). A unique key refusing any row rolls the
    whole batch back and every caller takes the careful path.
    """
    INTAKE_BATCH_SIZE.observe(len(batch))
    results: list[dict[str, Any] | None] = [None] * len(batch)
    accepted: list[tuple[int, PlannedRows]] = []
    try:
        with services.sessions.begin() as session:
            placement = Placement(session, services.settings.placement_policy)
            packages = _PackageLists()
            for index, entry in enumerate(batch):
                rows = _plan_new_service(services, session, entry, placement, packages)
                if rows is not None:
                    accepted.append((index, rows))
            write_rows(session, [rows for _, rows in accepted])
            for _, rows in accepted:
                enqueue_rows(session, rows)
    except IntegrityError:
        return results
    for index, rows in accepted:
        results[index] = rows.response
    return results


def _plan_new_service(
    services: Services,
    session: Session,
    entry: _NewCreate,
    placement: Placement,
    packages: "_PackageLists",
) -> PlannedRows | None:
    """A new service and its order's rows; None if a check refuses it."""
    spec = entry.spec
    server: Server | None = None
    try:
        service = new_service(spec)
        server = choose_server(spec, service, placement)
        check_order_package(session, spec, server, lookup=packages.lookup)
        service.order_seq = 1
        service.server_id = server.id if server is not None else None
        if spec.paid_until is not None:
            service.paid_until = spec.paid_until
        rows = planned_rows(
            services, spec, service, server, keys=entry.keys, digest=entry.digest
        )
    except InvalidOrderError:
        if server is not None and not spec.server:
            placement.unplace(server, spec.server_group)  # its slot stays free
        return None
    rows.new_service = service
    return rows


class _PackageLists:
    """`valid_package_names`, read once per target within one transaction."""

    def __init__(self) -> None:
        self._known: dict[
            tuple[uuid.UUID | None, str | None], tuple[str, set[str]] | None
        ] = {}

    def lookup(
        self, session: Session, server: Server | None, group: str | None
    ) -> tuple[str, set[str]] | None:
        key = (server.id if server is not None else None, group)
        if key not in self._known:
            self._known[key] = valid_package_names(session, server, group)
        return self._known[key]
