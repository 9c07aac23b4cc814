"""Benchmark: how much of a panel's budget the shared bucket uses, and 429s it causes.

Runs the simulator (N panels, fixed or sliding window, limit L/min) in this process
and C caller processes that each hold a real PanelClient per panel, all sharing one
RedisRateLimiter per credential (Redis db 9 unless --redis-url names one, flushed
before each case). A caller loops on a cheap GET (auth/me); when the bucket says no
it sleeps `retry_after` (a benchmark caller may sleep; a worker never does). One
JSON line per case:

    {"panels", "window", "limit_per_min", "calls_ok", "calls_429", "utilization"}

utilization = successful calls / (L * N * seconds / 60), the calls the panel allows
in the measured time at its sustained rate. Without flags: the six cases of issue 4.
"""

import argparse
import json
import math
import multiprocessing
import os
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from bridge.domain.model import AuthMode
from bridge.errors import RateLimitedError
from bridge.panel import PanelClient, PanelConfig, PanelError, PanelThrottledError
from bridge.panel.client import PanelTimeouts
from bridge.ratelimit import RedisRateLimiter
from bridge.simulator import SimulatorConfig, SimulatorServer

BENCH_REDIS_DB = 9
DEFAULT_CASES = (
    (1, "fixed", 600),
    (1, "sliding", 600),
    (5, "fixed", 600),
    (5, "sliding", 600),
    (20, "fixed", 300),
    (20, "sliding", 300),
)
TIMEOUTS = PanelTimeouts(connect=5.0, read=10.0, write=10.0, pool=5.0)


@dataclass(frozen=True)
class Panel:
    name: str
    url: str
    api_key: str


@dataclass(frozen=True)
class Job:
    panels: tuple[Panel, ...]
    limit: int
    redis_url: str
    seconds: float


def bench_redis_url(url: str) -> str:
    """The Redis index the bench flushes and uses: the URL's own, else db 9.

    An explicit index is honoured so the test suite's smoke run stays on its
    worker's index (tests/bench/test_bench_smoke.py) and never flushes db 9 under
    a benchmark running beside it.
    """
    parts = urlsplit(url)
    if parts.path.strip("/"):
        return url
    return urlunsplit(parts._replace(path=f"/{BENCH_REDIS_DB}"))


def caller(
    job: Job, ready: "multiprocessing.Queue[Any]", go: Event, start_at: Any
) -> None:
    """One caller process: round-robin over the panels as their budget allows."""
    conn = redis.Redis.from_url(job.redis_url)
    limiter = RedisRateLimiter(conn)
    clients = {
        p.name: PanelClient(
            PanelConfig(
                name=p.name,
                base_url=p.url,
                auth_mode=AuthMode.API_KEY,
                api_key=p.api_key,
                rate_limit_per_min=job.limit,
            ),
            redis=conn,
            limiter=limiter,
            timeouts=TIMEOUTS,
            host_id=socket.gethostname(),
            token_ttl=3600,
        )
        for p in job.panels
    }
    ready.put(os.getpid())
    go.wait()
    start = start_at.value
    end = start + job.seconds
    counts = {"ok": 0, "throttled": 0, "errors": 0, "denied": 0}
    due = dict.fromkeys(clients, start)
    while True:
        name = min(due, key=due.__getitem__)
        now = time.time()
        if now >= end:
            break
        if due[name] > now:
            time.sleep(min(due[name], end) - now)
            continue
        try:
            clients[name].request("auth_me")
        except RateLimitedError as exc:
            counts["denied"] += 1
            due[name] = time.time() + exc.retry_after
        except PanelThrottledError as exc:
            counts["throttled"] += 1
            due[name] = time.time() + exc.retry_after
        except PanelError:
            counts["errors"] += 1
            due[name] = time.time() + 0.1
        else:
            counts["ok"] += 1
    for client in clients.values():
        client.close()
    conn.close()
    ready.put(counts)


@dataclass(frozen=True)
class Case:
    panels: int
    window: str
    limit: int
    seconds: float
    callers: int


def run_case(case: Case, redis_url: str) -> dict[str, Any]:
    """Run one case; print a detail line on stderr and return the JSON result."""
    panels, window, limit = case.panels, case.window, case.limit
    seconds, callers = case.seconds, case.callers
    url = bench_redis_url(redis_url)
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    config = SimulatorConfig(limit=limit, window=window)  # type: ignore[arg-type]
    ctx = multiprocessing.get_context("spawn")
    with SimulatorServer(config, panels=panels, host="127.0.0.1", port=0) as sim:
        targets = tuple(
            Panel(n, sim.panel_url(n), sim.credentials(n).api_key)
            for n in sim.panel_names
        )
        job = Job(targets, limit, url, seconds)
        ready: multiprocessing.Queue[Any] = ctx.Queue()
        go = ctx.Event()
        start_at = ctx.Value("d", 0.0)
        procs = [
            ctx.Process(target=caller, args=(job, ready, go, start_at))
            for _ in range(callers)
        ]
        for proc in procs:
            proc.start()
        for _ in procs:
            ready.get(timeout=120)
        start_at.value = time.time() + 0.5
        go.set()
        totals = {"ok": 0, "throttled": 0, "errors": 0, "denied": 0}
        for _ in procs:
            for k, v in ready.get(timeout=seconds + 120).items():
                totals[k] += v
        for proc in procs:
            proc.join()
        seen_429 = sum(
            1
            for n in sim.panel_names
            for r in _sim_requests(sim.panel_url(n))
            if r["status"] == 429
        )
    conn.flushdb()
    conn.close()
    allowed = limit * panels * seconds / 60
    print(
        f"# {panels} panel(s) {window} {limit}/min {seconds:g}s callers={callers}: "
        f"ok={totals['ok']} denied_by_bucket={totals['denied']} "
        f"429_client={totals['throttled']} 429_panel_log={seen_429} "
        f"other_errors={totals['errors']}",
        file=sys.stderr,
    )
    return {
        "panels": panels,
        "window": window,
        "limit_per_min": limit,
        "calls_ok": totals["ok"],
        "calls_429": max(totals["throttled"], seen_429),
        "utilization": round(totals["ok"] / allowed, 4),
    }


def _sim_requests(panel_url: str) -> list[dict[str, Any]]:
    import httpx

    with httpx.Client(timeout=30) as http:
        response = http.get(panel_url + "/_sim/requests")
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()
        return data


def default_callers(panels: int, limit: int) -> int:
    # Enough processes that a due slot always finds an idle caller: the expected
    # number of calls in flight (rate x ~50 ms latency here) times three, 2..8.
    in_flight = panels * limit / 60 * 0.05
    return max(2, min(8, math.ceil(3 * in_flight)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int)
    parser.add_argument("--window", choices=["fixed", "sliding"])
    parser.add_argument("--limit", type=int, help="requests per minute per panel")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--callers", type=int, help="caller processes (default: sized)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BRIDGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
        help="Redis server and db index (9 when the URL names none); it is flushed",
    )
    args = parser.parse_args(argv)
    if args.panels or args.window or args.limit:
        panels = args.panels or 1
        cases = [
            (panels, args.window or "fixed", args.limit or (300 if panels > 5 else 600))
        ]
    else:
        cases = list(DEFAULT_CASES)
    for panels, window, limit in cases:
        callers = args.callers or default_callers(panels, limit)
        case = Case(panels, window, limit, args.seconds, callers)
        result = run_case(case, args.redis_url)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
