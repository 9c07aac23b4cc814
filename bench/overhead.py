"""Benchmark: the bridge's own cost per panel call, and 202 -> completed for one create.

A zero-latency panel with no effective rate limit and certificates issued at once
(`bridge simulator --limit 1000000 --ssl-delay 0`), and per database (PostgreSQL,
SQLite) a fresh bridge: `bridge api`, `bridge worker` (default pool) and `bridge beat`.
Creates with SSL and two mailboxes are posted one at a time through the signed API,
each waited for before the next, so nothing queues.

  end_to_end   finished_at - created_at of the order (both stamped by the bridge):
               202 -> completed
  gap          time between consecutive panel calls of one order, from the panel's
               request log (microseconds): the bridge's work between two calls (commit
               the outcome, lease, prepare the next step, take a token) plus one
               loopback round trip and the panel's handling
  floor_rtt    in the same run, a bare httpx keep-alive GET /api/v1/auth/me against
               the same panel: one round trip plus the panel's handling
  own_cost     gap - floor_rtt (median and p99 of the gaps, minus the floor median)

One JSON line per database:
  {"db", "orders", "calls_per_order", "end_to_end_ms": {"p50", "p99", "max"},
   "gap_ms": {"p50", "p99"}, "floor_rtt_ms": {"p50", "p99"},
   "own_cost_per_call_ms": {"p50", "p99"}}

Usage: .venv/bin/python -m bench.overhead [--orders 50] [--dbs postgresql,sqlite]
"""

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.support import (
    BENCH_REDIS,
    BridgeEnv,
    Children,
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
    wait_http,
)

UNLIMITED = 1_000_000
FINAL = {"completed", "failed", "cancelled"}


def start_panel(kids: Children) -> tuple[str, str]:
    port = free_port()
    argv = [
        sys.executable, "-m", "bridge", "simulator", "--port", str(port),
        "--limit", str(UNLIMITED), "--ssl-delay", "0",
    ]  # fmt: skip
    proc = kids.start("simulator", argv, {**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/openapi.yaml", proc)
    with httpx.Client(base_url=base, timeout=10) as http:
        http.post(
            "/_sim/config", json={"license_max_users": -1, "license_max_domains": -1}
        ).raise_for_status()
        key: str = http.get("/_sim/credentials").json()["api_key"]
    return base, key


def floor_rtt(base: str, key: str, count: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        http.get("/api/v1/auth/me").raise_for_status()
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            http.get("/api/v1/auth/me").raise_for_status()
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
        base, key = start_panel(kids)
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
        rtt = floor_rtt(base, key, max(50, orders * 5))
        gaps, calls = _user_gaps(base)
    e2e = [_e2e_ms(o) for o in done]
    floor = percentile(rtt, 50)
    return {
        "db": db,
        "orders": len(done),
        "calls_per_order": calls,
        "end_to_end_ms": _stats(e2e, max_=True),
        "gap_ms": _stats(gaps),
        "floor_rtt_ms": _stats(rtt),
        "own_cost_per_call_ms": {
            "p50": round(percentile(gaps, 50) - floor, 2),
            "p99": round(percentile(gaps, 99) - floor, 2),
        },
    }


def _user_gaps(base: str) -> tuple[list[float], int]:
    """Orders run one at a time: split the log at each POST /users (a new order)."""
    log = httpx.get(base + "/_sim/requests", timeout=30).json()
    orders: list[list[datetime]] = []
    for entry in log:
        if entry["method"] == "POST" and entry["path"].rstrip("/") == "/users":
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
