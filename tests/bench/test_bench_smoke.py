"""Every benchmark starts and prints its JSON (tiny sizes; no timing assertions).

Each runs as `python -m bench.<name> --smoke` in a subprocess, with its databases on
the suite's PostgreSQL server (names prefixed by the suite's database name) and its
Redis data on the suite's Redis index, so parallel suites do not collide. The
benches' processes run without coverage: these runs check shape, the rest of the
suite measures the code, and tracing every bridge process a bench starts cost a
minute and a half of the suite's ten.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.infra import suite_database_url, suite_redis_url, untraced_environ

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def bench_env() -> dict[str, str]:
    url = make_url(suite_database_url())
    if url.get_backend_name() != "postgresql":
        pytest.fail("the benchmark smoke runs need BRIDGE_TEST_DATABASE_URL on PG")
    server = url.set(database="").render_as_string(hide_password=False)
    return {
        **untraced_environ("BRIDGE_"),
        "BRIDGE_BENCH_PG_URL": server.rstrip("/") + "/",
        "BRIDGE_BENCH_DB_PREFIX": f"{url.database}_bench_",
        "BRIDGE_BENCH_REDIS_URL": suite_redis_url(),
    }


def run_bench(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def numbers(mapping: dict[str, Any], *keys: str) -> None:
    for key in keys:
        assert isinstance(mapping[key], int | float), (key, mapping)


@pytest.mark.timeout(300)
def test_intake_bench_compares_bridge_to_the_floor_on_both_databases() -> None:
    lines = run_bench("bench.intake", "--smoke", "--floor-stages", "insert,rows")
    targets = [(line["target"], line["db"]) for line in lines]
    assert targets == [
        (target, db)
        for db in ("postgresql", "sqlite")
        for target in ("floor", "floor+rows", "bridge")
    ]
    for line in lines:
        for phase in ("saturated", "paced"):
            numbers(line[phase], "orders_per_s", "p50_ms", "p99_ms", "non2xx")
            assert line[phase]["non2xx"] == 0
        assert line["rows"] > 0  # every accepted order is a row
    for compared in (line for line in lines if line["target"] != "floor"):
        numbers(compared, "ratio")
        assert compared["ratio"] > 0


@pytest.mark.timeout(300)
def test_fleet_bench_reports_budget_use_and_the_healthy_panels() -> None:
    (line,) = run_bench("bench.fleet", "--smoke", "--cases", "faulty")
    assert line["case"] == "faulty"
    assert line["panels"] == 3
    assert line["healthy_panels"] == 1
    numbers(
        line,
        "calls_per_min",
        "utilization",
        "calls_429",
        "worker_cpu_ms_per_call",
        "slowest_share",
        "healthy_calls_per_min",
        "healthy_latency_p50_s",
        "healthy_latency_since_first_p50_s",
        "startup_s",
    )
    assert line["limit_sum_per_min"] == 3 * 60
    # Counted from the first completion, no order waited longer than in total.
    assert line["healthy_latency_since_first_p50_s"] <= line["healthy_latency_p50_s"]
    assert line["worker_cpu_ms_per_call"] > 0  # the worker did work in the window


@pytest.mark.timeout(300)
def test_overhead_bench_measures_calls_and_end_to_end_on_both_databases() -> None:
    lines = run_bench("bench.overhead", "--smoke")
    assert [line["db"] for line in lines] == ["postgresql", "sqlite"]
    for line in lines:
        assert line["orders"] == 3
        # user, domain, SSL issue (+ status read), two mailboxes
        assert line["calls_per_order"] >= 5
        numbers(line["end_to_end_ms"], "p50", "p99", "max")
        numbers(line["own_cost_per_call_ms"], "p50", "p99")


@pytest.mark.timeout(300)
def test_soak_bench_samples_every_process() -> None:
    *samples, summary = run_bench("bench.soak", "--smoke")
    assert [s["completed"] for s in samples] == [10, 20]
    for sample in samples:
        assert set(sample["rss_mb"]) == {"api", "worker-1", "worker-2", "beat"}
        assert all(v > 0 for v in sample["rss_mb"].values())
    assert summary["summary"] is True
    assert summary["orders"] == 20
    assert set(summary["growth_mb"]) == {"api", "worker-1", "worker-2", "beat"}


@pytest.mark.timeout(120)
def test_sweeps_bench_starts_and_reports() -> None:
    url = make_url(suite_database_url())
    target = url.set(database=f"{url.database}_bench_sweeps")
    (line,) = run_bench(
        "bench.sweeps",
        "--services",
        "2000",
        "--database-url",
        target.render_as_string(hide_password=False),
    )
    assert line["services"] == 2000
    assert line["candidates"] == line["orders_created"] > 0
    assert line["index_used"] is True


@pytest.mark.timeout(120)
def test_ratelimit_bench_runs_a_short_case() -> None:
    (line,) = run_bench(
        "bench.ratelimit",
        "--panels", "1", "--window", "sliding", "--limit", "600",
        "--seconds", "2", "--callers", "1",
    )  # fmt: skip
    assert line["panels"] == 1
    assert line["calls_ok"] > 0
    numbers(line, "calls_429", "utilization")
