"""The run's verdicts from the panels' ledgers and request logs and the database:
duplicates (with request-log evidence), faults injected, lost, stuck, failures.
"""

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from bench.chaoslib.snapshot import LEDGER_KIND, LIVE, Snapshot

_KIND_OF_LEDGER = {ledger: kind for kind, ledger in LEDGER_KIND.items()}
# Panel answers and transport failures the injected faults produce.
_FAULT_STATUSES = frozenset({500, 502, 503, 504})
_FAULT_CODES = frozenset(
    {"PanelOutcomeUnknownError", "PanelNotSentError", "INTERNAL_ERROR"}
)


def faults_injected(requests: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Count faulted requests per panel and in total, by fault name."""
    per_panel = {
        name: dict(Counter(e["fault"] for e in log if e.get("fault")))
        for name, log in requests.items()
    }
    total: Counter[str] = Counter()
    for counts in per_panel.values():
        total.update(counts)
    requests_total = sum(len(log) for log in requests.values())
    return {"total": dict(total), "per_panel": per_panel, "requests": requests_total}


def auth_activity(requests: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Logins and 401 answers per panel (the JWT revocation's footprint)."""
    return {
        name: {
            "logins": sum(1 for e in log if e["path"].rstrip("/").endswith("/login")),
            "unauthorized": sum(1 for e in log if e["status"] == 401),
        }
        for name, log in requests.items()
    }


def duplicates(
    ledgers: dict[str, dict[str, dict[str, int]]],
    requests: dict[str, list[dict[str, Any]]],
    snap: Snapshot,
) -> list[dict[str, Any]]:
    """Every resource a panel created more than once, with the requests behind it."""
    found = []
    for panel, ledger in ledgers.items():
        for ledger_kind, counts in ledger.items():
            for natural, count in counts.items():
                if count > 1:
                    found.append(
                        _evidence(
                            panel=panel,
                            ledger_kind=ledger_kind,
                            natural=natural,
                            count=count,
                            requests=requests,
                            snap=snap,
                        )
                    )
    return found


def _evidence(
    *,
    panel: str,
    ledger_kind: str,
    natural: str,
    count: int,
    requests: dict[str, list[dict[str, Any]]],
    snap: Snapshot,
) -> dict[str, Any]:
    kind = _KIND_OF_LEDGER.get(ledger_kind, "")
    keys = {
        key: info
        for key, info in snap.keys.items()
        if info["kind"] == kind and info["natural_key"] == natural
    }
    calls = [
        {
            "order_id": keys[e["idempotency_key"]]["order_id"],
            "method": e["method"],
            "path": e["path"],
            "status": e["status"],
            "fault": e.get("fault"),
            "replayed": e.get("replayed", False),
            "at": e["at"],
        }
        for e in requests.get(panel, [])
        if e.get("idempotency_key") in keys and e["method"] != "GET"
    ]
    return {
        "panel": panel,
        "kind": ledger_kind,
        "key": natural,
        "created": count,
        "order_ids": sorted({info["order_id"] for info in keys.values()}),
        "requests": calls,
    }


def lost(accepted: dict[str, str], snap: Snapshot) -> list[str]:
    """Order ids the API accepted that the database does not hold."""
    return sorted(order_id for order_id in accepted if order_id not in snap.orders)


def stuck(snap: Snapshot) -> list[dict[str, Any]]:
    """Orders not final after the drain, and services left pending."""
    found = [
        {"order_id": o["order_id"], "status": o["status"], "wait": o["wait_reason"]}
        for o in snap.orders.values()
        if o["status"] in LIVE
    ]
    found += [
        {"service_id": s["service_id"], "status": s["status"]}
        for s in snap.services.values()
        if s["status"] == "pending"
    ]
    return found


def failures(snap: Snapshot) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """Failed orders grouped by reason, and those no injected fault explains."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    unexplained = []
    for order in snap.orders.values():
        if order["status"] not in ("failed", "cancelled"):
            continue
        reason, why = _explain(order, snap)
        by_reason[reason].append(order["order_id"])
        if why is None:
            unexplained.append(
                {
                    "order_id": order["order_id"],
                    "reason": reason,
                    "last_error": order["last_error"],
                }
            )
    return dict(by_reason), unexplained


def _explain(order: dict[str, Any], snap: Snapshot) -> tuple[str, str | None]:
    """Return (reason, explanation); explanation None when nothing injected fits."""
    step = next((s for s in order["steps"] if s["status"] == "failed"), None)
    if order["status"] == "failed" and step is None and _create_failed(order, snap):
        # Refused before any panel call: lifecycle orders do not act on a service
        # whose create failed (billing posted them while it was still pending).
        return "refused_after_failed_create", "the service's create failed earlier"
    if order["status"] == "cancelled" or step is None:
        return f"{order['status']}:{order['last_error']}", None
    code, status = step["error_code"], step["panel_status"]
    reason = f"{step['kind']}:{code}:{status}"
    if status in _FAULT_STATUSES or code in _FAULT_CODES:
        return reason, "injected 5xx/drop/stall outlasted the retry budget"
    if code == "ssl_failed":
        return reason, "injected SSL failure (the certificate ended failed)"
    if status == 404 and _create_failed(order, snap):
        return reason, "the service's create failed earlier"
    return reason, None


def _create_failed(order: dict[str, Any], snap: Snapshot) -> bool:
    return any(
        o["service_id"] == order["service_id"]
        and o["action"] == "create"
        and o["status"] == "failed"
        and o["service_seq"] < order["service_seq"]
        for o in snap.orders.values()
    )


def lease_overlaps(
    requests: dict[str, list[dict[str, Any]]],
    stall_seconds: float,
    kill_times: list[float],
) -> list[dict[str, Any]]:
    """Sends of a key while an earlier send of that key was still stalled.

    A stalled answer comes ``stall_seconds`` after the request arrived. Another
    send of the same key before then means a second worker ran the step while the
    first still waited for the panel: its lease lapsed during one call (design.md
    §1.6), unless the first worker was SIGKILLed in between (``after_kill``).
    """
    found = []
    for panel, log in requests.items():
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in log:
            if entry.get("idempotency_key"):
                by_key[entry["idempotency_key"]].append(entry)
        for entries in by_key.values():
            for stalled in (e for e in entries if e.get("fault") == "stall"):
                start = _ts(stalled["at"])
                for other in entries:
                    at = _ts(other["at"])
                    if start < at < start + stall_seconds:
                        killed = any(start <= k <= at for k in kill_times)
                        found.append(
                            {
                                "panel": panel,
                                "path": stalled["path"],
                                "idempotency_key": stalled["idempotency_key"],
                                "stalled_at": stalled["at"],
                                "resent_at": other["at"],
                                "after_kill": killed,
                            }
                        )
    return found


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def unexpected_rejections(
    rejected: dict[str, str], service_of: dict[str, str], snap: Snapshot
) -> list[dict[str, str]]:
    """Intake refusals other than "nothing provisioned" / "its create failed"
    after a failed create.

    Billing that posts a lifecycle order for a service whose create failed is
    told 422; any other refusal of the workload's orders is a finding.
    """
    failed_creates = {
        o["service_id"]
        for o in snap.orders.values()
        if o["action"] == "create" and o["status"] == "failed"
    }
    return [
        {"order_id": order_id, "answer": answer}
        for order_id, answer in rejected.items()
        if not (
            answer.startswith("422")
            and ("not provisioned" in answer or "create failed" in answer)
            and service_of.get(order_id) in failed_creates
        )
    ]
