"""The orders billing posts in a chaos run: a seeded, interleaved mix of actions.

Creates (domain, SSL on most, zero to two mailboxes) are spread over the run; the
other orders go to services created earlier, following what billing would send
for the state it believes the service is in. A terminated service gets no more
orders, and nothing is created twice, so every ledger count above 1 is a duplicate.
"""

import random
import secrets
from dataclasses import dataclass, field
from typing import Any

PACKAGES = ("default", "basic", "pro")
# What billing sends next for a service it believes active / suspended.
FOLLOW_UPS = {
    "active": (
        ("suspend", 0.32),
        ("change_package", 0.25),
        ("change_password", 0.25),
        ("terminate", 0.08),
        ("unsuspend", 0.10),  # a stale or duplicate notice: already active
    ),
    "suspended": (
        ("unsuspend", 0.50),
        ("change_password", 0.15),
        ("change_package", 0.10),
        ("terminate", 0.15),
        ("suspend", 0.10),  # already suspended
    ),
}
CREATE_SHARE = 0.4


@dataclass
class _Service:
    service_id: str
    username: str
    package: str
    state: str = "active"


@dataclass
class Workload:
    """The orders in posting order, and each service's passwords by order_id."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    # order_id -> (service_id, password) of creates and password changes.
    passwords: dict[str, tuple[str, str]] = field(default_factory=dict)


def generate(count: int, seed: int) -> Workload:
    """Return ``count`` orders; about 40 % are creates."""
    rng = random.Random(seed)
    work = Workload()
    services: list[_Service] = []
    creates_left = max(1, round(count * CREATE_SHARE))
    for index in range(count):
        order_id = f"o{index:05d}"
        live = [s for s in services if s.state != "terminated"]
        left = count - index
        if not live or (creates_left > 0 and rng.random() < creates_left / left):
            creates_left -= 1
            body = _create(rng, order_id, len(services), services)
            work.passwords[order_id] = (body["service_id"], _password(body))
        else:
            body = _follow_up(rng, order_id, rng.choice(live))
            if body["action"] == "change_password":
                work.passwords[order_id] = (body["service_id"], body["password"])
        work.orders.append(body)
    return work


def _password(body: dict[str, Any]) -> str:
    return str(body["account"]["password"])


def _create(
    rng: random.Random, order_id: str, number: int, services: list[_Service]
) -> dict[str, Any]:
    username = f"u{number:05d}"
    package = rng.choice(PACKAGES)
    service = _Service(f"svc{number:05d}", username, package)
    services.append(service)
    domain = f"s{number:05d}.chaos.example"
    boxes = [
        {"local_part": local, "password": secrets.token_urlsafe(12), "quota_mb": 50}
        for local in ("info", "sales")[: rng.randint(0, 2)]
    ]
    return {
        "order_id": order_id,
        "service_id": service.service_id,
        "action": "create",
        "account": {
            "username": username,
            "email": f"{username}@mail.chaos.example",
            "password": secrets.token_urlsafe(12),
            "package": package,
        },
        "domain": domain,
        "ssl": rng.random() < 0.7,
        "mailboxes": boxes,
    }


def _follow_up(rng: random.Random, order_id: str, service: _Service) -> dict[str, Any]:
    choices = FOLLOW_UPS[service.state]
    action = rng.choices([a for a, _ in choices], [w for _, w in choices])[0]
    body: dict[str, Any] = {
        "order_id": order_id,
        "service_id": service.service_id,
        "action": action,
    }
    match action:
        case "suspend":
            body["reason"] = rng.choice(("non_payment", "abuse", "other"))
            service.state = "suspended"
        case "unsuspend":
            service.state = "active"
        case "terminate":
            service.state = "terminated"
        case "change_package":
            service.package = rng.choice([p for p in PACKAGES if p != service.package])
            body["package"] = service.package
        case "change_password":
            body["password"] = secrets.token_urlsafe(12)
    return body
