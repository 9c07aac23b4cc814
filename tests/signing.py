"""Client side of the intake signature, as billing computes it (for tests)."""

import hashlib
import hmac
import json
import time
from typing import Any

from tests.infra import INTAKE_SECRET


def signed_headers(
    method: str,
    target: str,
    body: bytes = b"",
    *,
    secret: str = INTAKE_SECRET,
    timestamp: int | None = None,
) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    message = f"{ts}.{method.upper()}.{target}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {
        "X-Bridge-Timestamp": ts,
        "X-Bridge-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def create_body(n: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": f"ord-{n}",
        "service_id": f"svc-{n}",
        "action": "create",
        "account": {
            "username": f"user{n}",
            "email": f"user{n}@example.com",
            "password": "correct-horse-battery",
            "package": "default",
        },
        "domain": f"site{n}.example",
        "ssl": True,
        "mailboxes": [
            {"local_part": "info", "password": "mailbox-pass-1", "quota_mb": 10}
        ],
    }
    body.update(overrides)
    return body
