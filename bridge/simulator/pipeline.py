"""The request pipeline in front of every ``/api/v1`` route of a panel.

Order: storm -> fail-next -> auth -> rate limit -> scope -> (mutating: key check,
replay, error fault) -> latency -> handler -> store -> drop/stall -> answer.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.simulator.auth import (
    Principal,
    authenticate,
    check_scope,
    client_ip,
    sliding_refresh,
)
from bridge.simulator.context import PRINCIPAL_KEY
from bridge.simulator.errors import ApiError
from bridge.simulator.idempotency import (
    Outcome,
    Slot,
    StoredResponse,
    body_hash,
    is_storable,
    is_valid_key,
)
from bridge.simulator.panel import Panel
from bridge.simulator.replies import (
    ClientGone,
    Reply,
    abort,
    api_error_reply,
    error_reply,
    forced_reply,
    read_body,
    storm_reply,
)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/login/"})


@dataclass
class _Call:
    """One API request travelling through the pipeline."""

    panel: Panel
    scope: Scope
    headers: Headers
    entry: dict[str, Any]
    body: bytes = b""

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])


class ApiPipeline:
    """Wraps the API routes with the panel's cross-cutting behaviour."""

    def __init__(self, api: ASGIApp) -> None:
        self.api = api

    async def __call__(
        self, panel: Panel, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve one API request of ``panel``."""
        headers = Headers(scope=scope)
        entry = panel.request_entry(
            scope["method"], scope["path"], headers.get("idempotency-key")
        )
        call = _Call(panel=panel, scope=scope, headers=headers, entry=entry)
        try:
            reply = await self._handle(call, receive)
        except ClientGone:
            return  # nothing was applied, and there is nobody to answer
        entry["status"] = reply.status
        entry["fault"] = entry["fault"] or reply.after
        panel.log_request(entry)
        if reply.after == "stall":
            await asyncio.sleep(panel.faults.stall_seconds)
        if reply.after == "drop":
            await abort(send)
            return
        await reply.send(send)

    async def _handle(self, call: _Call, receive: Receive) -> Reply:
        panel = call.panel
        storm = panel.faults.storm_left(panel.now())
        if storm > 0:
            call.entry["fault"] = "storm"
            return storm_reply(panel, storm)
        forced = panel.faults.take_fail_next()
        if forced is not None:
            call.entry["fault"] = "fail_next"
            return forced_reply(panel, forced)
        call.body = await read_body(receive)
        if call.path in PUBLIC_PATHS:
            return await self._call_api(call)
        peer = call.scope["client"][0] if call.scope.get("client") else ""
        ip = client_ip(call.headers, peer, panel.config.trust_forwarded_for)
        try:
            principal = authenticate(panel, call.headers.get("authorization"), ip)
        except ApiError as exc:
            return api_error_reply(panel, exc)
        decision = panel.limiter.hit(
            principal.credential, panel.now(), panel.config.limit, panel.config.window
        )
        if decision.allowed:
            reply = await self._authorized(call, principal)
        else:
            reply = error_reply(panel, 429, "Too many requests")
            if panel.config.retry_after:
                reply.headers["Retry-After"] = str(decision.retry_after)
        extra = decision.headers()
        token = sliding_refresh(panel, principal)
        if token is not None:
            extra["X-New-Token"] = token
        reply.headers = extra | reply.headers
        return reply

    async def _authorized(self, call: _Call, principal: Principal) -> Reply:
        try:
            check_scope(principal, call.method, call.path)
        except ApiError as exc:
            return api_error_reply(call.panel, exc)
        call.scope[PRINCIPAL_KEY] = principal
        if call.method not in MUTATING:
            await _latency(call.panel)
            return await self._call_api(call)
        key = call.headers.get("idempotency-key")
        if key is None or not call.panel.config.honours_key(call.path):
            # Outside the keyed folders the header is accepted and ignored: a
            # re-send executes again (wispanel-api.md §5).
            return await self._apply(call, None)
        if not is_valid_key(key):
            return error_reply(
                call.panel,
                call.panel.config.validation_status,
                "Idempotency-Key must be 1-255 printable ASCII characters",
                "VALIDATION_ERROR",
            )
        # Both spellings of a collection root are one route, hence one scope.
        slot = (principal.credential, call.method, call.path.rstrip("/"), key)
        outcome, stored = call.panel.idempotency.begin(
            slot,
            body_hash(call.body),
            call.panel.now(),
            call.panel.config.idempotency_window_s,
        )
        early = _early_reply(call, outcome, stored)
        if early is not None:
            return early
        return await self._apply(call, slot)

    async def _apply(self, call: _Call, slot: Slot | None) -> Reply:
        """Run a mutating handler, store its outcome, then roll post-apply faults."""
        panel = call.panel
        stored_ok = False
        try:
            if panel.dice.roll(panel.faults.error_rate):
                call.entry["fault"] = "error"
                return error_reply(panel, 500, "Internal server error")
            await _latency(panel)
            reply = await self._call_api(call)
            if slot is not None and is_storable(reply.status):
                response = StoredResponse(reply.status, reply.body, reply.content_type)
                panel.idempotency.complete(slot, response, panel.now())
                stored_ok = True
        finally:
            if slot is not None and not stored_ok:
                panel.idempotency.abandon(slot)
        panel.save()
        if panel.dice.roll(panel.faults.drop_after_apply_rate):
            reply.after = "drop"
        elif panel.dice.roll(panel.faults.stall_after_apply_rate):
            reply.after = "stall"
        return reply

    async def _call_api(self, call: _Call) -> Reply:
        reply = Reply(status=500, body=b"")
        chunks: list[bytes] = []
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": call.body, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                reply.status = message["status"]
                for raw_name, raw_value in message.get("headers", []):
                    name, value = raw_name.decode().lower(), raw_value.decode()
                    if name == "content-type":
                        reply.content_type = value
                    elif name != "content-length":
                        reply.headers[name] = value
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.api(call.scope, receive, capture)
        reply.body = b"".join(chunks)
        return reply


async def _latency(panel: Panel) -> None:
    if panel.faults.latency_ms > 0:
        await asyncio.sleep(panel.faults.latency_ms / 1000)


def _early_reply(
    call: _Call, outcome: Outcome, stored: StoredResponse | None
) -> Reply | None:
    panel = call.panel
    if outcome is Outcome.MISMATCH:
        status = panel.config.key_mismatch_status
        code = "CONFLICT" if status == 409 else "VALIDATION_ERROR"  # noqa: PLR2004
        text = "Idempotency-Key reused with a different request body"
        return error_reply(panel, status, text, code)
    if outcome is Outcome.IN_PROGRESS:
        text = "A request with this Idempotency-Key is still in progress"
        return error_reply(panel, 409, text, "CONFLICT")
    if outcome is Outcome.REPLAY and stored is not None:
        call.entry["replayed"] = True
        return Reply(
            status=stored.status,
            body=stored.body,
            content_type=stored.content_type,
            headers={"Idempotent-Replayed": "true"},
        )
    return None
