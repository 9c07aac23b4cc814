"""SSL routes: list, status, issue (asynchronous: pending, then active or failed after
``ssl_delay_s`` of panel-clock time, judged lazily on read) and renew.

With ``ssl_retry_after`` (off by default: the documented contract promises
Retry-After only on 429) a pending certificate's answers carry ``Retry-After``,
the whole seconds until it is ready.
"""

import math

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import get_domain, visible_usernames
from bridge.simulator.context import (
    bool_field,
    json_response,
    panel_of,
    principal_of,
    read_json,
    text_field,
)
from bridge.simulator.errors import ApiError, ApiValidationError
from bridge.simulator.panel import Panel
from bridge.simulator.records import Certificate, empty_certificate
from bridge.simulator.routing import add_route, obj
from bridge.simulator.webhooks import watch_certificate

PROVIDERS = ("letsencrypt", "zerossl")


async def list_certificates(request: Request) -> Response:
    """List certificates on domains the caller may see."""
    panel, principal = panel_of(request), principal_of(request)
    owners = visible_usernames(panel, principal)
    now = panel.now()
    certs = [
        cert.to_json(panel.fmt, now)
        for cert in panel.state.certificates.values()
        if (d := panel.state.domains.get(cert.domain)) is not None and d.owner in owners
    ]
    return json_response(certs)


async def show_certificate(request: Request, domain: str) -> Response:
    """Return a domain's certificate (status ``none`` when never issued)."""
    panel = panel_of(request)
    found = get_domain(panel, principal_of(request), domain)
    cert = panel.state.certificates.get(found.domain)
    if cert is None:
        return json_response(empty_certificate(found.domain))
    return _certificate_response(panel, cert, panel.now())


async def issue_certificate(request: Request, domain: str) -> Response:
    """Start an issuance; every call starts a new one and counts in the ledger."""
    panel = panel_of(request)
    found = get_domain(panel, principal_of(request), domain)
    owner = panel.state.users[found.owner]
    if not owner.can_use_ssl:
        raise ApiError(403, "SSL is not allowed for this account")
    body = await read_json(request)
    provider = text_field(body, "provider") or "letsencrypt"
    if provider not in PROVIDERS:
        raise ApiValidationError("Invalid provider", "provider")
    include_www = bool_field(body, "include_www", default=True)
    now = panel.now()
    cert = Certificate(
        domain=found.domain,
        requested_at=now,
        ready_at=now + panel.config.ssl_delay_s,
        fails=panel.dice.roll(panel.faults.ssl_failure_rate),
        provider=provider,
        include_www=include_www,
    )
    panel.state.certificates[found.domain] = cert
    panel.state.record_creation("certificate", found.domain)
    watch_certificate(panel, cert)
    return _certificate_response(panel, cert, now)


async def renew_certificate(request: Request, domain: str) -> Response:
    """Renew an existing certificate (pending again; not a creation)."""
    panel = panel_of(request)
    found = get_domain(panel, principal_of(request), domain)
    cert = panel.state.certificates.get(found.domain)
    if cert is None:
        raise ApiError(404, "Certificate not found")
    now = panel.now()
    cert.requested_at = now
    cert.ready_at = now + panel.config.ssl_delay_s
    cert.fails = panel.dice.roll(panel.faults.ssl_failure_rate)
    cert.announced = False
    watch_certificate(panel, cert)
    return _certificate_response(panel, cert, now)


def _certificate_response(panel: Panel, cert: Certificate, now: float) -> Response:
    """The certificate as of ``now``; Retry-After while pending, when opted in."""
    response = json_response(cert.to_json(panel.fmt, now))
    if panel.config.ssl_retry_after and cert.status(now) == "pending":
        response.headers["Retry-After"] = str(max(1, math.ceil(cert.ready_at - now)))
    return response


def register(router: APIRouter) -> None:
    """Add the SSL routes to ``router``."""
    item = "/api/v1/ssl/{domain}"
    issue = obj(
        optional={"provider": "string", "include_www": "boolean", "email": "string"}
    )
    add_route(router, "GET", "/api/v1/ssl/", list_certificates, summary="List certs")
    add_route(router, "GET", item, show_certificate, summary="Certificate status")
    add_route(
        router,
        "POST",
        item + "/issue",
        issue_certificate,
        summary="Issue a certificate (asynchronous: status pending)",
        body=issue,
    )
    add_route(
        router,
        "POST",
        item + "/renew",
        renew_certificate,
        summary="Renew a certificate",
    )
