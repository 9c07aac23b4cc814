"""The chaos run at smoke size (~100 orders) in the suite: bench/chaos.py as a
subprocess (its own API, workers, beat and simulator), judged by its JSON verdict."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.infra import suite_database_url, suite_redis_url, untraced_environ

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def chaos_database_url() -> str:
    """The suite's PostgreSQL server, the run's own database beside the suite's."""
    url = make_url(suite_database_url())
    return url.set(database=f"{url.database}_chaos").render_as_string(
        hide_password=False
    )


@pytest.mark.timeout(420)
def test_smoke_chaos_run_creates_nothing_twice_loses_nothing_and_matches_panels(
    tmp_path: Path,
) -> None:
    args = [sys.executable, "-m", "bench.chaos", "--smoke", "--workdir", str(tmp_path)]
    args += ["--database-url", chaos_database_url(), "--redis-url", suite_redis_url()]
    # Its dozen processes run untraced: the engine's paths are measured in-process.
    done = subprocess.run(
        args, cwd=REPO, env=untraced_environ(), capture_output=True, text=True,
        timeout=400, check=False,
    )  # fmt: skip
    assert done.stdout, done.stderr[-3000:]
    report = json.loads(done.stdout)

    # The chaos happened: faults on every panel, kills and every one-off event.
    faults = report["faults_injected"]
    assert faults["total"].get("error", 0) > 0
    assert faults["total"].get("drop", 0) > 0
    assert faults["total"].get("storm", 0) > 0
    assert all(faults["per_panel"][p] for p in ("p1", "p2", "p3")), faults
    assert report["kills"] >= 3
    events = {e["event"] for e in report["one_offs"]}
    assert events == {"flush_redis", "revoke_jwt", "restart_api"}
    assert report["orders"]["accepted"] == report["orders"]["posted"] == 100

    # And the bridge came through it.
    assert report["duplicates"] == 0, report["duplicate_details"]
    assert report["lost"] == 0, report["lost_ids"]
    assert report["stuck"] == 0, report["stuck_details"]
    assert report["unexplained"] == []
    assert report["mismatches"] == 0, report["mismatch_details"]
    assert report["lease_lapses"] == 0, report["stalled_call_resends"]
    assert report["timing"]["drain_timed_out"] is False
    assert report["ok"] is True
    assert done.returncode == 0
