"""The admin API's shape of a server's route overrides (`ServerIn.route_overrides`).

Only the shape is checked here; whether an override fits the route table (a known
operation, an allowed method, an absolute path with the same `{fields}`) is
checked where the server is saved (bridge.fleet.check_route_overrides), the one
place the CLI and the API share, and answers 422 naming `route_overrides`.
"""

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from bridge.panel import DEFAULT_ROUTES


class RouteOverrideIn(BaseModel):
    """Another method and/or path for one panel operation."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    method: str | None = Field(
        default=None, min_length=3, max_length=7, examples=["GET"]
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Absolute path on the panel; keep the default's {fields}",
        examples=["/api/v1/stats/usage/"],
    )


# At most one entry per operation of the route table.
MAX_ROUTE_OVERRIDES = len(DEFAULT_ROUTES)
ROUTE_OVERRIDES_DOC = (
    "Operation -> {method?, path?} where the panel differs from the contract "
    "(e.g. list_usage, get_user_usage). Replaces all overrides; null or {} clears."
)


def route_changes(
    overrides: Mapping[str, RouteOverrideIn] | None,
) -> dict[str, Mapping[str, str] | None]:
    """ServerChanges.routes for a body that sent `route_overrides`."""
    return {
        op: entry.model_dump(exclude_none=True)
        for op, entry in (overrides or {}).items()
    }
