"""Benchmark: one suspension sweep over 1,000,000 services in PostgreSQL.

Recreates a dedicated database (default `bridge_bench`), migrates it, and seeds it
set-based with generate_series (one INSERT ... SELECT per table, not row by row):
20 servers, N services and one completed create order each, in a realistic mix
(by service number modulo 1000):

    0-14    active, overdue past the grace period      (1.5 %, the candidates)
    15-34   suspended for non-payment, 0-59 days ago   (2 %)
    35-44   suspended for abuse                        (1 %)
    45-49   terminated                                 (0.5 %)
    50-59   active, overdue but within the grace days  (1 %)
    other   active and paid                            (94 %)

plus a live change_package order on 0.2 % of services (7 and 100 modulo 1000),
which the sweep must skip. Then it times the sweep's selection query alone (and
EXPLAIN ANALYZEs it: plan node types to stderr) and one full `run_sweep` (orders
created in batches of `--batch`). The overdue share stays under the 10 % guard.
Prints one JSON line to stdout:

    {"services", "candidates", "select_seconds", "sweep_seconds",
     "orders_created", "index_used"}

Usage: .venv/bin/python -m bench.sweeps [--services N] [--batch B] [--database-url U]
"""

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from cryptography.fernet import Fernet
from sqlalchemy import Connection, Select
from sqlalchemy.engine import make_url

from bridge.container import build_services
from bridge.db import migrate
from bridge.db.sweeps import SweepTarget, due_batch, due_services
from bridge.domain.model import Action
from bridge.logging import configure_logging
from bridge.settings import Settings
from bridge.sweeps import run_sweep

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bridge_bench"
SERVERS = 20
SWEEP_INDEX = "ix_services_status_paid_until"

SEED_SERVERS = """
INSERT INTO servers (id, name, base_url, auth_mode, credentials, force_login,
    rate_limit_per_min, tls_verify, group_name, state, route_overrides,
    consecutive_failures, created_at, updated_at)
SELECT gen_random_uuid(), 'bench-' || lpad(g::text, 2, '0'),
    'https://panel' || g || '.example', 'api_key', 'not-a-credential', false, 60,
    true, 'default', 'active', '{}'::jsonb, 0, %(now)s, %(now)s
FROM generate_series(1, %(servers)s) AS g
"""

SEED_SERVICES = """
INSERT INTO services (service_id, server_id, username, domain, package, status,
    suspension_reason, suspended_at, paid_until, order_seq, created_at, updated_at)
SELECT 'svc-' || lpad(g::text, 7, '0'), s.id, 'u' || g, 'site' || g || '.example',
    'default',
    CASE WHEN m.b BETWEEN 15 AND 44 THEN 'suspended'
         WHEN m.b BETWEEN 45 AND 49 THEN 'terminated' ELSE 'active' END,
    CASE WHEN m.b BETWEEN 15 AND 34 THEN 'non_payment'
         WHEN m.b BETWEEN 35 AND 44 THEN 'abuse' END,
    CASE WHEN m.b BETWEEN 15 AND 44
         THEN %(now)s - make_interval(days => g %% 60) END,
    CASE WHEN m.b < 50 THEN %(today)s - (%(grace)s + 1 + g %% 90)
         WHEN m.b < 60 THEN %(today)s - (g %% (%(grace)s + 1))
         ELSE %(today)s + (g %% 365) END,
    CASE WHEN m.b IN (7, 100) THEN 2 ELSE 1 END,
    %(now)s, %(now)s
FROM generate_series(0, %(services)s - 1) AS g
CROSS JOIN LATERAL (SELECT (g %% 1000)::int AS b) AS m
JOIN (SELECT id, (row_number() OVER (ORDER BY name) - 1)::int AS n FROM servers) AS s
    ON s.n = g %% %(servers)s
"""

SEED_ORDERS = """
INSERT INTO orders (id, order_id, service_id, service_seq, action, payload, status,
    priority, requested_by, server_id, attempts, callback_status,
    callback_attempts, version, created_at, updated_at, finished_at)
SELECT gen_random_uuid(), 'create-' || service_id, service_id, 1, 'create',
    '{}'::jsonb, 'completed', 40, 'billing', server_id, 1, 'delivered', 1, 3,
    %(now)s, %(now)s, %(now)s
FROM services
UNION ALL
SELECT gen_random_uuid(), 'pkg-' || service_id, service_id, 2, 'change_package',
    '{"package": "pro"}'::jsonb, 'queued', 30, 'billing', server_id, 0, 'none', 0,
    0, %(now)s, %(now)s, NULL
FROM services WHERE order_seq = 2
"""


def recreate(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def seed(settings: Settings, count: int, today: date, now: datetime) -> float:
    """Fill the database; return the seconds it took (VACUUM ANALYZE included)."""
    params = {
        "now": now,
        "today": today,
        "grace": settings.suspend_after_days,
        "servers": SERVERS,
        "services": count,
    }
    url = make_url(settings.database_url).set(drivername="postgresql")
    started = time.perf_counter()
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        conn.execute("SET synchronous_commit = off")
        for sql in (SEED_SERVERS, SEED_SERVICES, SEED_ORDERS):
            conn.execute(sql, params)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE servers, services, orders")
    return time.perf_counter() - started


def plan_nodes(conn: Connection, stmt: Select[Any]) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, FORMAT JSON) `stmt`; the plan's nodes, outermost first."""
    # Literal values: what PostgreSQL plans for the sweep's own (custom) plans.
    compiled = stmt.compile(
        dialect=conn.dialect, compile_kwargs={"literal_binds": True}
    )
    sql = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {compiled}"
    (document,) = conn.exec_driver_sql(sql).one()
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        nodes.append({**node, "depth": depth})
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(document[0]["Plan"], 0)
    return nodes


def describe(title: str, nodes: list[dict[str, Any]]) -> None:
    print(title, file=sys.stderr)
    for node in nodes:
        index = f" using {node['Index Name']}" if "Index Name" in node else ""
        relation = f" on {node['Relation Name']}" if "Relation Name" in node else ""
        print(
            f"  {'  ' * node['depth']}{node['Node Type']}{relation}{index} "
            f"(rows={node.get('Actual Rows')}, ms={node.get('Actual Total Time')})",
            file=sys.stderr,
        )


def no_broker(task_name: str, *args: str) -> bool:
    """An Enqueuer that sends nothing: sweeps leave enqueueing to the dispatcher."""
    del task_name, args
    return False


def measure(settings: Settings, today: date, count: int) -> dict[str, Any]:
    services = build_services(settings, enqueue=no_broker)
    try:
        target = SweepTarget(Action.SUSPEND, today, settings.suspend_after_days)
        stmt = due_services(target)
        with services.engine.connect() as conn:
            started = time.perf_counter()
            candidates = len(conn.execute(stmt).all())
            select_seconds = time.perf_counter() - started
            nodes = plan_nodes(conn, stmt)
            describe("suspend selection plan:", nodes)
            batch = due_batch(target, limit=settings.sweep_batch, lock=True)
            describe("suspend first batch plan:", plan_nodes(conn, batch))
            conn.rollback()  # EXPLAIN ANALYZE of FOR UPDATE took the row locks
            terminate = SweepTarget(
                Action.TERMINATE, today, settings.terminate_after_days
            )
            describe(
                "terminate selection plan:", plan_nodes(conn, due_services(terminate))
            )
        started = time.perf_counter()
        report = run_sweep(services, "suspend", today=today)
        sweep_seconds = time.perf_counter() - started
    finally:
        services.close()
    return {
        "services": count,
        "candidates": candidates,
        "select_seconds": round(select_seconds, 3),
        "sweep_seconds": round(sweep_seconds, 3),
        "orders_created": report.orders_created,
        "index_used": any(n.get("Index Name") == SWEEP_INDEX for n in nodes),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args(argv)
    settings = Settings(
        database_url=args.database_url,
        # Never contacted: sweeps do not enqueue (the dispatcher does).
        redis_url="redis://127.0.0.1:6379/15",
        secret_key=Fernet.generate_key().decode(),
        sweep_batch=args.batch,
        log_format="console",
        log_level="WARNING",
    )
    configure_logging(settings)
    now = datetime.now(UTC)
    recreate(args.database_url)
    migrate.upgrade(args.database_url)
    seconds = seed(settings, args.services, now.date(), now)
    print(f"seeded {args.services} services in {seconds:.1f} s", file=sys.stderr)
    print(json.dumps(measure(settings, now.date(), args.services)))


if __name__ == "__main__":
    main()
