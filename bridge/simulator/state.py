"""PanelState: the in-memory resources of one panel, its creation ledger and JSON form.

No HTTP and no access rules here: handlers decide, this module stores.
"""

import dataclasses
import secrets
from collections.abc import Iterable
from typing import Any, TypeVar

from bridge.simulator.config import SimulatorConfig
from bridge.simulator.records import (
    ApiKey,
    Certificate,
    Domain,
    Mailbox,
    Package,
    Session,
    User,
    Webhook,
)

LEDGER_KINDS = ("user", "domain", "certificate", "mailbox")

_T = TypeVar("_T")


def seed_packages() -> dict[str, Package]:
    """Return the packages every panel starts with (``default`` cannot be deleted)."""
    packages = [
        Package("default"),
        Package(
            "basic",
            max_domains=1,
            max_databases=1,
            max_email_accounts=5,
            max_ftp_accounts=1,
            disk_quota_mb=1024,
            bandwidth_quota_mb=10240,
        ),
        Package(
            "pro",
            max_domains=10,
            max_databases=10,
            max_email_accounts=100,
            max_ftp_accounts=10,
            disk_quota_mb=10240,
            bandwidth_quota_mb=102400,
            can_use_ssh=True,
        ),
    ]
    return {p.name: p for p in packages}


@dataclasses.dataclass
class PanelState:
    """Users, keys, packages, domains, certificates, mailboxes and the ledger."""

    packages: dict[str, Package] = dataclasses.field(default_factory=seed_packages)
    users: dict[str, User] = dataclasses.field(default_factory=dict)
    api_keys: dict[str, ApiKey] = dataclasses.field(default_factory=dict)
    domains: dict[str, Domain] = dataclasses.field(default_factory=dict)
    certificates: dict[str, Certificate] = dataclasses.field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = dataclasses.field(default_factory=dict)
    sessions: dict[str, Session] = dataclasses.field(default_factory=dict)
    webhooks: dict[str, Webhook] = dataclasses.field(default_factory=dict)
    ledger: dict[str, dict[str, int]] = dataclasses.field(
        default_factory=lambda: {kind: {} for kind in LEDGER_KINDS}
    )
    # SSO nonces, sessions opened through them (per username) and usage figures
    # (routes_sso, routes_usage): not persisted to a state file.
    sso_nonces: dict[str, Any] = dataclasses.field(default_factory=dict)
    sso_sessions: dict[str, int] = dataclasses.field(default_factory=dict)
    usage: dict[str, Any] = dataclasses.field(default_factory=dict)

    def record_creation(self, kind: str, key: str) -> None:
        """Count one creation of ``kind`` under its natural ``key``."""
        counts = self.ledger.setdefault(kind, {})
        counts[key] = counts.get(key, 0) + 1

    def install_admin(self, config: SimulatorConfig, now: float) -> None:
        """Create or refresh the root admin and its built-in key from ``config``."""
        admin = self.users.get(config.username)
        if admin is None or admin.role != "admin":
            admin = User(
                username=config.username,
                email=config.email,
                password="",
                role="admin",
                created_at=now,
            )
            self.users[admin.username] = admin
        admin.password = config.password or ""
        admin.totp_secret = config.totp_secret
        admin.email = config.email
        for secret in [s for s, k in self.api_keys.items() if k.builtin]:
            del self.api_keys[secret]
        if config.api_key:
            self.api_keys[config.api_key] = ApiKey(
                id=secrets.token_hex(8),
                secret=config.api_key,
                owner=admin.username,
                name="Simulator admin key",
                created_at=now,
                permissions=["all"],
                builtin=True,
            )

    def find_user(self, name_or_email: str) -> User | None:
        """Return the user with this username or email, if any."""
        user = self.users.get(name_or_email)
        if user is not None:
            return user
        return next((u for u in self.users.values() if u.email == name_or_email), None)

    def domains_of(self, owners: Iterable[str]) -> list[Domain]:
        """Return the domains owned by any of ``owners``."""
        wanted = set(owners)
        return [d for d in self.domains.values() if d.owner in wanted]

    def mailboxes_of(self, owner: str) -> list[Mailbox]:
        """Return the mailboxes on domains owned by ``owner``."""
        return [
            m
            for m in self.mailboxes.values()
            if (d := self.domains.get(m.domain)) is not None and d.owner == owner
        ]

    def delete_domain(self, name: str) -> None:
        """Remove a domain with its certificate and mailboxes."""
        self.domains.pop(name, None)
        self.certificates.pop(name, None)
        for address in [a for a, m in self.mailboxes.items() if m.domain == name]:
            del self.mailboxes[address]

    def delete_user(self, username: str) -> None:
        """Remove a user with its domains, keys and session."""
        for domain in self.domains_of([username]):
            self.delete_domain(domain.domain)
        for secret in [s for s, k in self.api_keys.items() if k.owner == username]:
            del self.api_keys[secret]
        self.sessions.pop(username, None)
        for hook_id in [i for i, h in self.webhooks.items() if h.owner == username]:
            del self.webhooks[hook_id]
        self.users.pop(username, None)

    def to_json(self) -> dict[str, Any]:
        """Return the whole state as JSON-ready data (secrets included)."""
        return {
            name: _dump(getattr(self, name))
            for name in (
                "packages",
                "users",
                "api_keys",
                "domains",
                "certificates",
                "mailboxes",
                "sessions",
                "webhooks",
            )
        } | {"ledger": self.ledger}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PanelState":
        """Rebuild a state saved by :meth:`to_json`."""
        return cls(
            packages=_load(Package, data.get("packages", {})),
            users=_load(User, data.get("users", {})),
            api_keys=_load(ApiKey, data.get("api_keys", {})),
            domains=_load(Domain, data.get("domains", {})),
            certificates=_load(Certificate, data.get("certificates", {})),
            mailboxes=_load(Mailbox, data.get("mailboxes", {})),
            sessions=_load(Session, data.get("sessions", {})),
            webhooks=_load(Webhook, data.get("webhooks", {})),
            ledger={kind: {} for kind in LEDGER_KINDS} | data.get("ledger", {}),
        )


def _dump(records: dict[str, Any]) -> dict[str, Any]:
    return {key: dataclasses.asdict(value) for key, value in records.items()}


def _load(cls: type[_T], raw: dict[str, Any]) -> dict[str, _T]:
    return {key: cls(**value) for key, value in raw.items()}
