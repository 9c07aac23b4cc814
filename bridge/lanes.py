"""Panel clients that spend a server's budget through a lane (bridge.ratelimit):
`priority_client` for a person waiting (SSO), `usage_client` for background usage
collection capped at BRIDGE_USAGE_BUDGET_SHARE. Callers close what they get.

Both count against the server's in-flight cap (BRIDGE_SERVER_MAX_IN_FLIGHT) through
the same slots as the engine's clients (`services.panels.inflight`): a lane only
changes whose turn a token is, never how many calls a panel gets at once.
"""

from bridge.container import Services
from bridge.db.models import Server
from bridge.panel import Budget, PanelClient
from bridge.ratelimit import PriorityLane, ShareLane

USAGE_LANE = "usage"


def _client(services: Services, server: Server, budget: Budget) -> PanelClient:
    return services.panels.new_client(server, budget)


def priority_client(services: Services, server: Server) -> PanelClient:
    """A client whose calls claim the server's next slot ahead of queued work."""
    settings = services.settings
    lane = PriorityLane(
        services.limiter,
        max_wait=settings.sso_max_wait_seconds,
        grace=settings.sso_claim_grace_seconds,
    )
    return _client(services, server, lane)


def usage_lane(services: Services) -> ShareLane:
    return ShareLane(
        services.limiter, share=services.settings.usage_budget_share, lane=USAGE_LANE
    )


def usage_client(services: Services, server: Server) -> PanelClient:
    """A client capped at the usage share of the server's budget."""
    return _client(services, server, usage_lane(services))
