"""How many more of each server's orders may compete for its next tokens: `room`.

The dispatcher starts at most that many per tick, and the engine sends an order
refused a token back by itself only while it is not negative (more contenders only
buy refused tokens). A contender is an order holding a live lease,
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

import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bridge.container import Services
from bridge.db import orders as orders_db
from bridge.db.models import Server

# Contenders beyond one tick's worth of tokens: one order ready to take the next
# token while another finishes, waits for a certificate or backs off.
_SPARE_CONTENDERS = 1


def contender_cap(server: Server, dispatch_interval: float) -> int:
    """How many of a server's orders may compete for its budget at once.

    A single order can use every token of a 60/min panel by itself (its next
    step comes back when the next token is free); more contenders only buy
    refusals: each one a lease, a refused token and a release, thousands a
    second with a backlog (bench/fleet.py measured 9.5 refusals per call).
    """
    per_tick = math.ceil(server.rate_limit_per_min * dispatch_interval / 60)
    return max(1, per_tick) + _SPARE_CONTENDERS


def room(
    services: Services,
    session: Session,
    now: datetime,
    servers: Sequence[Server],
    *,
    grace: timedelta,
) -> dict[uuid.UUID, int]:
    """Per server id: its cap minus its contenders (negative when over the cap)."""
    interval = services.settings.dispatch_interval
    only = servers[0].id if len(servers) == 1 else None
    contenders = orders_db.budget_contenders(session, now, grace=grace, server_id=only)
    # Only a server with contenders can have calls to discount: an idle fleet's
    # tick asks Redis nothing.
    busy = [s.name for s in servers if contenders.get(s.id, 0) > 0]
    long_calls = (
        services.panels.calls_in_flight(busy, older_than=interval) if busy else {}
    )
    return {
        s.id: contender_cap(s, interval)
        - max(0, contenders.get(s.id, 0) - long_calls.get(s.name, 0))
        for s in servers
    }
