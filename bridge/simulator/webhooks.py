"""Outgoing webhooks of a simulated panel: subscriptions, event matching, delivery.

Delivery follows wispanel-api.md §8 (ASSUMED parts as proposed there): a signed
JSON POST, attempt 1 at once then one retry after each configured wait (1 s, 5 s),
a 10 s timeout per attempt, redirects not followed, run as a background task on
the server's event loop so the panel API never waits for a receiver.

``ssl.issued``: certificates are judged lazily on read, so issuing one also
starts a small watcher task that wakes every ``webhook_ssl_tick_s`` (real time,
so clock jumps are noticed) and announces the certificate once it is active.
"""

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
from typing import Any

import httpx

from bridge.simulator.panel import Panel
from bridge.simulator.records import Certificate, DeliveryLog, Webhook

USER_AGENT = "WisPanel-Webhook/1"
# Strong references: the loop keeps only weak ones to tasks it runs.
_TASKS: set["asyncio.Task[None]"] = set()


def new_webhook(owner: str, url: str, events: list[str], now: float) -> Webhook:
    """Return a subscription with a server-generated id and 64-hex secret."""
    return Webhook(
        id=secrets.token_hex(16),
        owner=owner,
        url=url,
        events=list(events),
        secret=secrets.token_hex(32),
        created_at=now,
    )


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret's ASCII bytes, body)>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def emit(panel: Panel, event: str, data: dict[str, Any], subject: str | None) -> int:
    """Queue ``event`` to every enabled subscription that may see ``subject``.

    A non-admin subscriber hears only about itself and the users it created.
    Returns the number of deliveries started.
    """
    started = 0
    for hook in list(panel.state.webhooks.values()):
        if not hook.enabled or not hook.matches(event):
            continue
        if not _may_see(panel, hook.owner, subject):
            continue
        body = json.dumps(
            {"event": event, "timestamp": int(panel.now()), "data": data},
            separators=(",", ":"),
        ).encode()
        log = DeliveryLog(str(uuid.uuid4()), hook.id, event, hook.url)
        panel.deliveries.append(log)
        _spawn(_deliver(panel, hook, log, body))
        started += 1
    return started


def _may_see(panel: Panel, owner: str, subject: str | None) -> bool:
    user = panel.state.users.get(owner)
    if user is None:
        return False
    if user.role == "admin":
        return True
    if subject is None:
        return False
    target = panel.state.users.get(subject)
    return subject == owner or (target is not None and target.creator == owner)


def _spawn(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def _deliver(panel: Panel, hook: Webhook, log: DeliveryLog, body: bytes) -> None:
    config = panel.config
    headers = {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "X-WisPanel-Event": log.event,
        "X-WisPanel-Delivery": log.id,
        "X-WisPanel-Signature": sign(hook.secret, body),
    }
    waits = [0.0, *config.webhook_delays()]
    async with httpx.AsyncClient(
        timeout=config.webhook_timeout_s, follow_redirects=False
    ) as client:
        for wait in waits:
            if wait:
                await asyncio.sleep(wait)
            attempt: dict[str, Any] = {"status": None, "error": None}
            try:
                response = await client.post(hook.url, content=body, headers=headers)
                attempt["status"] = response.status_code
            except httpx.HTTPError as exc:
                attempt["error"] = type(exc).__name__
            log.attempts.append(attempt)
            if attempt["status"] is not None and 200 <= attempt["status"] < 300:  # noqa: PLR2004
                log.state = "delivered"
                hook.last_fired_at = panel.now()
                return
    log.state = "failed"
    hook.failure_count += 1


def watch_certificate(panel: Panel, cert: Certificate) -> None:
    """Announce ``cert`` with ``ssl.issued`` once it becomes active (if ever)."""
    if any(
        h.enabled and h.matches("ssl.issued") for h in panel.state.webhooks.values()
    ):
        _spawn(_watch(panel, cert))


async def _watch(panel: Panel, cert: Certificate) -> None:
    ready_at = cert.ready_at
    while (
        panel.state.certificates.get(cert.domain) is cert and cert.ready_at == ready_at
    ):
        now = panel.now()
        if now >= cert.ready_at:
            announce_if_active(panel, cert)
            return
        await asyncio.sleep(min(cert.ready_at - now, panel.config.webhook_ssl_tick_s))


def announce_if_active(panel: Panel, cert: Certificate) -> None:
    """Send ``ssl.issued`` the first time ``cert`` is observed active."""
    if cert.announced or cert.status(panel.now()) != "active":
        return
    cert.announced = True
    domain = panel.state.domains.get(cert.domain)
    owner = domain.owner if domain is not None else None
    emit(
        panel,
        "ssl.issued",
        {
            "domain": cert.domain,
            "owner": owner,
            "provider": cert.provider,
            "issued_at": panel.fmt(cert.ready_at),
            "san": cert.san(),
        },
        owner,
    )
