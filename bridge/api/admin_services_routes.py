"""Admin API for services: link an imported account to billing's service id."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from bridge.api.admin_auth import AdminDep, AdminRoute, ServicesDep
from bridge.ops.linking import link_service

router = APIRouter(
    prefix="/v1/admin/services",
    tags=["admin"],
    route_class=AdminRoute,
    responses={401: {"description": "Missing, unknown or revoked admin token"}},
)


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_id: str = Field(
        pattern=r"^[\x21-\x7e]{1,128}$", description="Billing's id for this service"
    )


@router.post(
    "/{service_id}/link",
    responses={
        404: {"description": "Unknown service"},
        409: {"description": "Not an import placeholder, id taken, or orders open"},
        422: {"description": "Invalid service_id"},
    },
)
def post_link(
    service_id: str, body: LinkIn, services: ServicesDep, operator: AdminDep
) -> dict[str, Any]:
    """Rename imported service `import:<server>:<username>` to billing's id.

    Every order and audit entry moves with it, in one transaction.
    """
    return {
        "service": link_service(services, service_id, body.service_id, operator.actor)
    }
