"""Records of the simulated panel's resources and their JSON shapes.

Mutable dataclasses owned by ``PanelState``; rendering needs the panel's clock
offset, so each ``to_json`` takes a timestamp formatter.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Fmt = Callable[[float | None], str]

CERT_LIFETIME_S = 90 * 86400
UNLIMITED = -1

LIMIT_FIELDS = (
    "max_domains",
    "max_databases",
    "max_email_accounts",
    "max_ftp_accounts",
    "disk_quota_mb",
    "bandwidth_quota_mb",
)
FLAG_FIELDS = ("can_use_ssl", "can_use_ssh", "can_use_cron")


@dataclass
class Package:
    """A hosting plan; its limits are copied onto users at create/change time."""

    name: str
    max_domains: int = UNLIMITED
    max_databases: int = UNLIMITED
    max_email_accounts: int = UNLIMITED
    max_ftp_accounts: int = UNLIMITED
    disk_quota_mb: int = 0
    bandwidth_quota_mb: int = 0
    can_use_ssl: bool = True
    can_use_ssh: bool = False
    can_use_cron: bool = True

    def to_json(self) -> dict[str, Any]:
        """Return the package object."""
        return dict(vars(self))


@dataclass
class User:
    """An account (admin, reseller or hosting user) with its limits and secrets."""

    username: str
    email: str
    password: str
    role: str
    created_at: float
    package: str = "default"
    status: str = "active"
    creator: str = ""
    max_domains: int = UNLIMITED
    max_databases: int = UNLIMITED
    max_email_accounts: int = UNLIMITED
    max_ftp_accounts: int = UNLIMITED
    disk_quota_mb: int = 0
    bandwidth_quota_mb: int = 0
    can_use_ssl: bool = True
    can_use_ssh: bool = False
    can_use_cron: bool = True
    max_users: int = UNLIMITED
    suspended_reason: str = ""
    token_version: int = 1
    totp_secret: str | None = None

    def apply_package(self, package: Package) -> None:
        """Copy a package's limits and flags onto the user."""
        for name in (*LIMIT_FIELDS, *FLAG_FIELDS):
            setattr(self, name, getattr(package, name))
        self.package = package.name

    def to_json(self, fmt: Fmt) -> dict[str, Any]:
        """Return the user object (no secrets)."""
        body: dict[str, Any] = {
            "username": self.username,
            "email": self.email,
            "role": self.role,
            "status": self.status,
            "creator": self.creator,
            "package": self.package,
        }
        for name in (*LIMIT_FIELDS, *FLAG_FIELDS):
            body[name] = getattr(self, name)
        if self.role == "reseller":
            body["max_users"] = self.max_users
        body["suspended_reason"] = self.suspended_reason
        body["created_at"] = fmt(self.created_at)
        return body

    def login_json(self) -> dict[str, Any]:
        """Return the short user object of the login response."""
        keys = ("username", "email", "role", "status", "max_domains", "max_databases")
        body = {k: getattr(self, k) for k in keys}
        body.update({k: getattr(self, k) for k in FLAG_FIELDS})
        return body


@dataclass
class ApiKey:
    """A ``wsp_`` key; the secret is only ever returned at creation."""

    id: str
    secret: str
    owner: str
    name: str
    created_at: float
    permissions: list[str] = field(default_factory=lambda: ["read"])
    ip_whitelist: list[str] = field(default_factory=list)
    expires_at: float | None = None
    last_used: float | None = None
    enabled: bool = True
    builtin: bool = False

    def to_json(self, fmt: Fmt) -> dict[str, Any]:
        """Return the key object without its secret."""
        return {
            "id": self.id,
            "name": self.name,
            "key_prefix": self.secret[:12],
            "permissions": list(self.permissions),
            "ip_whitelist": list(self.ip_whitelist),
            "last_used": fmt(self.last_used),
            "created_at": fmt(self.created_at),
            "expires_at": fmt(self.expires_at),
            "enabled": self.enabled,
        }


@dataclass
class Domain:
    """A hosted domain; names are globally unique on a panel."""

    domain: str
    owner: str
    created_at: float
    webserver: str = "nginx"
    php_version: str = "8.2"
    status: str = "active"

    def to_json(self, fmt: Fmt, ssl_enabled: bool) -> dict[str, Any]:
        """Return the domain object."""
        return {
            "domain": self.domain,
            "owner": self.owner,
            "webserver": self.webserver,
            "php_version": self.php_version,
            "document_root": f"/home/{self.owner}/domains/{self.domain}/public_html",
            "ssl_enabled": ssl_enabled,
            "status": self.status,
            "created_at": fmt(self.created_at),
        }


@dataclass
class Certificate:
    """An issuance (or renewal) whose outcome is decided lazily on the panel clock."""

    domain: str
    requested_at: float
    ready_at: float
    fails: bool = False
    provider: str = "letsencrypt"
    include_www: bool = True
    auto_renew: bool = True
    # ssl.issued has been sent for this issuance (once per issue/renew).
    announced: bool = False

    def status(self, now: float) -> str:
        """Return pending, active, failed or expired at time ``now``."""
        if now < self.ready_at:
            return "pending"
        if self.fails:
            return "failed"
        if now >= self.ready_at + CERT_LIFETIME_S:
            return "expired"
        return "active"

    def to_json(self, fmt: Fmt, now: float) -> dict[str, Any]:
        """Return the certificate object as of ``now``."""
        status = self.status(now)
        issued = status in ("active", "expired")
        return {
            "domain": self.domain,
            "provider": self.provider,
            "status": status,
            "issuer": "Let's Encrypt" if issued else None,
            "issued_at": fmt(self.ready_at) if issued else None,
            "expires_at": fmt(self.ready_at + CERT_LIFETIME_S) if issued else None,
            "auto_renew": self.auto_renew,
            "san": self.san(),
            "error": "Domain does not resolve to this server"
            if status == "failed"
            else None,
        }

    def san(self) -> list[str]:
        """Return the names the certificate covers."""
        return (
            [self.domain, f"www.{self.domain}"] if self.include_www else [self.domain]
        )


def empty_certificate(domain: str) -> dict[str, Any]:
    """Return the status object of a domain that never had a certificate."""
    return {
        "domain": domain,
        "provider": None,
        "status": "none",
        "issuer": None,
        "issued_at": None,
        "expires_at": None,
        "auto_renew": False,
        "san": [],
        "error": None,
    }


@dataclass
class Mailbox:
    """An email account; its ``id`` on the wire is the full address."""

    address: str
    domain: str
    local: str
    password: str
    created_at: float
    quota_mb: int = 0
    enabled: bool = True

    def to_json(self, fmt: Fmt) -> dict[str, Any]:
        """Return the account object."""
        return {
            "id": self.address,
            "email": self.address,
            "domain": self.domain,
            "username": self.local,
            "quota_mb": self.quota_mb,
            "used_mb": 0,
            "enabled": self.enabled,
            "created_at": fmt(self.created_at),
        }


@dataclass
class Session:
    """The single interactive session of a user (single-session mode)."""

    ip: str
    device: str
    login_at: float
    last_seen: float
    expires_at: float
    token_version: int

    def info(self) -> dict[str, Any]:
        """Return the ``session_info`` object of the 409 login answer."""
        return {
            "ip": self.ip,
            "device": self.device,
            "login_at": int(self.login_at),
            "last_seen": int(self.last_seen),
        }


@dataclass
class Webhook:
    """One subscription; its secret is returned only by the create call."""

    id: str
    owner: str
    url: str
    events: list[str]
    secret: str
    created_at: float
    enabled: bool = True
    last_fired_at: float | None = None
    failure_count: int = 0

    def matches(self, event: str) -> bool:
        """Whether ``event`` matches one pattern: exact, ``prefix.*`` or ``*``."""
        for pattern in self.events:
            if pattern in ("*", event):
                return True
            if pattern.endswith(".*") and event.startswith(pattern[:-1]):
                return True
        return False

    def to_json(self, fmt: Fmt, *, secret: bool = False) -> dict[str, Any]:
        """Return the webhook object (secret redacted unless asked for)."""
        return {
            "id": self.id,
            "owner": self.owner,
            "url": self.url,
            "events": list(self.events),
            "secret": self.secret if secret else "<redacted>",
            "enabled": self.enabled,
            "created_at": fmt(self.created_at),
            "last_fired_at": fmt(self.last_fired_at),
            "failure_count": self.failure_count,
        }


@dataclass
class DeliveryLog:
    """What happened to one delivery (the control API shows these)."""

    id: str
    webhook_id: str
    event: str
    url: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    state: str = "pending"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event": self.event,
            "url": self.url,
            "attempts": list(self.attempts),
            "state": self.state,
        }
