"""Email account routes: ``{"accounts": null|[...], "total": n}`` list, create, get,
update, toggle, delete. An account's ``id`` is its full address.
"""

import re
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import get_domain, visible_usernames
from bridge.simulator.auth import Principal
from bridge.simulator.context import (
    int_field,
    json_response,
    panel_of,
    principal_of,
    read_json,
    text_field,
)
from bridge.simulator.errors import ApiError, ApiValidationError
from bridge.simulator.pagination import paginate, wants_page
from bridge.simulator.panel import Panel
from bridge.simulator.records import UNLIMITED, Mailbox
from bridge.simulator.routing import add_route, obj

LOCAL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _mailbox(panel: Panel, principal: Principal, account_id: str) -> Mailbox:
    box = panel.state.mailboxes.get(account_id.strip().lower())
    if box is None:
        raise ApiError(404, "Email account not found")
    get_domain(panel, principal, box.domain)
    return box


async def list_accounts(request: Request) -> Response:
    """List the caller's visible accounts, optionally for one ``domain``."""
    panel, principal = panel_of(request), principal_of(request)
    owners = visible_usernames(panel, principal)
    wanted = request.query_params.get("domain", "").lower()
    accounts = [
        box.to_json(panel.fmt)
        for box in panel.state.mailboxes.values()
        if (d := panel.state.domains.get(box.domain)) is not None
        and d.owner in owners
        and (not wanted or box.domain == wanted)
    ]
    if wants_page(request.query_params):
        return json_response(paginate(accounts, request.query_params))
    listed: list[Any] | None = accounts or panel.config.empty_accounts
    return json_response({"accounts": listed, "total": len(accounts)})


async def create_account(request: Request) -> Response:
    """Create a mailbox on a domain the caller may manage."""
    panel, principal = panel_of(request), principal_of(request)
    body = await read_json(request)
    domain_name = text_field(body, "domain").lower()
    local = text_field(body, "username").lower()
    password = body.get("password")
    if not domain_name:
        raise ApiValidationError("Domain is required", "domain")
    if not local:
        raise ApiValidationError("Username is required", "username")
    if not isinstance(password, str) or not password:
        raise ApiValidationError("Password is required", "password")
    if not LOCAL_RE.match(local):
        raise ApiValidationError("Invalid email username", "username")
    quota = int_field(body, "quota_mb", 0)
    if quota < 0:
        raise ApiValidationError("quota_mb must be >= 0", "quota_mb")
    domain = get_domain(panel, principal, domain_name)
    address = f"{local}@{domain.domain}"
    if address in panel.state.mailboxes:
        raise ApiError(409, "Email account already exists")
    owner = panel.state.users[domain.owner]
    used = len(panel.state.mailboxes_of(owner.username))
    if owner.max_email_accounts != UNLIMITED and used >= owner.max_email_accounts:
        raise ApiError(
            403,
            f"Email account limit reached: max_email_accounts "
            f"({owner.max_email_accounts})",
            code="QUOTA_EXCEEDED",
        )
    box = Mailbox(
        address=address,
        domain=domain.domain,
        local=local,
        password=password,
        created_at=panel.now(),
        quota_mb=quota,
    )
    panel.state.mailboxes[address] = box
    panel.state.record_creation("mailbox", address)
    return json_response(box.to_json(panel.fmt), status=201)


async def show_account(request: Request, account_id: str) -> Response:
    """Return one account."""
    panel = panel_of(request)
    box = _mailbox(panel, principal_of(request), account_id)
    return json_response(box.to_json(panel.fmt))


async def update_account(request: Request, account_id: str) -> Response:
    """Change an account's password or quota."""
    panel = panel_of(request)
    box = _mailbox(panel, principal_of(request), account_id)
    body = await read_json(request)
    if "password" in body:
        password = body["password"]
        if not isinstance(password, str) or not password:
            raise ApiValidationError("Password is required", "password")
        box.password = password
    if "quota_mb" in body:
        quota = int_field(body, "quota_mb", 0)
        if quota < 0:
            raise ApiValidationError("quota_mb must be >= 0", "quota_mb")
        box.quota_mb = quota
    return json_response(box.to_json(panel.fmt))


async def toggle_account(request: Request, account_id: str) -> Response:
    """Enable a disabled account or disable an enabled one."""
    panel = panel_of(request)
    box = _mailbox(panel, principal_of(request), account_id)
    box.enabled = not box.enabled
    return json_response(box.to_json(panel.fmt))


async def delete_account(request: Request, account_id: str) -> Response:
    """Delete an account."""
    panel = panel_of(request)
    box = _mailbox(panel, principal_of(request), account_id)
    del panel.state.mailboxes[box.address]
    return json_response({"success": True, "message": "Email account deleted"})


def register(router: APIRouter) -> None:
    """Add the email account routes to ``router``."""
    base = "/api/v1/email/accounts"
    item = base + "/{account_id}"
    create = obj(
        {"domain": "string", "username": "string", "password": "string"},
        {"quota_mb": "integer"},
    )
    update = obj(optional={"password": "string", "quota_mb": "integer"})
    add_route(
        router,
        "GET",
        base,
        list_accounts,
        summary='{"accounts": null|[...], "total": n}; paginated with page/per_page',
        query={"domain": "string", "page": "integer", "per_page": "integer"},
    )
    add_route(
        router, "POST", base, create_account, summary="Create", body=create, status=201
    )
    add_route(router, "GET", item, show_account, summary="Get an account")
    add_route(router, "PUT", item, update_account, summary="Update", body=update)
    add_route(router, "POST", item + "/toggle", toggle_account, summary="Toggle")
    add_route(router, "DELETE", item, delete_account, summary="Delete an account")
