"""`POST /v1/panel-events/{server}`: a panel's webhook deliveries (HMAC of the panel).

Authenticated by the subscription's secret alone (X-WisPanel-Signature over the
raw body), like billing's intake is by its own: no admin token, no intake HMAC.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from bridge.api.admin_auth import ServicesDep
from bridge.api.edge import EdgeRoute
from bridge.panel_events import Delivery, PanelEventRejectedError, receive

# EdgeRoute: size cap and string checks like every route; the signature is the
# panel's, checked in `receive` over the same raw bytes.
router = APIRouter(
    prefix="/v1/panel-events", tags=["panel-events"], route_class=EdgeRoute
)


@router.post(
    "/{server}",
    responses={
        200: {"description": "Applied, duplicate (replayed delivery) or ignored"},
        400: {"description": "Malformed body, or X-WisPanel-Delivery missing"},
        401: {"description": "Bad signature, or timestamp more than 300 s off"},
        404: {"description": "Unknown server, or no webhook subscription"},
        413: {"description": "Body too large"},
    },
)
async def post_panel_event(
    server: str,
    request: Request,
    services: ServicesDep,
    x_wispanel_signature: Annotated[
        str | None, Header(description="sha256=<hex HMAC-SHA256(secret, raw body)>")
    ] = None,
    x_wispanel_delivery: Annotated[
        str | None, Header(description="Delivery id, constant across retries")
    ] = None,
) -> JSONResponse:
    """Receive one panel event: `ssl.issued` wakes the order waiting on that
    domain's certificate; `user.*` is noted; unknown events are ignored (200)."""
    body = await request.body()
    if len(body) > services.settings.intake_max_body_bytes:
        return JSONResponse({"detail": "body too large"}, status_code=413)
    delivery = Delivery(server, body, x_wispanel_signature, x_wispanel_delivery)
    try:
        result: dict[str, Any] = await run_in_threadpool(receive, services, delivery)
    except PanelEventRejectedError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    return JSONResponse(result)
