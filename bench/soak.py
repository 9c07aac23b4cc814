"""Benchmark: memory of every bridge process over a soak of many orders.

An unlimited panel (`bridge simulator --limit 1000000 --ssl-delay 0`, no licence cap),
a fresh bridge database, `bridge api`, two `bridge worker` processes (default pool)
and `bridge beat`. A feeder posts signed creates (SSL and one mailbox) through the
API, keeping at most `--in-flight` unfinished; the resident memory (RSS, MB) of each
bridge process (with its pool children, if any) is sampled every `--sample-every`
completed orders. One JSON line per sample, then a summary line:

  {"completed", "seconds", "rss_mb": {"api": .., "worker-1": .., ...}}
  {"summary": true, "orders", "orders_per_s", "max_rss_mb",
   "growth_mb": {process: last sample - sample at `--from` orders}}

Usage: .venv/bin/python -m bench.soak [--orders 10000] [--db postgresql|sqlite]
"""

import sys
from pathlib import Path

# Runnable as a script (`python bench/<name>.py`), not only with `python -m`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any

import httpx
from sqlalchemy import func, select

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
    pg_url,
    register_server,
    signed_headers,
    sqlite_url,
    start_unlimited_panel,
    tree_rss_mb,
    wait_http,
)
from bridge.db.models import Order
from bridge.db.session import make_engine
from bridge.domain.states import OrderStatus


def feeder(port: int, orders: int, in_flight: int, progress: dict[str, int]) -> None:
    """Post `orders` creates, never more than `in_flight` ahead of completions."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
        for n in range(orders):
            while n - progress["completed"] >= in_flight:
                time.sleep(0.01)
            raw = create_body("k", n)
            response = api.post(
                "/v1/orders",
                content=raw,
                headers=signed_headers("POST", "/v1/orders", raw),
            )
            if response.status_code != 202:
                progress["errors"] += 1


def rss(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    return {
        name: round(sum(tree_rss_mb(proc).values()), 1) for name, proc in procs.items()
    }


def soak(args: argparse.Namespace, url: str, tmp: Path) -> list[dict[str, Any]]:
    fresh_bridge_database(url)
    flush_redis(BENCH_REDIS)
    # One unlimited panel: the per-server in-flight cap would be the bottleneck
    # (it exists for fleets); memory is what this measures.
    env = BridgeEnv(
        database_url=url,
        redis_url=BENCH_REDIS,
        var_dir=tmp / "var",
        extra=(("BRIDGE_SERVER_MAX_IN_FLIGHT", str(args.max_in_flight)),),
    )
    samples: list[dict[str, Any]] = []
    with children(tmp) as kids:
        base, key = start_unlimited_panel(kids)
        register_server(env, "panel", base, key, limit=UNLIMITED)
        port = free_port()
        procs = {"api": kids.bridge("api", ["api", "--port", str(port)], env)}
        for i in (1, 2):
            procs[f"worker-{i}"] = kids.bridge(
                f"worker-{i}",
                ["worker", "--processes", "1", "--without-mingle", "-n", f"w{i}@%h"],
                env,
            )
        procs["beat"] = kids.bridge("beat", ["beat"], env)
        wait_http(f"http://127.0.0.1:{port}/healthz", procs["api"])
        progress = {"completed": 0, "errors": 0}
        feed = threading.Thread(
            target=feeder,
            args=(port, args.orders, args.in_flight, progress),
            daemon=True,
        )
        engine = make_engine(url)
        started = time.monotonic()
        feed.start()
        next_sample = args.sample_every
        try:
            while progress["completed"] < args.orders:
                time.sleep(0.5)
                with engine.connect() as conn:
                    progress["completed"] = conn.execute(
                        select(func.count()).where(
                            Order.status == OrderStatus.COMPLETED
                        )
                    ).scalar_one()
                dead = [n for n, p in procs.items() if p.poll() is not None]
                if dead:
                    msg = f"{dead} exited during the soak (logs in {tmp})"
                    raise RuntimeError(msg)
                if time.monotonic() - started > args.timeout:
                    msg = f"only {progress['completed']} done after {args.timeout} s"
                    raise RuntimeError(msg)
                while progress["completed"] >= next_sample:
                    sample = {
                        "completed": next_sample,
                        "seconds": round(time.monotonic() - started, 1),
                        "rss_mb": rss(procs),
                    }
                    print(json.dumps(sample), flush=True)
                    samples.append(sample)
                    next_sample += args.sample_every
        finally:
            engine.dispose()
        feed.join(timeout=30)
        if progress["errors"]:
            msg = f"{progress['errors']} posts were not accepted"
            raise RuntimeError(msg)
    return samples


def summary(
    samples: list[dict[str, Any]], orders: int, start_at: int
) -> dict[str, Any]:
    first = next((s for s in samples if s["completed"] >= start_at), samples[0])
    last = samples[-1]
    return {
        "summary": True,
        "orders": orders,
        "orders_per_s": round(orders / max(last["seconds"], 0.001), 1),
        "max_rss_mb": max(v for s in samples for v in s["rss_mb"].values()),
        "growth_mb": {
            name: round(last["rss_mb"][name] - first["rss_mb"][name], 1)
            for name in last["rss_mb"]
        },
        "growth_from": first["completed"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--sample-every", type=int, default=1000)
    parser.add_argument("--from", dest="start_at", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=200, help="unfinished")
    parser.add_argument("--max-in-flight", type=int, default=64, help="panel calls")
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--smoke", action="store_true", help="20 orders")
    args = parser.parse_args(argv)
    if args.smoke:
        args.orders, args.sample_every, args.start_at = 20, 10, 10
    print(json.dumps({"machine": machine()}), file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    url = pg_url("soak") if args.db == "postgresql" else sqlite_url(tmp, "soak")
    samples = soak(args, url, tmp)
    print(json.dumps(summary(samples, args.orders, args.start_at)), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
