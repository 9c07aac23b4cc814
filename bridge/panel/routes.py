"""The operation -> method/path table (data), and per-server overrides of it.

Most of these paths are ASSUMED in wispanel-api.md (the users, domains and SSL pages
are missing from the public docs), so a panel release with other paths is handled by
a server's `route_overrides`, validated here when the client is built.
"""

import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import quote

from bridge.errors import ConfigurationError

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_API_PREFIX = "/api/v1/"
# The folders whose mutating calls the panel de-duplicates by Idempotency-Key for
# 24 h (wispanel-api.md §5: Users & Resellers, Domains, Webhooks). Everything else
# (SSL, email, ...) may execute twice when re-sent: the engine reads first there.
KEYED_FOLDERS = frozenset({"users", "resellers", "domains", "webhooks"})


@dataclass(frozen=True, slots=True)
class Route:
    """How one operation reaches the panel; `{name}` fields come from params."""

    method: str
    path: str

    @property
    def is_mutating(self) -> bool:
        return self.method not in _SAFE_METHODS

    @property
    def honours_key(self) -> bool:
        """Whether the panel de-duplicates this (mutating) call by its key."""
        folder = self.path.removeprefix(_API_PREFIX).split("/", 1)[0]
        return self.is_mutating and folder in KEYED_FOLDERS

    @property
    def fields(self) -> frozenset[str]:
        """The `{name}` placeholders of the path.

        Raises ValueError on a malformed template or a placeholder that is not a
        plain `{name}`: `{}` (positional), `{name!r}` (conversion) or `{name:>9}`
        (format spec) would fail, or build a huge path, only when an order uses it.
        """
        names = set()
        for _, name, spec, conversion in string.Formatter().parse(self.path):
            if name is None:  # literal text only
                continue
            plain = f"{{{name}}}"
            if not name:
                msg = "placeholder {} has no name: write {name}"
                raise ValueError(msg)
            if conversion is not None:
                msg = f"placeholder {plain} has a conversion (!…): write {plain}"
                raise ValueError(msg)
            if spec:
                msg = f"placeholder {plain} has a format spec (:…): write {plain}"
                raise ValueError(msg)
            names.add(name)
        return frozenset(names)

    def url_path(self, params: Mapping[str, str]) -> str:
        """Fill the path, each value percent-encoded so it stays one segment.

        Raises ValueError when a field is missing or a param is not used.
        """
        missing = self.fields - params.keys()
        extra = params.keys() - self.fields
        if missing or extra:
            msg = f"path {self.path}: missing {sorted(missing)}, unused {sorted(extra)}"
            raise ValueError(msg)
        # safe="" also encodes "/", so "../admin" can never climb out of a segment.
        return self.path.format_map({k: quote(v, safe="") for k, v in params.items()})


DEFAULT_ROUTES: Mapping[str, Route] = MappingProxyType(
    {
        "create_user": Route("POST", "/api/v1/users/"),
        "get_user": Route("GET", "/api/v1/users/{username}"),
        "list_users": Route("GET", "/api/v1/users/"),
        "delete_user": Route("DELETE", "/api/v1/users/{username}"),
        "suspend_user": Route("POST", "/api/v1/users/{username}/suspend"),
        "unsuspend_user": Route("POST", "/api/v1/users/{username}/unsuspend"),
        "change_package": Route("PUT", "/api/v1/users/{username}/package"),
        "change_password": Route("PUT", "/api/v1/users/{username}/password"),
        "create_reseller": Route("POST", "/api/v1/resellers/"),
        "get_reseller": Route("GET", "/api/v1/resellers/{username}"),
        "delete_reseller": Route("DELETE", "/api/v1/resellers/{username}"),
        "set_reseller_limits": Route("PUT", "/api/v1/resellers/{username}/limits"),
        "list_reseller_users": Route("GET", "/api/v1/resellers/{username}/users"),
        "list_packages": Route("GET", "/api/v1/packages/"),
        "get_package": Route("GET", "/api/v1/packages/{name}"),
        "create_domain": Route("POST", "/api/v1/domains/"),
        "get_domain": Route("GET", "/api/v1/domains/{domain}"),
        "list_domains": Route("GET", "/api/v1/domains/"),
        "list_certificates": Route("GET", "/api/v1/ssl/"),
        "issue_ssl": Route("POST", "/api/v1/ssl/{domain}/issue"),
        "renew_ssl": Route("POST", "/api/v1/ssl/{domain}/renew"),
        "get_ssl": Route("GET", "/api/v1/ssl/{domain}"),
        "create_mailbox": Route("POST", "/api/v1/email/accounts"),
        "list_mailboxes": Route("GET", "/api/v1/email/accounts"),
        # Issue 13: SSO (§10.1, documented) and usage (§7.1, ASSUMED).
        "sso_mint": Route("POST", "/api/v1/auth/sso/mint"),
        "get_user_usage": Route("GET", "/api/v1/users/{username}/usage"),
        "list_usage": Route("GET", "/api/v1/usage/"),
        "create_webhook": Route("POST", "/api/v1/webhooks/"),
        "delete_webhook": Route("DELETE", "/api/v1/webhooks/{id}"),
        "auth_login": Route("POST", "/api/v1/auth/login"),
        "auth_me": Route("GET", "/api/v1/auth/me"),
        "version": Route("GET", "/api/v1/version/info"),
        "license": Route("GET", "/api/v1/license/"),
    }
)


def resolve_routes(
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> Mapping[str, Route]:
    """Return the table with a server's overrides applied.

    An override may change the method, the path or both, e.g.
    `{"create_user": {"method": "POST", "path": "/api/v1/accounts/"}}`. It must name
    a known operation and keep the same `{fields}` as the default path, so a typo
    fails when the server is configured rather than on the first order.

    Raises ConfigurationError on an unknown operation or an invalid entry.
    """
    table = dict(DEFAULT_ROUTES)
    for operation, entry in (overrides or {}).items():
        default = DEFAULT_ROUTES.get(operation)
        if default is None:
            msg = f"route override for unknown operation {operation!r}"
            raise ConfigurationError(msg)
        unknown = set(entry) - {"method", "path"}
        if unknown:
            msg = f"route override {operation!r}: unknown keys {sorted(unknown)}"
            raise ConfigurationError(msg)
        route = Route(
            method=entry.get("method", default.method).upper(),
            path=entry.get("path", default.path),
        )
        _check(operation, route, default)
        table[operation] = route
    return MappingProxyType(table)


def _check(operation: str, route: Route, default: Route) -> None:
    if route.method not in _METHODS:
        msg = f"route override {operation!r}: method {route.method!r} not allowed"
        raise ConfigurationError(msg)
    if not route.path.startswith("/") or "//" in route.path or "?" in route.path:
        msg = f"route override {operation!r}: path must be an absolute path"
        raise ConfigurationError(msg)
    if route.is_mutating != default.is_mutating:
        # A read turned into a write (or back) would change which calls carry an
        # Idempotency-Key and how failures are classified: refuse it.
        msg = f"route override {operation!r}: cannot change read/write kind"
        raise ConfigurationError(msg)
    try:
        fields = route.fields
    except ValueError as exc:
        msg = f"route override {operation!r}: malformed path template: {exc}"
        raise ConfigurationError(msg) from exc
    if fields != default.fields:
        msg = (
            f"route override {operation!r}: path fields {sorted(fields)} "
            f"must be {sorted(default.fields)}"
        )
        raise ConfigurationError(msg)
