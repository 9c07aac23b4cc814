"""Billing's side of the run: HMAC-signed POST /v1/orders, re-sent until answered.

A re-send carries the same body and order_id, so the bridge replays its first
answer (200) instead of taking the order twice; that is how billing rides out an
API restart.
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridge.api.signing import signature

RETRY_PAUSE_S = 0.3


@dataclass
class PostLog:
    """What billing sent and what it was told."""

    accepted: dict[str, str] = field(default_factory=dict)  # order_id -> bridge id
    replayed: int = 0  # 200 answers: a re-send found the first answer
    resends: int = 0  # re-sends after a transport error or 5xx
    rejected: dict[str, str] = field(default_factory=dict)  # order_id -> answer


class Billing:
    """Signs and posts orders to the bridge API at ``base_url``."""

    def __init__(self, base_url: str, secret: str, give_up_after: float) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=10)
        self._secret = secret
        self._give_up_after = give_up_after
        self.log = PostLog()

    def close(self) -> None:
        self._http.close()

    def post(self, body: dict[str, Any]) -> None:
        """Post one order until the API answers it (or the give-up time passes)."""
        raw = json.dumps(body).encode()
        deadline = time.monotonic() + self._give_up_after
        while True:
            try:
                response = self._http.post(
                    "/v1/orders", content=raw, headers=self._headers("/v1/orders", raw)
                )
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code < 500:
                self._record(body["order_id"], response)
                return
            if time.monotonic() > deadline:
                self.log.rejected[body["order_id"]] = "no answer (API down)"
                return
            self.log.resends += 1
            time.sleep(RETRY_PAUSE_S)

    def _record(self, order_id: str, response: httpx.Response) -> None:
        if response.status_code in (200, 202):
            self.log.accepted[order_id] = response.json()["order"]["id"]
            self.log.replayed += response.status_code == 200
        else:
            self.log.rejected[order_id] = f"{response.status_code} {response.text}"

    def _headers(self, target: str, raw: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {
            "X-Bridge-Timestamp": timestamp,
            "X-Bridge-Signature": signature(
                self._secret, timestamp, "POST", target, raw
            ),
            "Content-Type": "application/json",
        }
