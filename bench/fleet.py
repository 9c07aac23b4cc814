"""Benchmark: fleet throughput against panel budgets; isolation from a bad panel.

The simulator (`bridge simulator --panels N`, its own process) serves N panels with a
sliding window of `--limit` requests/min each, certificates issued at once and no
licence cap. A fresh PostgreSQL database gets N servers (limit `--limit`) and a backlog
of create orders (user, domain, SSL, one mailbox) spread evenly over them, submitted
before any worker starts. Then `bridge worker` (the default deployment unless --pool /
--concurrency say otherwise) and `bridge beat` run for `--warmup` + `--seconds`; panel
calls are counted from each panel's request log inside the measured window.

Cases: `healthy` (all panels fine) and `faulty` (panel N-1 answers every call 3 s late,
panel N fails 50 % of its writes with a 500). One JSON line per case and repeat:

  {"case", "pool", "concurrency", "panels", "seconds", "calls_per_min",
   "limit_sum_per_min", "utilization", "calls_429", "worker_cpu_ms_per_call",
   "slowest_share",
   "healthy_panels", "healthy_calls_per_min", "healthy_latency_p50_s",
   "healthy_latency_p90_s", "healthy_orders_completed", "startup_s",
   "healthy_latency_since_first_p50_s", "healthy_latency_since_first_p90_s",
   "slow_panel_share",
   "failing_panel_share", "min_backlog_left", "call_gap_s"}

utilization = calls/min over all panels / sum of limits; slowest_share = the lowest
share of its own budget among the healthy panels; healthy_* = panels 1..N-2 (all N in
the healthy case; the faulty case compares the same 1..N-2 against it).
Order latency = finished_at - created_at of the healthy panels' orders completed in
the window (the whole backlog is submitted at once, so it includes queueing: equal
throughput gives equal latency; a stalled panel shows as longer latency).
startup_s = from spawning the workers to the first completed order; the
*_since_first latencies count from that moment (max(created_at, it)), so the
cases compare without the start-up's run-to-run variation.

Usage: .venv/bin/python -m bench.fleet [--cases healthy,faulty] [--repeat 2]
       [--pool threads|prefork] [--concurrency C] [--processes N] [--smoke]
"""

import sys
from pathlib import Path

# Runnable as a script (`python bench/<name>.py`), not only with `python -m`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import itertools
import json
import math
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.support import (
    BENCH_REDIS,
    INTAKE_DIGEST_KEY,
    BridgeEnv,
    Children,
    children,
    cpu_seconds,
    flush_redis,
    fresh_bridge_database,
    machine,
    percentile,
    pg_url,
    register_server,
    start_simulator,
)
from bridge.api.schemas import CreateOrderIn, to_spec
from bridge.cli.supervise import worker_processes
from bridge.container import Services, build_services
from bridge.db.models import Order, Server
from bridge.domain.states import OrderStatus
from bridge.intake import accept_order
from bridge.logging import configure_logging
from bridge.settings import Settings

DATABASE = pg_url("fleet")
# user, domain, SSL issue, mailbox (certificates are issued at once: no status
# poll). The backlog is sized for twice the window at full budget: a panel that
# runs dry before the window ends would read as unused budget
# (`min_backlog_left` in the output shows it did not).
CALLS_PER_ORDER = 4
SLOW_MS = 3000
FAIL_RATE = 0.5


def no_broker(task_name: str, *args: str) -> bool:
    """For read-only Services: nothing to send."""
    del task_name, args
    return False


def start_panels(kids: Children, panels: int, limit: int) -> tuple[str, list[str]]:
    names = [f"p{i}" for i in range(1, panels + 1)]
    flags = ["--panels", str(panels), "--limit", str(limit), "--window", "sliding"]
    return start_simulator(kids, flags, names), names


def panel_keys(base: str, names: list[str]) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=10) as http:
        return {
            n: http.get(f"/p/{n}/_sim/credentials").json()["api_key"] for n in names
        }


def submit_backlog(env: BridgeEnv, names: list[str], per_panel: int) -> None:
    settings = Settings(
        database_url=env.database_url,
        redis_url=env.redis_url,
        secret_key=env.secret_key,
        intake_digest_key=INTAKE_DIGEST_KEY,
        log_level="WARNING",
    )
    configure_logging(settings)
    # As billing's burst would: each order enqueued after its commit (intake stamps
    # enqueued_at, so the dispatcher would otherwise wait a lease period first).
    services = build_services(settings)
    try:
        for n in range(per_panel * len(names)):
            body = CreateOrderIn(
                order_id=f"fleet-{n}",
                service_id=f"svc-{n}",
                action="create",
                account={
                    "username": f"u{n}",
                    "email": f"u{n}@example.com",
                    "password": "correct-horse-battery",
                    "package": "default",
                },
                domain=f"s{n}.example",
                ssl=True,
                mailboxes=[
                    {"local_part": "info", "password": "mailbox-pass", "quota_mb": 10}
                ],
                server=names[n % len(names)],
            )
            accept_order(services, to_spec(body), body_sha256=f"{n:064x}")
    finally:
        services.close()


# Where to keep each panel's request log (a diagnosis aid, off by default).
DUMP_DIR = os.environ.get("BRIDGE_BENCH_DUMP_DIR", "")


def calls_in_window(
    base: str, names: list[str], start: datetime, end: datetime
) -> tuple[dict[str, dict[str, int]], list[float]]:
    """Calls and 429s per panel in the window, and the gaps between calls (s).

    The gaps say where unused budget goes: at 60/min a panel is fully used when
    its calls are 1 s apart; every gap above that is a token nobody took in time.
    """
    out: dict[str, dict[str, int]] = {}
    gaps: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for name in names:
            counted = {"calls": 0, "429": 0}
            times: list[datetime] = []
            log = http.get(f"/p/{name}/_sim/requests").json()
            if DUMP_DIR:
                Path(DUMP_DIR, f"{name}.json").write_text(json.dumps(log))
            for entry in log:
                at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
                if start <= at < end:
                    key = "429" if entry["status"] == 429 else "calls"
                    counted[key] += 1
                    times.append(at)
            out[name] = counted
            times.sort()
            gaps += [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    return out, gaps


def _services(env: BridgeEnv) -> Services:
    settings = Settings(
        database_url=env.database_url,
        redis_url=env.redis_url,
        secret_key=env.secret_key,
        intake_digest_key=INTAKE_DIGEST_KEY,
    )
    return build_services(settings, enqueue=no_broker)


def backlog_left(env: BridgeEnv) -> dict[str, int]:
    """Orders not finished yet, per panel (taken the moment the window ends)."""
    services = _services(env)
    try:
        with services.sessions() as session:
            rows = session.execute(
                select(Server.name, func.count())
                .join(Order, Order.server_id == Server.id)
                .where(Order.finished_at.is_(None))
                .group_by(Server.name)
            ).all()
    finally:
        services.close()
    return {str(name): int(count) for name, count in rows}


def completed_in_window(
    env: BridgeEnv, healthy: list[str], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """(created_at, finished_at) of the healthy panels' orders completed in the
    window."""
    services = _services(env)
    try:
        with services.sessions() as session:
            rows = session.execute(
                select(Order.created_at, Order.finished_at)
                .join(Server, Order.server_id == Server.id)
                .where(
                    Server.name.in_(healthy),
                    Order.status == OrderStatus.COMPLETED,
                    Order.finished_at >= start,
                    Order.finished_at < end,
                )
            ).all()
    finally:
        services.close()
    return [(c, f) for c, f in rows if f is not None]


def latencies(
    completed: list[tuple[datetime, datetime]], origin: datetime | None = None
) -> list[float]:
    """finished_at - created_at; with `origin`, from max(created_at, origin)."""
    return [
        (f - (c if origin is None else max(c, origin))).total_seconds()
        for c, f in completed
    ]


def wait_first_completion(env: BridgeEnv, timeout: float = 120) -> None:
    services = _services(env)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with services.sessions() as session:
                done = session.scalars(
                    select(Order.id).where(Order.status == OrderStatus.COMPLETED)
                ).first()
            if done is not None:
                return
            time.sleep(0.2)
    finally:
        services.close()
    msg = f"no order completed within {timeout} s (see the worker log)"
    raise RuntimeError(msg)


def run_case(args: argparse.Namespace, case: str, tmp: Path) -> dict[str, Any]:
    fresh_bridge_database(DATABASE)
    flush_redis(BENCH_REDIS)
    env = BridgeEnv(
        database_url=DATABASE,
        redis_url=BENCH_REDIS,
        var_dir=tmp / "var",
        # Provisioning throughput alone (issue 13: the fleet bench runs with usage
        # off): beat schedules no usage collection to share the panels' budgets.
        extra=(("BRIDGE_USAGE_ENABLED", "false"),),
    )
    per_panel = args.orders_per_panel or math.ceil(
        (args.warmup + args.seconds) / 60 * args.limit / CALLS_PER_ORDER * 2
    )
    with children(tmp) as kids:
        base, names = start_panels(kids, args.panels, args.limit)
        for name, key in panel_keys(base, names).items():
            register_server(env, name, f"{base}/p/{name}", key, limit=args.limit)
        healthy = names[:-2] if case == "faulty" else names
        if case == "faulty":
            with httpx.Client(base_url=base, timeout=10) as http:
                http.post(f"/p/{names[-2]}/_sim/faults", json={"latency_ms": SLOW_MS})
                http.post(f"/p/{names[-1]}/_sim/faults", json={"error_rate": FAIL_RATE})
        submit_backlog(env, names, per_panel)
        worker = ["worker"]
        if args.pool:
            worker += ["--pool", args.pool]
        if args.concurrency:
            worker += ["--concurrency", str(args.concurrency)]
        if args.processes:
            worker += ["--processes", str(args.processes)]
        spawned = datetime.now(UTC)
        worker_proc = kids.bridge("worker", [*worker, "--without-mingle"], env)
        kids.bridge("beat", ["beat"], env)
        wait_first_completion(env)  # worker start-up is not part of the window
        first_done = datetime.now(UTC)
        time.sleep(args.warmup)
        start = datetime.now(UTC)
        cpu_before = cpu_seconds(worker_proc)
        time.sleep(args.seconds)
        end = datetime.now(UTC)
        worker_cpu = cpu_seconds(worker_proc) - cpu_before
        left = backlog_left(env)
        counts, gaps = calls_in_window(base, names, start, end)
        compared = names[:-2] if len(names) > 2 else names
        completed = completed_in_window(env, compared, start, end)
        lat = latencies(completed)
        since_first = latencies(completed, origin=first_done)
    minutes = (end - start) / timedelta(minutes=1)
    per_min = {n: c["calls"] / minutes for n, c in counts.items()}
    total = sum(per_min.values())
    return {
        "case": case,
        "pool": args.pool or "default",
        "concurrency": args.concurrency,
        "processes": worker_processes(args.processes, args.pool or "threads"),
        "panels": args.panels,
        "orders_per_panel": per_panel,
        "seconds": round((end - start).total_seconds(), 1),
        "calls_per_min": round(total, 1),
        "limit_sum_per_min": args.limit * args.panels,
        "utilization": round(total / (args.limit * args.panels), 4),
        "calls_429": sum(c["429"] for c in counts.values()),
        # Worker CPU (every process) per panel call in the window: what the
        # engine spends around each call, refusals included.
        "worker_cpu_ms_per_call": round(
            1000 * worker_cpu / max(1, sum(c["calls"] for c in counts.values())), 2
        ),
        "slowest_share": round(min(per_min[n] for n in healthy) / args.limit, 4),
        "healthy_panels": len(compared),
        "healthy_calls_per_min": round(sum(per_min[n] for n in compared), 1),
        "healthy_latency_p50_s": round(percentile(lat, 50), 2),
        "healthy_latency_p90_s": round(percentile(lat, 90), 2),
        "healthy_orders_completed": len(lat),
        # The backlog waits while the worker processes start (their imports,
        # the first lease): that start-up varies by seconds from run to run and
        # is in every order's latency above. The same latencies counted from the
        # first completion compare the cases without it.
        "startup_s": round((first_done - spawned).total_seconds(), 2),
        "healthy_latency_since_first_p50_s": round(percentile(since_first, 50), 2),
        "healthy_latency_since_first_p90_s": round(percentile(since_first, 90), 2),
        # The bad panels' own share of their budgets (faulty case): how well the
        # slow one is served beside the others, not only how well they are kept.
        "slow_panel_share": (
            round(per_min[names[-2]] / args.limit, 4) if case == "faulty" else None
        ),
        "failing_panel_share": (
            round(per_min[names[-1]] / args.limit, 4) if case == "faulty" else None
        ),
        "min_backlog_left": min(left.get(n, 0) for n in names),
        "call_gap_s": {
            "p50": round(percentile(gaps, 50), 3),
            "p90": round(percentile(gaps, 90), 3),
            "p99": round(percentile(gaps, 99), 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=20)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--orders-per-panel", type=int, default=None)
    parser.add_argument("--cases", default="healthy,faulty")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--pool", choices=["threads", "prefork"], default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument(
        "--processes", type=int, default=None, help="bridge worker --processes"
    )
    parser.add_argument("--smoke", action="store_true", help="3 panels, a few s")
    parser.add_argument("--keep", action="store_true", help="keep logs (tmp dir)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.panels, args.seconds, args.warmup, args.orders_per_panel = 3, 3, 2, 2
    print(json.dumps({"machine": machine()}), file=sys.stderr)
    for _ in range(args.repeat):
        for case in args.cases.split(","):
            tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
            print(json.dumps({"logs": str(tmp)}), file=sys.stderr)
            print(json.dumps(run_case(args, case, tmp)), flush=True)
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
