"""Panel state against what the bridge believes: user status and package, domain,
certificate, mailboxes and password per service, and accounts nobody ordered.

A create that failed may leave a partial account on its panel; that is reported
apart as a leftover (the failed order explains it), not as a mismatch.
"""

from collections.abc import Callable
from typing import Any

from bench.chaoslib.snapshot import Snapshot

Login = Callable[[str, str, str], int]  # (panel, username, password) -> HTTP status


def compare(
    snap: Snapshot,
    states: dict[str, dict[str, Any]],
    passwords: dict[str, tuple[str, str]],
    login: Login,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (mismatches, leftovers of failed creates)."""
    mismatches: list[dict[str, Any]] = []
    leftovers: list[dict[str, Any]] = []
    known: dict[str, set[str]] = {name: set() for name in states}
    for service in snap.services.values():
        panel = service["server"]
        if panel not in states or not service["username"]:
            continue
        known[panel].add(service["username"])
        state = states[panel]
        problems = _service_problems(service, state, snap)
        if service["status"] == "failed":
            if service["username"] in state["users"]:
                leftovers.append({"service_id": service["service_id"], "panel": panel})
            continue
        password = _expected_password(service["service_id"], snap, passwords)
        user = state["users"].get(service["username"])
        if password and user is not None and user["status"] == "active":
            status = login(panel, service["username"], password)
            if status != 200:
                problems.append(f"login with the last ordered password: {status}")
        if problems:
            mismatches.append(
                {
                    "service_id": service["service_id"],
                    "panel": panel,
                    "bridge_status": service["status"],
                    "problems": problems,
                    "orders": _orders_of(service["service_id"], snap),
                }
            )
    for panel, state in states.items():
        for name, user in state["users"].items():
            if user["role"] != "admin" and name not in known[panel]:
                mismatches.append(
                    {"panel": panel, "username": name, "problems": ["nobody ordered"]}
                )
    return mismatches, leftovers


def _service_problems(
    service: dict[str, Any], state: dict[str, Any], snap: Snapshot
) -> list[str]:
    user = state["users"].get(service["username"])
    domain = service["domain"]
    if service["status"] in ("terminated", "failed"):
        if service["status"] == "terminated" and user is not None:
            return ["terminated in the bridge, user still on the panel"]
        if service["status"] == "terminated" and domain in state["domains"]:
            return ["terminated in the bridge, domain still on the panel"]
        return []
    if user is None:
        return [f"{service['status']} in the bridge, user absent on the panel"]
    problems = []
    if user["status"] != service["status"]:
        problems.append(f"user status {user['status']} != {service['status']}")
    if user["package"] != service["package"]:
        problems.append(f"package {user['package']} != {service['package']}")
    create = _completed_create(service["service_id"], snap)
    if domain:
        problems += _hosting_problems(service, state, create)
    return problems


def _hosting_problems(
    service: dict[str, Any], state: dict[str, Any], create: dict[str, Any] | None
) -> list[str]:
    domain = service["domain"]
    found = state["domains"].get(domain)
    if found is None:
        return [f"domain {domain} absent"]
    problems = []
    if found["owner"] != service["username"]:
        problems.append(f"domain owner {found['owner']}")
    payload = create["payload"] if create else {}
    cert = state["certificates"].get(domain)
    if payload.get("ssl") and (cert is None or cert["status"] != "active"):
        problems.append(f"certificate {cert['status'] if cert else 'absent'}")
    if not payload.get("ssl") and cert is not None:
        problems.append("certificate nobody ordered")
    wanted = {f"{m['local_part']}@{domain}" for m in payload.get("mailboxes", [])}
    present = {a for a, m in state["mailboxes"].items() if m["domain"] == domain}
    if wanted != present:
        problems.append(f"mailboxes {sorted(present)} != {sorted(wanted)}")
    return problems


def _completed_create(service_id: str, snap: Snapshot) -> dict[str, Any] | None:
    creates = [
        o
        for o in snap.orders.values()
        if o["service_id"] == service_id
        and o["action"] == "create"
        and o["status"] == "completed"
    ]
    return max(creates, key=lambda o: o["service_seq"], default=None)


def _expected_password(
    service_id: str, snap: Snapshot, passwords: dict[str, tuple[str, str]]
) -> str | None:
    done = [
        (snap.orders[oid]["service_seq"], password)
        for oid, (sid, password) in passwords.items()
        if sid == service_id
        and oid in snap.orders
        and snap.orders[oid]["status"] == "completed"
    ]
    return max(done)[1] if done else None


def _orders_of(service_id: str, snap: Snapshot) -> list[str]:
    orders = [o for o in snap.orders.values() if o["service_id"] == service_id]
    return [
        f"{o['order_id']} {o['action']} {o['status']}"
        for o in sorted(orders, key=lambda o: o["service_seq"])
    ]
