"""Request bodies and list envelopes of the admin API (credentials write-only)."""

import math
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
)

from bridge.api.admin_servers_schemas import (
    MAX_ROUTE_OVERRIDES,
    ROUTE_OVERRIDES_DOC,
    RouteOverrideIn,
    route_changes,
)
from bridge.api.schemas import HttpUrlText
from bridge.domain.model import ServerState
from bridge.fleet import (
    CAPACITY_MAX,
    CAPACITY_MIN,
    RATE_LIMIT_MAX,
    RATE_LIMIT_MIN,
    URL_MAX_LENGTH,
)
from bridge.ops import ServerChanges
from bridge.ops.servers import CLEARABLE


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str = Field(min_length=1, max_length=2000, description="What was fixed")


class ServerIn(BaseModel):
    """PUT /v1/admin/servers/{name}: add, or change only the fields sent.

    `capacity`, `ca_bundle` and `tls_fingerprint` sent as null are cleared.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: Annotated[HttpUrlText, Field(max_length=URL_MAX_LENGTH)] | None = None
    api_key: SecretStr | None = None
    username: str | None = Field(default=None, min_length=1, max_length=128)
    password: SecretStr | None = None
    totp_secret: SecretStr | None = None
    force_login: StrictBool | None = None
    rate_limit_per_min: StrictInt | None = Field(
        default=None,
        ge=RATE_LIMIT_MIN,
        le=RATE_LIMIT_MAX,
        validation_alias=AliasChoices("rate_limit_per_min", "limit"),
    )
    group: str | None = Field(default=None, min_length=1, max_length=64)
    capacity: StrictInt | None = Field(default=None, ge=CAPACITY_MIN, le=CAPACITY_MAX)
    ca_bundle: str | None = Field(default=None, max_length=1024)
    tls_fingerprint: str | None = Field(default=None, max_length=128)
    state: ServerState | None = None
    webhooks: StrictBool | None = Field(
        default=None, description="Subscribe to panel events (needs BRIDGE_PUBLIC_URL)"
    )
    route_overrides: dict[str, RouteOverrideIn] | None = Field(
        default=None, max_length=MAX_ROUTE_OVERRIDES, description=ROUTE_OVERRIDES_DOC
    )

    def to_changes(self) -> ServerChanges:
        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        cleared = {
            name
            for name in CLEARABLE
            if name in self.model_fields_set and getattr(self, name) is None
        }
        if "route_overrides" in self.model_fields_set:
            cleared.add("route_overrides")  # sent overrides replace the old ones
        return ServerChanges(
            url=self.url,
            api_key=secret(self.api_key),
            username=self.username,
            password=secret(self.password),
            totp_secret=secret(self.totp_secret),
            force_login=self.force_login,
            rate_limit_per_min=self.rate_limit_per_min,
            group=self.group,
            capacity=self.capacity,
            ca_bundle=self.ca_bundle,
            tls_fingerprint=self.tls_fingerprint,
            state=self.state,
            webhooks=self.webhooks,
            routes=route_changes(self.route_overrides),
            clear=frozenset(cleared),
        )


def page_envelope(
    rows: list[dict[str, Any]], total: int, page: int, per_page: int
) -> dict[str, Any]:
    """`{data, meta}` as the panel paginates (wispanel-api.md §6)."""
    return {
        "data": rows,
        "meta": {
            "total": total,
            "per_page": per_page,
            "current_page": page,
            "last_page": max(1, math.ceil(total / per_page)),
        },
    }
