"""Benchmark: the bridge's own cost per panel call, and 202 -> completed for one create.

A zero-latency panel with no effective rate limit and certificates issued at once
(`bridge simulator --limit 1000000 --ssl-delay 0`), and per database (PostgreSQL,
SQLite) a fresh bridge: `bridge api`, `bridge worker` (default pool) and `bridge beat`.
Creates with SSL and two mailboxes are posted one at a time through the signed API,
each waited for before the next, so nothing queues.

  end_to_end       finished_at - created_at of the order (both stamped by the
                   bridge): 202 -> completed
  floor_order      in the same run, the same five panel calls (user, domain, SSL,
                   two mailboxes) sent one after another by a bare httpx client to
                   the same panel: what the panel and loopback alone cost
  own_cost         (end_to_end - floor_order) / calls per order, at the median and
                   at p99: the bridge's own cost per panel call (lease, token,
                   commit of each outcome, next step, callbacks off)

One JSON line per database:
  {"db", "orders", "calls_per_order", "end_to_end_ms": {"p50", "p99", "max"},
   "floor_order_ms": {"p50", "p99", "max"}, "own_cost_per_call_ms": {"p50", "p99"}}

Usage: .venv/bin/python -m bench.overhead [--orders 50] [--dbs postgresql,sqlite]
"""

import sys
from pathlib import Path

# Runnable as a script (`python bench/<name>.py`), not only with `python -m`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import itertools
import json
import shutil
import tempfile
import time
import uuid
from datetime import datetime
from typing import Any

import httpx

from bench.support import (
    BENCH_REDIS,
    UNLIMITED,
    BridgeEnv,
    children,
    create_body,
    flush_redis,
    free_port,
    fresh_bridge_database,
    machine,
    percentile,
    pg_url,
    register_server,
    signed_headers,
    sqlite_url,
    start_unlimited_panel,
    wait_http,
)

FINAL = {"completed", "failed", "cancelled"}


def floor_orders(base: str, key: str, count: int) -> list[float]:
    """The same five panel calls per order, straight from httpx (ms per order)."""
    headers = {"Authorization": f"Bearer {key}"}
    samples = []
    with httpx.Client(base_url=base + "/api/v1", headers=headers, timeout=10) as http:
        for n in range(count):
            user, domain = f"uf{n}", f"sf{n}.example"
            calls: list[tuple[str, dict[str, Any]]] = [
                (
                    "/users/",
                    {
                        "username": user,
                        "email": f"{user}@example.com",
                        "password": "correct-horse-battery",
                        "package": "default",
                    },
                ),
                ("/domains/", {"domain": domain, "username": user}),
                (
                    f"/ssl/{domain}/issue",
                    {"provider": "letsencrypt", "include_www": True},
                ),
            ]
            calls += [
                (
                    "/email/accounts",
                    {
                        "domain": domain,
                        "username": f"box{i}",
                        "password": "mailbox-pass-1",
                        "quota_mb": 10,
                    },
                )
                for i in range(2)
            ]
            started = time.perf_counter()
            for path, body in calls:
                sent = http.post(
                    path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
                )
                sent.raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def run_orders(api: httpx.Client, count: int, tag: str) -> list[dict[str, Any]]:
    finished = []
    for n in range(count):
        raw = create_body(tag, n, mailboxes=2)
        response = api.post(
            "/v1/orders", content=raw, headers=signed_headers("POST", "/v1/orders", raw)
        )
        response.raise_for_status()
        target = f"/v1/orders/{response.json()['order']['id']}"
        deadline = time.monotonic() + 60
        while True:
            order = api.get(target, headers=signed_headers("GET", target)).json()
            if order["order"]["status"] in FINAL:
                break
            if time.monotonic() > deadline:
                msg = f"order {n} did not finish: {order}"
                raise RuntimeError(msg)
            time.sleep(0.005)
        if order["order"]["status"] != "completed":
            msg = f"order {n} ended {order['order']['status']}"
            raise RuntimeError(msg)
        finished.append(order["order"])
    return finished


def measure(db: str, url: str, orders: int, tmp: Path) -> dict[str, Any]:
    fresh_bridge_database(url)
    flush_redis(BENCH_REDIS)
    env = BridgeEnv(database_url=url, redis_url=BENCH_REDIS, var_dir=tmp / "var")
    with children(tmp) as kids:
        base, key = start_unlimited_panel(kids)
        register_server(env, "panel", base, key, limit=UNLIMITED)
        port = free_port()
        api_proc = kids.bridge("api", ["api", "--port", str(port)], env)
        kids.bridge("worker", ["worker", "--without-mingle"], env)
        kids.bridge("beat", ["beat"], env)
        wait_http(f"http://127.0.0.1:{port}/healthz", api_proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            run_orders(api, 2, "w")  # warm-up: worker start, pools, first queries
            httpx.post(base + "/_sim/reset", timeout=10).raise_for_status()
            httpx.post(
                base + "/_sim/config",
                json={"license_max_users": -1, "license_max_domains": -1},
                timeout=10,
            ).raise_for_status()
            done = run_orders(api, orders, "m")
        _, calls = _user_gaps(base)
        floor = floor_orders(base, key, orders)
    e2e = [_e2e_ms(o) for o in done]
    per_call = max(calls, 1)
    return {
        "db": db,
        "orders": len(done),
        "calls_per_order": calls,
        "end_to_end_ms": _stats(e2e, max_=True),
        "floor_order_ms": _stats(floor, max_=True),
        "own_cost_per_call_ms": {
            q: round((percentile(e2e, n) - percentile(floor, n)) / per_call, 2)
            for q, n in (("p50", 50), ("p99", 99))
        },
    }


def _user_gaps(base: str) -> tuple[list[float], int]:
    """Orders run one at a time: split the log at each POST /users (a new order);
    the gaps between arrivals of consecutive calls and the calls per order."""
    log = httpx.get(base + "/_sim/requests", timeout=30).json()
    orders: list[list[datetime]] = []
    for entry in log:
        if entry["method"] == "POST" and entry["path"] == "/api/v1/users/":
            orders.append([])
        if orders:
            orders[-1].append(datetime.fromisoformat(entry["at"]))
    gaps = [
        (b - a).total_seconds() * 1000
        for times in orders
        for a, b in itertools.pairwise(times)
    ]
    return gaps, max((len(t) for t in orders), default=0)


def _e2e_ms(order: dict[str, Any]) -> float:
    created = datetime.fromisoformat(order["created_at"])
    finished = datetime.fromisoformat(order["finished_at"])
    return (finished - created).total_seconds() * 1000


def _stats(values: list[float], *, max_: bool = False) -> dict[str, float]:
    out = {
        "p50": round(percentile(values, 50), 2),
        "p99": round(percentile(values, 99), 2),
    }
    if max_:
        out["max"] = round(max(values, default=0.0), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--dbs", default="postgresql,sqlite")
    parser.add_argument("--smoke", action="store_true", help="3 orders")
    args = parser.parse_args(argv)
    if args.smoke:
        args.orders = 3
    print(json.dumps({"machine": machine()}), file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    try:
        for db in args.dbs.split(","):
            url = (
                pg_url("overhead")
                if db == "postgresql"
                else sqlite_url(tmp, "overhead")
            )
            print(json.dumps(measure(db, url, args.orders, tmp)), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
