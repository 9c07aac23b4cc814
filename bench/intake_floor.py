"""The intake floor: the least an intake endpoint can do, to compare `bridge api` to.

`POST /v1/orders` verifies the same HMAC signature as the bridge (same signed string,
same secret, same skew rule), parses the JSON and INSERTs one row through SQLAlchemy
on an engine built exactly like the bridge's (`bridge.db.session.make_engine`), then
answers 202. No validation, no plan, no broker.

`--stage` adds, one at a time, the parts of intake that design.md §1 makes mandatory
but that are not persistence, so the bench can show the ceiling they set:

  insert     the floor above
  validated  + the body validated into the bridge's own `OrderIn` (strict types,
             bounds, NUL checks: FastAPI, as the bridge's route) and its duplicate
             digest, before the INSERT
  published  + the "run order" message sent after commit through the bridge's own
             `CeleryEnqueuer.send_later` (design.md §1.2: intake enqueues for latency)
  rows       + instead of the one row, the rows design.md §1.1 and §3 ask intake
             to write in its one transaction for a create with SSL and a mailbox:
             a service, an order, its 5 steps (one executemany), an audit entry
             and an intake record, in tables of the bridge's column counts, with
             Core and no reads (what persistence costs with nothing else)

Usage: python -m bench.intake_floor --database-url URL --port P [--stage S]
       [--broker-url URL]
"""

import argparse
import hmac
import json
import time
import uuid

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import JSON, Column, MetaData, String, Table, insert

from bridge.api.schemas import OrderIn, canonical_body
from bridge.api.signing import signature
from bridge.db.session import make_engine
from bridge.intake import body_digest
from bridge.queue import RUN_ORDER_TASK, CeleryEnqueuer

STAGES = ("insert", "validated", "published", "rows")

MAX_SKEW = 300
metadata = MetaData()
floor_orders = Table(
    "floor_orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(255), unique=True, nullable=False),
    Column("body", JSON, nullable=False),
)


def _wide(name: str, width: int) -> Table:
    """A table of `width` columns like a bridge table: an id, a JSON body, text."""
    extra = [Column(f"c{n}", String(255)) for n in range(width - 2)]
    return Table(
        name,
        metadata,
        Column("id", String(36), primary_key=True),
        Column("body", JSON),
        *extra,
    )


# The widths of the bridge's services, orders, steps, audit_log, intake_requests.
PLAN_TABLES = {
    name: _wide(f"floor_plan_{name}", width)
    for name, width in (
        ("services", 14), ("orders", 28), ("steps", 20), ("audit", 9), ("intake", 6)
    )
}  # fmt: skip
PLANNED_STEPS = 5  # create user, domain, SSL, mailbox, poll


def create_app(
    database_url: str, secret: str, stage: str = "insert", broker_url: str = ""
) -> FastAPI:
    engine = make_engine(database_url)
    metadata.create_all(engine)
    enqueuer = CeleryEnqueuer(broker_url) if stage == "published" else None
    app = FastAPI()

    async def verified(request: Request) -> bytes:
        body = await request.body()
        timestamp = request.headers.get("x-bridge-timestamp", "")
        sent = request.headers.get("x-bridge-signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW:
            raise HTTPException(401, "timestamp")
        expected = signature(secret, timestamp, "POST", request.url.path, body)
        if not hmac.compare_digest(expected.encode(), sent.encode()):
            raise HTTPException(401, "bad signature")
        return body

    def insert_row(order_id: str, data: object) -> str:
        row_id = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(
                insert(floor_orders).values(id=row_id, order_id=order_id, body=data)
            )
        return row_id

    def insert_plan(order_id: str, data: dict[str, object]) -> str:
        def row(table: str) -> dict[str, object]:
            width = len(PLAN_TABLES[table].columns)
            texts = {f"c{k}": f"{order_id}:{k}" for k in range(width - 2)}
            return {"id": str(uuid.uuid4()), "body": data, **texts}

        order = row("orders")
        with engine.begin() as conn:
            conn.execute(insert(PLAN_TABLES["services"]), row("services"))
            conn.execute(insert(PLAN_TABLES["orders"]), order)
            steps = [row("steps") for _ in range(PLANNED_STEPS)]
            conn.execute(insert(PLAN_TABLES["steps"]), steps)
            conn.execute(insert(PLAN_TABLES["audit"]), row("audit"))
            conn.execute(insert(PLAN_TABLES["intake"]), row("intake"))
        return str(order["id"])

    if stage == "insert":

        @app.post("/v1/orders")
        def post_order(body: bytes = Depends(verified)) -> JSONResponse:
            data = json.loads(body)
            row_id = insert_row(data["order_id"], data)
            return JSONResponse({"id": row_id}, status_code=202)

    else:

        @app.post("/v1/orders", dependencies=[Depends(verified)])
        def post_validated(order: OrderIn) -> JSONResponse:
            digest = body_digest(canonical_body(order))
            if stage == "rows":
                row_id = insert_plan(order.order_id, {"digest": digest})
            else:
                row_id = insert_row(order.order_id, {"digest": digest})
            if enqueuer is not None:
                enqueuer.send_later(RUN_ORDER_TASK, row_id)
            return JSONResponse({"id": row_id}, status_code=202)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--stage", choices=STAGES, default="insert")
    parser.add_argument("--broker-url", default="")
    args = parser.parse_args()
    app = create_app(args.database_url, args.secret, args.stage, args.broker_url)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
