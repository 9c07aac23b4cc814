"""The chaos run's judges on hand-made evidence: each one flags what it must."""

from datetime import datetime
from typing import Any

from bench.chaoslib.checks import (
    duplicates,
    failures,
    lease_overlaps,
    unexpected_rejections,
)
from bench.chaoslib.compare import compare
from bench.chaoslib.snapshot import Snapshot


def order(
    order_id: str, service_id: str, action: str, status: str, seq: int, **extra: Any
) -> dict[str, Any]:
    base = {
        "order_id": order_id,
        "service_id": service_id,
        "action": action,
        "status": status,
        "service_seq": seq,
        "wait_reason": None,
        "last_error": None,
        "payload": {},
        "steps": [],
    }
    return base | extra


def entry(key: str, at: str, fault: str | None = None, path: str = "/x") -> dict:
    return {
        "method": "POST",
        "path": path,
        "idempotency_key": key,
        "status": 200,
        "fault": fault,
        "replayed": False,
        "at": f"2026-11-29T10:00:{at}+00:00",
    }


def test_duplicates_name_the_resource_its_orders_and_their_requests() -> None:
    snap = Snapshot(
        keys={
            "k1": {"order_id": "o1", "kind": "issue_ssl", "natural_key": "a.example"},
            "k2": {"order_id": "o2", "kind": "issue_ssl", "natural_key": "b.example"},
        }
    )
    ledgers = {"p1": {"certificate": {"a.example": 2, "b.example": 1}, "user": {}}}
    requests = {
        "p1": [
            entry("k1", "01.000000", "drop"),
            entry("k1", "02.000000"),
            entry("k2", "03.000000"),
        ]
    }

    found = duplicates(ledgers, requests, snap)

    assert len(found) == 1
    assert found[0]["key"] == "a.example"
    assert found[0]["order_ids"] == ["o1"]
    assert [r["fault"] for r in found[0]["requests"]] == ["drop", None]


def test_a_send_during_a_stalled_send_of_the_same_key_is_a_lease_lapse() -> None:
    stalled = entry("k", "00.000000", "stall")
    requests = {"p1": [stalled, entry("k", "02.000000"), entry("k", "09.000000")]}

    found = lease_overlaps(requests, stall_seconds=6, kill_times=[])

    assert [(o["resent_at"], o["after_kill"]) for o in found] == [
        ("2026-11-29T10:00:02.000000+00:00", False)
    ]


def test_a_kill_between_the_stalled_send_and_the_resend_explains_it() -> None:
    requests = {"p1": [entry("k", "00.000000", "stall"), entry("k", "03.000000")]}
    killed_at = datetime.fromisoformat("2026-11-29T10:00:01+00:00").timestamp()

    found = lease_overlaps(requests, stall_seconds=6, kill_times=[killed_at])

    assert found[0]["after_kill"] is True


def test_injected_failures_are_explained_and_internal_errors_are_not() -> None:
    def failed_step(code: str, status: int | None) -> list[dict[str, Any]]:
        return [
            {
                "kind": "issue_ssl",
                "status": "failed",
                "error_code": code,
                "panel_status": status,
            }
        ]

    snap = Snapshot(
        orders={
            "o1": order(
                "o1", "s1", "create", "failed", 1, steps=failed_step("ssl_failed", None)
            ),
            "o2": order(
                "o2",
                "s2",
                "create",
                "failed",
                1,
                steps=failed_step("INTERNAL_ERROR", 500),
            ),
            "o4": order("o4", "s1", "suspend", "failed", 2),  # refused: create failed
            "o5": order("o5", "s9", "suspend", "failed", 2),  # refused: no reason
            "o3": order(
                "o3", "s3", "suspend", "failed", 2, steps=failed_step("internal", None)
            ),
        }
    )

    by_reason, unexplained = failures(snap)

    assert sum(len(ids) for ids in by_reason.values()) == 5
    assert by_reason["refused_after_failed_create"] == ["o4"]
    assert sorted(u["order_id"] for u in unexplained) == ["o3", "o5"]


def test_refusals_count_as_expected_only_after_the_service_create_failed() -> None:
    snap = Snapshot(orders={"o1": order("o1", "s1", "create", "failed", 1)})
    refused = {
        "o2": "422 the bridge has not provisioned a panel account for it",
        "o3": "422 the bridge has not provisioned a panel account for it",
    }

    found = unexpected_rejections(refused, {"o2": "s1", "o3": "s2"}, snap)

    assert [f["order_id"] for f in found] == ["o3"]


def panel_state(users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"users": users, "domains": {}, "certificates": {}, "mailboxes": {}}


def user(status: str = "active", package: str = "basic", role: str = "user") -> dict:
    return {"status": status, "package": package, "role": role}


def service(service_id: str, username: str, status: str) -> dict[str, Any]:
    return {
        "service_id": service_id,
        "status": status,
        "server": "p1",
        "username": username,
        "domain": None,
        "package": "basic",
    }


def test_compare_flags_every_difference_between_panel_and_bridge() -> None:
    snap = Snapshot(
        services={
            "s1": service("s1", "ua", "active"),  # suspended on the panel
            "s2": service("s2", "ub", "terminated"),  # still on the panel
            "s3": service("s3", "uc", "failed"),  # leftover: not a mismatch
            "s4": service("s4", "ud", "active"),  # wrong password
            "s5": service("s5", "ue", "suspended"),  # as believed
        },
        orders={"o4": order("o4", "s4", "create", "completed", 1)},
    )
    states = {
        "p1": panel_state(
            {
                "admin": user(role="admin"),
                "ua": user("suspended"),
                "ub": user(),
                "uc": user(),
                "ud": user(),
                "ue": user("suspended"),
                "zz": user(),
            }
        )
    }

    mismatches, leftovers = compare(
        snap, states, {"o4": ("s4", "pw")}, lambda panel, name, pw: 401
    )

    flagged = {m.get("service_id") or m["username"] for m in mismatches}
    assert flagged == {"s1", "s2", "s4", "zz"}
    assert leftovers == [{"service_id": "s3", "panel": "p1"}]
