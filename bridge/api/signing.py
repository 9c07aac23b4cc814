"""HMAC request signatures of the intake API (design.md §5), as a FastAPI dependency.

Signed string: "<timestamp>.<METHOD>.<path and query>.<raw body>" with
BRIDGE_INTAKE_SECRET; headers X-Bridge-Timestamp and X-Bridge-Signature: sha256=<hex>.
"""

import hashlib
import hmac

from fastapi import HTTPException, Request, status

from bridge.container import Services


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


async def verified_body(request: Request) -> bytes:
    """Read the raw body (size-capped) and check the signature; 401/413 otherwise."""
    services: Services = request.app.state.services
    settings = services.settings
    limit = settings.intake_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail="body too large")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail="body too large")
    timestamp = request.headers.get("x-bridge-timestamp", "")
    sent = request.headers.get("x-bridge-signature", "")
    if not timestamp.isdigit() or not sent:
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
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise _unauthorized("bad signature")
    return body
