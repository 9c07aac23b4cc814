"""How many of each server's orders are competing for its next tokens right now.

The dispatcher and the engine both bound these by `orders_db.contender_cap` (more
contenders only buy refused tokens). A contender is an order holding a live lease,
or one whose message is on its way to a worker (`orders_db.budget_contenders`),
minus the orders inside a long panel call: those hold their token and in-flight
slot already. Without that, a slow panel (3 s a call) could have only
`contender_cap` calls at once, about 40 of its 60 a minute (bench/fleet.py).

"Long" is longer than one dispatcher tick: a healthy panel's calls end well within
it, so its count is exactly the leases and messages (calls of a few ms never free
room for more orders, which would only be refused the next token); a slow panel's
calls stay in flight for ticks and make room for the next contenders, up to
BRIDGE_SERVER_MAX_IN_FLIGHT calls. The in-flight slots (bridge.inflight) also count
the rare call that is not an order's (usage, SSO, a package refresh): that can
admit a few more contenders, never more calls than the in-flight cap.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bridge.container import Services
from bridge.db import orders as orders_db
from bridge.db.models import Server


def waiting_contenders(
    services: Services,
    session: Session,
    now: datetime,
    servers: Sequence[Server],
    *,
    grace: timedelta,
) -> dict[uuid.UUID, int]:
    """Per server id: its orders competing for its next tokens (0 when none)."""
    only = servers[0].id if len(servers) == 1 else None
    contenders = orders_db.budget_contenders(session, now, grace=grace, server_id=only)
    long_calls = services.panels.calls_in_flight(
        [s.name for s in servers], older_than=services.settings.dispatch_interval
    )
    return {
        s.id: max(0, contenders.get(s.id, 0) - long_calls.get(s.name, 0))
        for s in servers
    }
