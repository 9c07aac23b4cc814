"""`servers import`: record a panel's existing accounts as managed services.

Reads every user, domain, certificate and mailbox of one panel with paginated,
budgeted list calls (nothing is written until every read succeeded), then records
each hosting user and each reseller in a transaction of its own: a crash loses at
most the account being written, and a re-run skips what is already recorded
(idempotent, resumable). A reseller is recorded with the reseller role, so its
terminate goes through `DELETE /resellers/{username}` and refuses while it has
users, as for one the bridge created. The panel's admin accounts are never imported.

Resellers come from the same `GET /users/` pages as hosting users (their `role` is
`reseller`): that list carries each account's `status`, which the documented
`GET /resellers/` (wispanel-api.md §7.10) does not.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge import audit
from bridge.container import Services
from bridge.db.models import Server, Service
from bridge.db.servers import get_server_by_name
from bridge.domain.model import AccountRole, SuspendReason
from bridge.domain.states import ServiceStatus
from bridge.errors import RateLimitedError
from bridge.ops.errors import OperationRefusedError
from bridge.ops.linking import PLACEHOLDER_PREFIX, placeholder_id, rename_service
from bridge.panel import PanelClient, PanelError
from bridge.panel.schemas import PanelPage

PER_PAGE = 100
# A CLI import waits for the shared bucket; this bounds one call's waits so a
# panel whose budget never frees up ends the run instead of hanging forever.
MAX_BUDGET_WAITS = 1000
_LIVE = (ServiceStatus.PENDING, ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED)
# The panel roles that become services; anything else (admin) is skipped.
_ROLES = {"user": AccountRole.USER, "reseller": AccountRole.RESELLER}
_T = TypeVar("_T")

Progress = Callable[[str, dict[str, Any]], None]
Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class PanelAccount:
    """One panel account (user or reseller) with what it owns, as read for import."""

    username: str
    role: str
    status: str
    package: str | None
    creator: str | None
    domains: tuple[str, ...] = ()
    certificates: dict[str, str] = field(default_factory=dict)
    mailboxes: tuple[str, ...] = ()
    # A reseller's accounts (the users whose creator it is).
    users: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "domains": list(self.domains),
            "certificates": dict(self.certificates),
            "mailboxes": len(self.mailboxes),
        }
        if self.role == AccountRole.RESELLER.value:
            summary["users"] = len(self.users)
        return summary


def import_accounts(
    services: Services,
    server_name: str,
    actor: str,
    *,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    sleep: Sleep | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import every hosting user and reseller of server `server_name`; the report.

    `sleep` lets the CLI wait for the shared budget (without it RateLimitedError
    is raised). Raises NotFoundError (unknown server) and OperationRefusedError
    (a panel read failed: nothing was recorded).
    """
    note = progress or (lambda _kind, _data: None)
    with services.sessions() as session:
        server = get_server_by_name(session, server_name)
        client = services.panels.client_for(server)
    accounts = read_accounts(client, sleep=sleep, progress=note)
    mapping = mapping or {}
    report: dict[str, Any] = {
        "server": server_name,
        "dry_run": dry_run,
        "accounts": [],
        "unmapped": sorted(set(mapping) - {a.username for a in accounts}),
    }
    for account in accounts:
        outcome = _import_one(
            services,
            server_name,
            account,
            mapping=mapping,
            actor=actor,
            dry_run=dry_run,
        )
        report["accounts"].append(outcome)
        note("account", outcome)
    report["counts"] = _counts(report["accounts"])
    if not dry_run and (
        report["counts"].get("imported") or report["counts"].get("linked")
    ):
        with services.sessions.begin() as session:
            audit.record(
                session,
                actor=actor,
                action="servers_imported",
                detail={"server": server_name, "counts": report["counts"]},
            )
    return report


def _counts(outcomes: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome["result"]] = counts.get(outcome["result"], 0) + 1
    return counts


def read_accounts(
    client: PanelClient, *, sleep: Sleep | None, progress: Progress
) -> list[PanelAccount]:
    """Every account of the panel with its domains, certificates and mailboxes.

    Raises OperationRefusedError when a list call fails (e.g. the panel lacks it).
    """
    users = _read_all(client.list_users, "users", sleep, progress)
    domains = _read_all(client.list_domains, "domains", sleep, progress)
    certs = _budgeted(client.list_certificates, "certificates", sleep, progress)
    progress("read", {"what": "certificates", "page": 1, "last_page": 1})
    boxes = _read_all(client.list_all_mailboxes, "mailboxes", sleep, progress)
    owner_of = {str(d.get("domain")): str(d.get("owner")) for d in domains}
    cert_status = {str(c.get("domain")): str(c.get("status")) for c in certs.items}
    created_by: dict[str, list[str]] = {}
    for user in users:
        creator, name = _opt(user.get("creator")), _opt(user.get("username"))
        if creator and name:
            created_by.setdefault(creator, []).append(name)
    accounts = []
    for user in sorted(users, key=lambda u: str(u.get("username"))):
        name = str(user.get("username") or "")
        if not name:
            continue
        owned = tuple(sorted(d for d, owner in owner_of.items() if owner == name))
        accounts.append(
            PanelAccount(
                username=name,
                role=str(user.get("role") or "user"),
                status=str(user.get("status") or ""),
                package=_opt(user.get("package")),
                creator=_opt(user.get("creator")),
                domains=owned,
                certificates={d: cert_status[d] for d in owned if d in cert_status},
                mailboxes=tuple(
                    sorted(
                        str(b.get("email"))
                        for b in boxes
                        if str(b.get("domain")) in owned
                    )
                ),
                users=tuple(sorted(created_by.get(name, ()))),
            )
        )
    return accounts


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _read_all(
    lister: Callable[..., PanelPage],
    what: str,
    sleep: Sleep | None,
    progress: Progress,
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in _pages(lister, what, sleep, progress):
        items.extend(page.items)
    return items


def _pages(
    lister: Callable[..., PanelPage],
    what: str,
    sleep: Sleep | None,
    progress: Progress,
) -> Iterator[PanelPage]:
    number = 1
    while True:
        page = _budgeted(
            partial(lister, page=number, per_page=PER_PAGE), what, sleep, progress
        )
        progress("read", {"what": what, "page": number, "last_page": page.last_page})
        yield page
        # An unpaginated (plain list) answer is the whole list: last_page is 1.
        if not page.has_more or not page.items:
            return
        number += 1


def _budgeted(
    call: Callable[[], _T], what: str, sleep: Sleep | None, progress: Progress
) -> _T:
    for _ in range(MAX_BUDGET_WAITS):
        try:
            return call()
        except RateLimitedError as exc:
            if sleep is None:
                raise
            progress("wait", {"what": what, "seconds": round(exc.retry_after, 1)})
            sleep(exc.retry_after)
        except PanelError as exc:
            msg = f"reading {what} from the panel failed, nothing was imported: {exc}"
            raise OperationRefusedError(msg) from None
    return call()


def _import_one(
    services: Services,
    server_name: str,
    account: PanelAccount,
    *,
    mapping: dict[str, str],
    actor: str,
    dry_run: bool,
) -> dict[str, Any]:
    service_id = mapping.get(account.username) or placeholder_id(
        server_name, account.username
    )
    outcome: dict[str, Any] = {
        "username": account.username,
        "role": account.role,
        "service_id": service_id,
        "status": account.status,
        **account.summary(),
    }
    role = _ROLES.get(account.role)
    if role is None:
        return outcome | {"result": "skipped", "reason": f"{account.role} account"}
    if account.status not in ("active", "suspended"):
        why = f"panel status {account.status or 'unknown'}"
        return outcome | {"result": "skipped", "reason": why}
    try:
        with services.sessions.begin() as session:
            server = get_server_by_name(session, server_name)
            # A dry run returns before any write: this transaction commits nothing.
            result, reason = _record(
                session,
                server,
                account,
                role,
                service_id=service_id,
                actor=actor,
                dry_run=dry_run,
            )
    except IntegrityError:
        # A concurrent import or intake took the id or the username first.
        result, reason = "conflict", "recorded concurrently by someone else"
    except OperationRefusedError as exc:
        # A link the map asks for is unsafe now (id taken, orders in flight).
        result, reason = "conflict", str(exc)
    return outcome | {"result": result, "reason": reason}


def _record(
    session: Session,
    server: Server,
    account: PanelAccount,
    role: AccountRole,
    *,
    service_id: str,
    actor: str,
    dry_run: bool,
) -> tuple[str, str | None]:
    """Write one account (or say why not): (result, reason)."""
    live = session.scalars(
        select(Service)
        .where(
            Service.server_id == server.id,
            Service.username == account.username,
            Service.status.in_(_LIVE),
        )
        .with_for_update()
    ).one_or_none()
    if live is not None:
        if live.account_role is not role:
            # Its terminate would take the wrong endpoint: an operator decides.
            why = f"managed as {live.service_id} with role {live.account_role.value}"
            return "conflict", why
        return _already_recorded(session, live, service_id, actor, dry_run)
    taken = session.get(Service, service_id)
    if taken is not None:
        return "conflict", f"service id {service_id} exists ({taken.status.value})"
    if dry_run:
        return "would_import", None
    suspended = account.status == "suspended"
    service = Service(
        service_id=service_id,
        server_id=server.id,
        username=account.username,
        domain=account.domains[0] if account.domains else None,
        package=account.package,
        account_role=role,
        status=ServiceStatus.SUSPENDED if suspended else ServiceStatus.ACTIVE,
        # A suspension made on the panel is never lifted by a payment.
        suspension_reason=SuspendReason.OTHER if suspended else None,
        owns_account=True,
        order_seq=0,
    )
    session.add(service)
    session.flush()
    if suspended:
        service.suspended_at = service.created_at
    audit.record(
        session,
        actor=actor,
        action="service_imported",
        service_id=service_id,
        after=service.status.value,
        detail={"server": server.name, "username": account.username}
        | {"role": role.value, "creator": account.creator, "package": account.package}
        | account.summary(),
    )
    return "imported", None


def _already_recorded(
    session: Session, live: Service, service_id: str, actor: str, dry_run: bool
) -> tuple[str, str | None]:
    if live.service_id == service_id:
        return "unchanged", None
    if live.service_id.startswith(PLACEHOLDER_PREFIX) and not service_id.startswith(
        PLACEHOLDER_PREFIX
    ):
        # Imported earlier without a mapping; the map now names billing's id.
        if dry_run:
            return "would_link", f"placeholder {live.service_id}"
        rename_service(session, live, service_id, actor)
        return "linked", f"was {live.service_id}"
    if service_id.startswith(PLACEHOLDER_PREFIX):
        return "unchanged", f"already managed as {live.service_id}"
    return "conflict", f"already managed as {live.service_id}"
