"""Domain routes: list (``?username=``, opt-in pagination), create, get, update, delete.

Names are globally unique; the owner's ``max_domains`` and the license's
``max_domains`` are enforced on create.
"""

import re

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import can_see, get_domain, visible_usernames
from bridge.simulator.auth import Principal
from bridge.simulator.context import (
    json_response,
    panel_of,
    principal_of,
    read_json,
    text_field,
)
from bridge.simulator.errors import ApiError, ApiValidationError
from bridge.simulator.pagination import paginate, wants_page
from bridge.simulator.panel import Panel
from bridge.simulator.records import UNLIMITED, Domain, User
from bridge.simulator.routing import add_route, obj

HOSTNAME_RE = re.compile(
    r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
WEBSERVERS = ("nginx", "nginx_apache", "apache")
PHP_RE = re.compile(r"^\d\.\d$")


def domain_json(panel: Panel, domain: Domain) -> dict[str, object]:
    """Return the domain object (ssl_enabled from its certificate's status)."""
    cert = panel.state.certificates.get(domain.domain)
    active = cert is not None and cert.status(panel.now()) == "active"
    return domain.to_json(panel.fmt, ssl_enabled=active)


async def list_domains(request: Request) -> Response:
    """List domains the caller may see, optionally for one owner."""
    panel, principal = panel_of(request), principal_of(request)
    owners = visible_usernames(panel, principal)
    wanted = request.query_params.get("username")
    if wanted:
        owners &= {wanted}
    domains = [domain_json(panel, d) for d in panel.state.domains_of(owners)]
    if wants_page(request.query_params):
        return json_response(paginate(domains, request.query_params))
    return json_response(domains)


async def create_domain(request: Request) -> Response:
    """Add a domain for the caller or (admin/reseller) for one of its users."""
    panel, principal = panel_of(request), principal_of(request)
    body = await read_json(request)
    name = text_field(body, "domain").lower()
    if not name:
        raise ApiValidationError("Domain is required", "domain")
    if not HOSTNAME_RE.match(name):
        raise ApiValidationError("Invalid domain name", "domain")
    webserver = text_field(body, "webserver") or "nginx"
    php_version = text_field(body, "php_version") or "8.2"
    if webserver not in WEBSERVERS:
        raise ApiValidationError("Invalid webserver", "webserver")
    if not PHP_RE.match(php_version):
        raise ApiValidationError("Invalid php_version", "php_version")
    owner = _owner(panel, principal, text_field(body, "username"))
    if name in panel.state.domains:
        raise ApiError(409, "Domain already exists")
    _check_domain_limits(panel, owner)
    domain = Domain(
        domain=name,
        owner=owner.username,
        created_at=panel.now(),
        webserver=webserver,
        php_version=php_version,
        status="suspended" if owner.status == "suspended" else "active",
    )
    panel.state.domains[name] = domain
    panel.state.record_creation("domain", name)
    return json_response(domain_json(panel, domain), status=201)


def _owner(panel: Panel, principal: Principal, username: str) -> User:
    if not username or username == principal.username:
        return principal.user
    if principal.role == "user":
        raise ApiError(403, "Cannot create domains for other users")
    owner = panel.state.users.get(username)
    if owner is None:
        raise ApiError(404, "User not found")
    if not can_see(principal, owner):
        raise ApiError(403, "Access denied to this user")
    return owner


def _check_domain_limits(panel: Panel, owner: User) -> None:
    cap = panel.config.license_max_domains
    if cap != UNLIMITED and len(panel.state.domains) >= cap:
        raise ApiError(
            403, f"License limit reached: max_domains ({cap})", code="LICENSE_LIMIT"
        )
    owned = len(panel.state.domains_of([owner.username]))
    if owner.max_domains != UNLIMITED and owned >= owner.max_domains:
        raise ApiError(
            403,
            f"Domain limit reached: max_domains ({owner.max_domains})",
            code="QUOTA_EXCEEDED",
        )


async def show_domain(request: Request, domain: str) -> Response:
    """Return one domain."""
    panel = panel_of(request)
    found = get_domain(panel, principal_of(request), domain)
    return json_response(domain_json(panel, found))


async def update_domain(request: Request, domain: str) -> Response:
    """Change a domain's PHP version or web server."""
    panel = panel_of(request)
    found = get_domain(panel, principal_of(request), domain)
    body = await read_json(request)
    if "webserver" in body:
        webserver = text_field(body, "webserver")
        if webserver not in WEBSERVERS:
            raise ApiValidationError("Invalid webserver", "webserver")
        found.webserver = webserver
    if "php_version" in body:
        php_version = text_field(body, "php_version")
        if not PHP_RE.match(php_version):
            raise ApiValidationError("Invalid php_version", "php_version")
        found.php_version = php_version
    return json_response(domain_json(panel, found))


async def delete_domain(request: Request, domain: str) -> Response:
    """Remove a domain with its certificate and mailboxes."""
    panel = panel_of(request)
    found = get_domain(panel, principal_of(request), domain)
    panel.state.delete_domain(found.domain)
    return json_response({"success": True, "message": "Domain deleted"})


def register(router: APIRouter) -> None:
    """Add the domain routes to ``router``."""
    item = "/api/v1/domains/{domain}"
    settings = {"php_version": "string", "webserver": "string"}
    add_route(
        router,
        "GET",
        "/api/v1/domains/",
        list_domains,
        summary="List domains (array; paginated with page/per_page)",
        query={"username": "string", "page": "integer", "per_page": "integer"},
    )
    add_route(
        router,
        "POST",
        "/api/v1/domains/",
        create_domain,
        summary="Create a domain",
        body=obj({"domain": "string"}, {"username": "string"} | settings),
        status=201,
    )
    add_route(router, "GET", item, show_domain, summary="Get a domain")
    add_route(
        router,
        "PUT",
        item,
        update_domain,
        summary="Update a domain",
        body=obj(optional=settings),
    )
    add_route(router, "DELETE", item, delete_domain, summary="Delete a domain")
