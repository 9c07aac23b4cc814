"""HMAC request signatures of the billing-facing API (design.md §5): `SignedRoute`.

Signed string: "<timestamp>.<METHOD>.<path and query>.<raw body>" with
BRIDGE_INTAKE_SECRET; headers X-Bridge-Timestamp (Unix seconds) and
X-Bridge-Signature: sha256=<hex>. The signature is checked on the raw bytes before
anything parses them, so an unsigned request gets 401 whatever its body holds.
No other header is signed, and none changes what is stored (an `Idempotency-Key`
header is ignored: duplicates are found by the signed body's `order_id`).
"""

import hashlib
import hmac
import re
from typing import Any, ClassVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from bridge.api.edge import EdgeRoute, ErrorOut, services_of

# ASCII digits only (str.isdigit() accepts "²", which int() refuses), and few
# enough of them that int() and the skew arithmetic stay cheap and finite.
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


def request_target(request: Request) -> str:
    """The raw path and query as sent (`?` only when there is a query)."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def signature(
    secret: str, timestamp: str, method: str, target: str, body: bytes
) -> str:
    message = f"{timestamp}.{method.upper()}.{target}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason)


def verify_signature(request: Request, body: bytes) -> None:
    """Raise 401 unless the request carries a fresh, valid signature of `body`."""
    services = services_of(request)
    settings = services.settings
    timestamp = request.headers.get("x-bridge-timestamp", "")
    sent = request.headers.get("x-bridge-signature", "")
    if not _TIMESTAMP.match(timestamp) or not sent:
        raise _unauthorized("missing or malformed signature headers")
    skew = abs(services.clock().timestamp() - int(timestamp))
    if skew > settings.intake_max_skew_seconds:
        raise _unauthorized("timestamp outside the allowed window")
    secret = settings.intake_secret
    if secret is None:
        raise _unauthorized("intake secret not configured")
    expected = signature(
        secret.get_secret_value(),
        timestamp,
        request.method,
        request_target(request),
        body,
    )
    # Header values are latin-1 text; encoding both sides the same way keeps
    # compare_digest on bytes (it refuses non-ASCII str).
    if not hmac.compare_digest(expected.encode(), sent.encode("latin-1")):
        raise _unauthorized("bad signature")


# Declared for the OpenAPI document only (it never refuses: SignedRoute does).
# OpenAPI cannot say "these two headers together", so the timestamp header is
# described here rather than declared as a second (alternative) scheme.
SIGNATURE_HEADERS = [
    Depends(
        APIKeyHeader(
            name="X-Bridge-Signature",
            scheme_name="BridgeSignature",
            auto_error=False,
            description="`sha256=<hex HMAC-SHA256(BRIDGE_INTAKE_SECRET, "
            '"<timestamp>.<METHOD>.<path and query>.<raw body>")>`, sent with '
            "`X-Bridge-Timestamp: <Unix seconds>` (at most 300 s from the "
            "bridge's clock)",
        )
    ),
]


class SignedRoute(EdgeRoute):
    """A billing-facing route: HMAC-signed requests only (401 otherwise)."""

    auth_responses: ClassVar[dict[int | str, dict[str, Any]]] = {
        401: {"model": ErrorOut, "description": "Missing/bad signature or timestamp"},
    }

    async def authorize(self, request: Request, body: bytes) -> None:
        verify_signature(request, body)
