"""CeleryEnqueuer's background sender against real Redis (the broker)."""

import json

import pytest
import redis

from bridge.queue import QUEUE_NAME, RUN_ORDER_TASK, CeleryEnqueuer, broker_url
from tests.infra import suite_redis_url

pytestmark = pytest.mark.integration


def queued(client: "redis.Redis") -> list[dict[str, object]]:
    """Messages on the bridge queue, oldest first (kombu LPUSHes, workers BRPOP)."""
    raw = client.lrange(QUEUE_NAME, 0, -1)
    return [json.loads(m)["headers"] for m in reversed(raw)]


def test_messages_sent_later_arrive_in_order_once_closed(
    redis_client: "redis.Redis",
) -> None:
    enqueuer = CeleryEnqueuer(broker_url(suite_redis_url()))
    for n in range(3):
        assert enqueuer.send_later(RUN_ORDER_TASK, f"order-{n}")
    enqueuer.close()  # drains what is pending before returning
    headers = queued(redis_client)
    assert [h["argsrepr"] for h in headers] == [
        "['order-0']",
        "['order-1']",
        "['order-2']",
    ]
    assert all(h["task"] == RUN_ORDER_TASK and h["eta"] is None for h in headers)


def test_a_countdown_becomes_the_message_eta(redis_client: "redis.Redis") -> None:
    enqueuer = CeleryEnqueuer(broker_url(suite_redis_url()))
    enqueuer.send_later(RUN_ORDER_TASK, "order-1", countdown=2.5)
    enqueuer.close()
    (header,) = queued(redis_client)
    assert header["eta"] is not None
