"""Benchmark: intake throughput and latency of `bridge api` against a floor baseline.

For each database (PostgreSQL, SQLite) and in the same run: the floor app
(bench/intake_floor.py: same HMAC check, one INSERT through SQLAlchemy) and then
`bridge api` (1 worker, and more with --api-workers 1,2), each on a fresh database
(bridge: migrated, one registered server, fresh Redis db 4, so each order is placed
and enqueued to the broker as in production). Orders: signed creates with SSL and a
mailbox, unique order ids, pre-signed just before each phase. Load: wrk (Debian) with
bench/intake.lua, one thread (a fraction of a core), two phases per target:

  saturated  `--connections` closed-loop connections: orders/s, p50/p90/p99
  paced      `--paced-connections` connections with a think time so the offered rate
             is `--paced-share` of the floor's saturated rate on that database: the
             latency at a throughput the floor serves comfortably

One JSON line per target:
  {"target", "db", "api_workers", "saturated": {"orders_per_s", "p50_ms", "p90_ms",
   "p99_ms", "non2xx", "socket_errors"}, "paced": {...}, "rows", "ratio"}
ratio = bridge saturated orders/s / floor saturated orders/s on the same database.
--floor-stages insert,validated,published,rows also measures the floor plus the
bridge's body validation, then plus its after-commit publish, then writing the
design's rows instead of one (bench/intake_floor.py): the ceiling those mandatory
parts set on the ratio, printed as target "floor+<stage>" with its ratio to the floor.
--profile FILE also records the saturated phase of bridge api (1 worker, PostgreSQL)
with py-spy (every thread; collapsed stacks).

Usage: .venv/bin/python -m bench.intake [--seconds 10] [--api-workers 1,2]
       [--floor-stages insert,validated,published,rows] [--smoke]
"""

import sys
from pathlib import Path

# Runnable as a script (`python bench/<name>.py`), not only with `python -m`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from bench.support import (
    BENCH_REDIS,
    INTAKE_SECRET,
    BridgeEnv,
    Children,
    children,
    cpu_seconds,
    create_body,
    flush_redis,
    free_port,
    fresh_bridge_database,
    machine,
    pg_url,
    recreate_database,
    register_server,
    sign,
    sqlite_url,
    wait_http,
)
from bridge.db.session import make_engine
from bridge.queue import broker_url

LUA = Path(__file__).with_name("intake.lua")
MAX_RATE = 2500  # orders/s a request file is sized for (more shows as non2xx)


@dataclass(frozen=True)
class Load:
    seconds: float
    connections: int
    think_ms: int = 0


@dataclass
class Run:
    tmp: Path
    seconds: float
    connections: int
    paced_connections: int
    paced_share: float
    tags: int = 0

    def tag(self) -> str:
        """A short unique lowercase tag per phase (usernames are [a-z][a-z0-9]*)."""
        self.tags += 1
        n, out = self.tags, ""
        while n:
            n, r = divmod(n, 26)
            out += chr(ord("a") + r)
        return out


def write_requests(path: Path, tag: str, count: int) -> None:
    now = int(time.time())
    with path.open("w") as f:
        for n in range(count):
            body = create_body(tag, n)
            f.write(f"{now}\t{sign('POST', '/v1/orders', body, now)}\t")
            f.write(body.decode())
            f.write("\n")


def wrk(run: Run, port: int, load: Load) -> dict[str, Any]:
    requests = run.tmp / "requests.tsv"
    expected = load.seconds * (
        MAX_RATE if not load.think_ms else load.connections * 1000 / load.think_ms
    )
    write_requests(requests, run.tag(), int(expected * 1.2) + 200)
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests),
        "BENCH_THINK_MS": str(load.think_ms),
    }
    argv = [
        "wrk", "-t1", f"-c{load.connections}", f"-d{max(1, round(load.seconds))}s",
        "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    raw = json.loads(line.removeprefix("BENCH "))
    seconds = raw["duration_us"] / 1e6
    return {
        "orders_per_s": round((raw["requests"] - raw["non2xx"]) / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p90_ms": round(raw["p90_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "connections": load.connections,
        "non2xx": raw["non2xx"],
        "socket_errors": raw["socket_errors"],
    }


def phases(
    run: Run, port: int, paced_rate: float | None, proc: subprocess.Popen[bytes]
) -> dict[str, Any]:
    wrk(run, port, Load(1, 4))  # warm-up: pools, caches, first SQLite pages
    before = cpu_seconds(proc)
    saturated = wrk(run, port, Load(run.seconds, run.connections))
    orders = saturated["orders_per_s"] * run.seconds
    # Server CPU per order: less noisy than rates on a shared 2-core machine.
    saturated["server_cpu_ms_per_order"] = round(
        (cpu_seconds(proc) - before) * 1000 / max(orders, 1), 2
    )
    result = {"saturated": saturated}
    rate = paced_rate or run.paced_share * result["saturated"]["orders_per_s"]
    think = max(1, round(run.paced_connections * 1000 / max(rate, 1)))
    result["paced"] = {
        "offered_per_s": round(run.paced_connections * 1000 / think, 1),
        **wrk(run, port, Load(run.seconds, run.paced_connections, think)),
    }
    return result


def count_rows(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608 - fixed names
    finally:
        engine.dispose()


def floor_target(
    run: Run, kids: Children, url: str, stage: str = "insert"
) -> dict[str, Any]:
    recreate_database(url)
    flush_redis(BENCH_REDIS)
    port = free_port()
    argv = [
        sys.executable, "-m", "bench.intake_floor", "--database-url", url,
        "--port", str(port), "--secret", INTAKE_SECRET, "--stage", stage,
        "--broker-url", broker_url(BENCH_REDIS),
    ]  # fmt: skip
    proc = kids.start(f"floor-{stage}", argv, {**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        result = phases(run, port, None, proc)
    finally:
        kids.stop(proc)
    table = "floor_plan_orders" if stage == "rows" else "floor_orders"
    return {**result, "rows": count_rows(url, table)}


def py_spy(
    proc: subprocess.Popen[bytes], output: Path, seconds: float
) -> subprocess.Popen[bytes]:
    """Sample every thread of `proc` (and its children) into collapsed stacks."""
    argv = [
        str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
        str(proc.pid), "--subprocesses", "--format", "raw", "--rate", "200", "--gil",
        "--duration", str(round(seconds)), "--output", str(output), "--nonblocking",
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bridge_target(  # noqa: PLR0917 - one benchmark case's knobs
    run: Run,
    kids: Children,
    url: str,
    workers: int,
    paced_rate: float,
    profile: Path | None,
) -> dict[str, Any]:
    fresh_bridge_database(url)
    flush_redis(BENCH_REDIS)
    metrics_dir = run.tmp / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    env = BridgeEnv(
        database_url=url,
        redis_url=BENCH_REDIS,
        var_dir=run.tmp / "var",
        extra=(("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir)),),
    )
    # Never contacted: no worker runs here; the order is placed and enqueued.
    register_server(env, "panel-1", "http://127.0.0.1:9", "wsp_bench", limit=60)
    port = free_port()
    args = ["api", "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    proc = kids.bridge(f"api-{workers}", args, env)
    spy: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        if profile is not None:
            spy = py_spy(proc, profile, run.seconds + 2)
        result = phases(run, port, paced_rate, proc)
    finally:
        if spy is not None:
            spy.wait(timeout=120)
        kids.stop(proc)
    return {**result, "rows": count_rows(url, "orders")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--paced-connections", type=int, default=8)
    parser.add_argument("--paced-share", type=float, default=0.5)
    parser.add_argument("--dbs", default="postgresql,sqlite")
    parser.add_argument("--api-workers", default="1")
    parser.add_argument(
        "--floor-stages",
        default="insert",
        help="also measure the floor plus validation / plus publish (ceilings)",
    )
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="1 s phases, 2 conns")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.connections, args.paced_connections = 1.0, 2, 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    run = Run(
        tmp, args.seconds, args.connections, args.paced_connections, args.paced_share
    )
    print(json.dumps({"machine": machine()}), file=sys.stderr)
    with children(tmp) as kids:
        for db in args.dbs.split(","):
            floor_url = (
                pg_url("intake_floor")
                if db == "postgresql"
                else sqlite_url(tmp, "floor")
            )
            floor = floor_target(run, kids, floor_url)
            print(json.dumps({"target": "floor", "db": db, **floor}), flush=True)
            for stage in args.floor_stages.split(","):
                if stage == "insert":
                    continue
                ceiling = floor_target(run, kids, floor_url, stage)
                share = (
                    ceiling["saturated"]["orders_per_s"]
                    / floor["saturated"]["orders_per_s"]
                )
                line = {"target": f"floor+{stage}", "db": db}
                line.update(ceiling, ratio=round(share, 3))
                print(json.dumps(line), flush=True)
            for workers in (int(w) for w in args.api_workers.split(",")):
                url = (
                    pg_url("intake")
                    if db == "postgresql"
                    else sqlite_url(tmp, "bridge")
                )
                profile = args.profile if db == "postgresql" and workers == 1 else None
                paced_rate = floor["paced"]["offered_per_s"]
                bridge = bridge_target(run, kids, url, workers, paced_rate, profile)
                ratio = (
                    bridge["saturated"]["orders_per_s"]
                    / floor["saturated"]["orders_per_s"]
                )
                line = {"target": "bridge", "db": db, "api_workers": workers}
                line.update(bridge, ratio=round(ratio, 3))
                print(json.dumps(line), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
