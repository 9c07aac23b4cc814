"""A minimal billing-side client of wispanel-bridge (Python 3.10+, stdlib only).

Signs intake requests, submits a create order and polls it to a final status; and
receives callbacks: verifies the signature and the timestamp, skips delivery ids
already applied, appends each applied callback to a file. See docs/integration.md.

    BRIDGE_URL=http://127.0.0.1:8000 BRIDGE_INTAKE_SECRET=... [CALLBACK_URL=...] \
        python3 client.py create SERVICE_ID USERNAME EMAIL DOMAIN
    BRIDGE_INTAKE_SECRET=... python3 client.py callbacks --port 8600 --applied FILE
"""

import argparse
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_SKEW_SECONDS = 300
FINAL = ("completed", "failed", "cancelled")


def sign_request(
    secret: str, timestamp: str, method: str, target: str, body: bytes
) -> str:
    """X-Bridge-Signature of a request: target is the path and query as sent."""
    message = f"{timestamp}.{method.upper()}.{target}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def verify_callback(
    secret: str,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float | None = None,
) -> bool:
    """True when a callback's signature is right and its timestamp is recent."""
    if not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    message = timestamp.encode() + b"." + body
    expected = (
        "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(expected, signature)


class BridgeClient:
    """Signed JSON requests to the bridge's intake API."""

    def __init__(self, base_url: str, secret: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.timeout = timeout

    def request(
        self, method: str, target: str, payload: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Send one signed request; return the status and the decoded JSON."""
        body = b"" if payload is None else json.dumps(payload).encode()
        timestamp = str(int(time.time()))
        headers = {
            "X-Bridge-Timestamp": timestamp,
            "X-Bridge-Signature": sign_request(
                self.secret, timestamp, method, target, body
            ),
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - the configured bridge URL
            self.base_url + target,
            data=body if payload is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def submit_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/orders; the same order again replays the first answer."""
        status, answer = self.request("POST", "/v1/orders", order)
        if status not in (200, 202):
            raise RuntimeError(f"intake answered {status}: {answer}")
        return dict(answer["order"])

    def get_order(self, order_uuid: str) -> dict[str, Any]:
        status, answer = self.request("GET", f"/v1/orders/{order_uuid}")
        if status != 200:  # noqa: PLR2004
            raise RuntimeError(f"GET order answered {status}: {answer}")
        return dict(answer["order"])

    def wait(self, order: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        """Poll an order until it is final (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while order["status"] not in FINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            order = self.get_order(order["id"])
        return order


def create_order(
    service_id: str,
    username: str,
    email: str,
    domain: str,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """A create order with a domain and SSL; order_id is new for each request.

    Without callback_url the bridge calls back BRIDGE_BILLING_CALLBACK_URL.
    """
    return {
        "order_id": f"{service_id}-create-{secrets.token_hex(4)}",
        "service_id": service_id,
        "action": "create",
        "account": {
            "username": username,
            "email": email,
            "password": secrets.token_urlsafe(16),
            "package": "default",
        },
        "domain": domain,
        "ssl": True,
    } | ({"callback_url": callback_url} if callback_url else {})


class CallbackReceiver(BaseHTTPRequestHandler):
    """POST handler: 401 unless signed and recent; each delivery applied once."""

    secret = ""
    applied_path = ""
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        timestamp = self.headers.get("X-Bridge-Timestamp", "")
        signature = self.headers.get("X-Bridge-Signature", "")
        if not verify_callback(self.secret, timestamp, signature, body):
            self._answer(401, {"error": "bad signature or timestamp"})
            return
        delivery = self.headers.get("X-Bridge-Delivery", "")
        callback = json.loads(body)
        with self.lock:
            if delivery and delivery in self._applied_ids():
                self._answer(200, {"applied": False, "reason": "already applied"})
                return
            # Apply: a real billing system updates the service here.
            with open(self.applied_path, "a", encoding="utf-8") as out:
                out.write(json.dumps({"delivery": delivery, **callback}) + "\n")
        self._answer(200, {"applied": True})

    def _applied_ids(self) -> set[str]:
        if not os.path.exists(self.applied_path):
            return set()
        with open(self.applied_path, encoding="utf-8") as lines:
            return {json.loads(line)["delivery"] for line in lines if line.strip()}

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the applied file is the record


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="submit a create order and wait")
    for name in ("service_id", "username", "email", "domain"):
        create.add_argument(name)
    receive = commands.add_parser("callbacks", help="serve a callback receiver")
    receive.add_argument("--host", default="127.0.0.1")
    receive.add_argument("--port", type=int, default=8600)
    receive.add_argument("--applied", required=True, help="file of applied callbacks")
    args = parser.parse_args(argv)
    secret = os.environ["BRIDGE_INTAKE_SECRET"]
    if args.command == "callbacks":
        CallbackReceiver.secret = secret
        CallbackReceiver.applied_path = args.applied
        server = ThreadingHTTPServer((args.host, args.port), CallbackReceiver)
        print(f"receiving callbacks on http://{args.host}:{args.port}/", flush=True)  # noqa: T201
        server.serve_forever()
        return 0
    client = BridgeClient(os.environ.get("BRIDGE_URL", "http://127.0.0.1:8000"), secret)
    order = create_order(
        args.service_id,
        args.username,
        args.email,
        args.domain,
        os.environ.get("CALLBACK_URL"),
    )
    accepted = client.submit_order(order)
    again = client.submit_order(order)  # a retry after a timeout: the same order
    assert again["id"] == accepted["id"]  # noqa: S101 - shows the guarantee
    final = client.wait(accepted)
    print(json.dumps({"order": final}, indent=2))  # noqa: T201
    return 0 if final["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
