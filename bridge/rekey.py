"""Re-encrypt every stored secret under the newest BRIDGE_SECRET_KEY (key rotation).

Rotation: set BRIDGE_SECRET_KEY=new,old everywhere, run `bridge secrets rotate`, then
drop the old key. Rows are rewritten in batches, each batch in its own transaction.
"""

from dataclasses import dataclass

from sqlalchemy import select

from bridge.container import Services
from bridge.db.models import Server, Step


@dataclass(frozen=True, slots=True)
class RekeyReport:
    servers: int
    steps: int


def rotate_secrets(services: Services, *, batch: int = 500) -> RekeyReport:
    """Rewrite server credentials and pending step secrets with the first key."""
    box = services.box
    with services.sessions.begin() as session:
        servers = list(session.scalars(select(Server)))
        for server in servers:
            server.credentials = box.rotate(server.credentials)
            if server.webhook_secret:
                server.webhook_secret = box.rotate(server.webhook_secret)
    steps = 0
    last_id = None
    while True:
        with services.sessions.begin() as session:
            stmt = select(Step).where(Step.secret_body.is_not(None)).order_by(Step.id)
            if last_id is not None:
                stmt = stmt.where(Step.id > last_id)
            rows = list(session.scalars(stmt.limit(batch)))
            for step in rows:
                step.secret_body = box.rotate(step.secret_body or "")
            steps += len(rows)
        if len(rows) < batch:
            return RekeyReport(servers=len(servers), steps=steps)
        last_id = rows[-1].id
