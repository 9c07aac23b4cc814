"""The API with its database unreachable: 503 with Retry-After, nothing leaked.

The bridge is built on a PostgreSQL URL whose port refuses connections (a real
connection attempt that fails, as during a database restart); Redis is the test's.
"""

from collections.abc import Iterator

import httpx
import pytest
import redis
import structlog.testing

from bridge.api.app import create_app
from bridge.container import build_services
from bridge.settings import Settings
from tests.http_server import serve_in_thread
from tests.infra import ADMIN_TOKEN
from tests.signing import create_body, encode, signed_headers

pytestmark = pytest.mark.integration

# Port 9 (discard) is closed on loopback here: connecting is refused at once.
_UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:9/bridge_unreachable"


@pytest.fixture
def api_without_db(
    settings: Settings, redis_client: "redis.Redis"
) -> Iterator[httpx.Client]:
    """The API on an unreachable database; `redis_client` fails if Redis is down."""
    services = build_services(
        settings.model_copy(update={"database_url": _UNREACHABLE})
    )
    try:
        with (
            serve_in_thread(create_app(services)) as base_url,
            httpx.Client(base_url=base_url, timeout=30) as client,
        ):
            yield client
    finally:
        services.close()


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"detail": "database unavailable; retry later"}
    assert "127.0.0.1" not in response.text
    assert "bridge_unreachable" not in response.text


def test_an_order_posted_while_the_database_is_down_gets_503_and_retry_after(
    api_without_db: httpx.Client,
) -> None:
    raw = encode(create_body())
    with structlog.testing.capture_logs() as logs:
        response = api_without_db.post(
            "/v1/orders", content=raw, headers=signed_headers("POST", "/v1/orders", raw)
        )
    _assert_unavailable(response)
    events = [e for e in logs if e["event"] == "database_unavailable"]
    assert events == [
        {
            "event": "database_unavailable",
            "error": "OperationalError",
            "log_level": "warning",
        }
    ]


def test_admin_reads_while_the_database_is_down_get_503(
    api_without_db: httpx.Client,
) -> None:
    response = api_without_db.get(
        "/v1/admin/orders", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    _assert_unavailable(response)


def test_readiness_reports_the_database(api_without_db: httpx.Client) -> None:
    response = api_without_db.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"
