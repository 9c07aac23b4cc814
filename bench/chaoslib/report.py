"""The chaos run's JSON report: every verdict from the evidence, the figures around
them (orders, kills, faults, timings) and where the run happened."""

import os
import platform
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.chaoslib import checks
from bench.chaoslib.billing import PostLog
from bench.chaoslib.compare import Login, compare
from bench.chaoslib.config import ChaosConfig
from bench.chaoslib.events import EventLog
from bench.chaoslib.snapshot import Snapshot
from bench.chaoslib.workload import Workload


@dataclass(frozen=True)
class Evidence:
    """What the database and the panels hold once the bridge is stopped."""

    snap: Snapshot
    ledgers: dict[str, dict[str, dict[str, int]]]
    requests: dict[str, list[dict[str, Any]]]
    states: dict[str, dict[str, Any]]
    panel_settings: dict[str, Any]


def build(
    cfg: ChaosConfig,
    evidence: Evidence,
    *,
    work: Workload,
    posts: PostLog,
    events: EventLog,
    login: Login,
) -> dict[str, Any]:
    """Return the report; ``ok`` is true only when every verdict is clean."""
    found = _verdicts(cfg, evidence, work=work, posts=posts, events=events, login=login)
    clean = (
        not any(
            found[name]
            for name in (
                "duplicates",
                "lost",
                "stuck",
                "unexplained",
                "mismatches",
                "lease_lapses",
            )
        )
        and not found["orders"]["rejected_unexpected"]
    )
    return {"ok": clean, **found, **_context(cfg, evidence)}


def _verdicts(
    cfg: ChaosConfig,
    evidence: Evidence,
    *,
    work: Workload,
    posts: PostLog,
    events: EventLog,
    login: Login,
) -> dict[str, Any]:
    snap, requests = evidence.snap, evidence.requests
    duplicates = checks.duplicates(evidence.ledgers, requests, snap)
    lost = checks.lost(posts.accepted, snap)
    stuck = checks.stuck(snap)
    by_reason, unexplained = checks.failures(snap)
    mismatches, leftovers = compare(snap, evidence.states, work.passwords, login)
    kill_times = [kill["wall"] for kill in events.kills]
    overlaps = checks.lease_overlaps(requests, cfg.stall_seconds, kill_times)
    for overlap in overlaps:
        overlap["order_id"] = snap.keys.get(overlap["idempotency_key"], {}).get(
            "order_id"
        )
    service_of = {o["order_id"]: o["service_id"] for o in work.orders}
    return {
        "orders": {
            "posted": len(work.orders),
            "accepted": len(posts.accepted),
            "rejected": len(posts.rejected),
            "rejected_unexpected": checks.unexpected_rejections(
                posts.rejected, service_of, snap
            ),
            "resends": posts.resends,
            "replayed": posts.replayed,
            "by_action": dict(Counter(o["action"] for o in work.orders)),
            "by_status": dict(Counter(o["status"] for o in snap.orders.values())),
        },
        **_chaos_figures(evidence, events),
        "duplicates": len(duplicates),
        "duplicate_details": duplicates,
        "lost": len(lost),
        "lost_ids": lost,
        "stuck": len(stuck),
        "stuck_details": stuck,
        "failed_by_reason": {k: len(v) for k, v in by_reason.items()},
        "failed_ids_by_reason": by_reason,
        "unexplained": unexplained,
        "mismatches": len(mismatches),
        "mismatch_details": mismatches,
        "leftovers_of_failed_creates": leftovers,
        "lease_lapses": sum(1 for o in overlaps if not o["after_kill"]),
        "stalled_call_resends": overlaps,
    }


def _chaos_figures(evidence: Evidence, events: EventLog) -> dict[str, Any]:
    requests = evidence.requests
    planned = sum(len(o["steps"]) for o in evidence.snap.orders.values())
    return {
        "kills": len(events.kills),
        "kills_with_orders_leased": sum(1 for k in events.kills if k["orders_leased"]),
        "orders_leased_at_kills": sum(k["orders_leased"] for k in events.kills),
        "storms": len(events.storms),
        "one_offs": events.one_offs,
        "faults_injected": checks.faults_injected(requests),
        # Panel requests per planned step: what faults and polls cost.
        "request_amplification": round(
            sum(len(log) for log in requests.values()) / max(planned, 1), 2
        ),
        "auth": checks.auth_activity(requests),
    }


def _context(cfg: ChaosConfig, evidence: Evidence) -> dict[str, Any]:
    return {
        "panel_settings": evidence.panel_settings,
        "settings": cfg.public(),
        "engine": _engine_version(),
        "machine": {
            "cpus": os.cpu_count() or 0,
            "platform": platform.platform(),
            "python": platform.python_version(),
            # The machine is shared: its load explains slow timings.
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _engine_version() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args],  # noqa: S607 - git from PATH, like a developer
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    # The last commit that changed the product: the engine the run exercised.
    product = ("bridge", "workers", "migrations")
    return {
        "commit": git("rev-parse", "HEAD"),
        "engine_commit": git("log", "-1", "--format=%H", "--", *product),
        "engine_subject": git("log", "-1", "--format=%s", "--", *product),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }
