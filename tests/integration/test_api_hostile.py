"""Hostile input at the edge: every probe answers 4xx, names the problem, and
changes nothing (no 5xx from PostgreSQL, int(), urlsplit, datetime ranges or
pydantic coercion). Also what is stored is not handed back where it should not
be: credentials in an old callback_url, an expired duplicate record's answer."""

import json
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import func, select, update

from bridge.api.app import create_app
from bridge.container import Services
from bridge.db.models import AuditEntry, IntakeRequest, Order, Server, Service
from bridge.ops import purge_orders
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from tests.cli_runner import as_json, bridge
from tests.factories import create_spec, submit
from tests.infra import ADMIN_TOKEN
from tests.signing import create_body, encode, signed_headers
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def row_counts(services: Services) -> dict[str, int]:
    with services.sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            or 0
            for model in (Order, Service, Server, IntakeRequest, AuditEntry)
        }


def post_raw(api: httpx.Client, raw: bytes, target: str = "/v1/orders") -> Any:
    return api.post(target, content=raw, headers=signed_headers("POST", target, raw))


def signed_get(api: httpx.Client, target: str) -> Any:
    return api.get(target, headers=signed_headers("GET", target))


@pytest.mark.parametrize(
    "timestamp",
    ["9" * 400, "²", "\u0661\u0667" + "\u0660" * 8, "-5", "1e9", "+1700000000", ""],
    ids=[
        "400-digits",
        "superscript",
        "arabic-digits",
        "negative",
        "float",
        "plus",
        "empty",
    ],
)
def test_malformed_timestamps_are_401_before_anything_else(
    api: httpx.Client, services: Services, server: Server, timestamp: str
) -> None:
    raw = encode(create_body())
    headers = signed_headers("POST", "/v1/orders", raw)
    headers["X-Bridge-Timestamp"] = timestamp.encode()  # type: ignore[assignment]
    response = api.post("/v1/orders", content=raw, headers=headers)
    assert response.status_code == 401
    assert "signature headers" in response.json()["detail"]
    assert row_counts(services)["orders"] == 0


def test_unsigned_garbage_body_is_401_not_a_decode_error(
    api: httpx.Client, services: Services
) -> None:
    for raw in (b"{not json", b"\xff\xfe", b"[" * 5000, b'{"a": "\\u0000"}'):
        response = api.post(
            "/v1/orders", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, (raw[:10], response.text)
    response = api.put(
        "/v1/admin/servers/x",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401


def test_signed_garbage_body_is_4xx(api: httpx.Client, services: Services) -> None:
    for raw in (b"{not json", b"\xff\xfe", b"[" * 50_000, b"null", b"[]"):
        response = post_raw(api, raw)
        assert response.status_code in (400, 422), (raw[:10], response.text)
    assert row_counts(services)["orders"] == 0


def _nul_in(body: dict[str, Any], *path: str) -> dict[str, Any]:
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "a\u0000b" if path[-1] != "password" else "long-pass\u0000word"
    return body


@pytest.mark.parametrize(
    "path",
    [
        ("account", "email"),
        ("account", "password"),
        ("callback_url",),
        ("server",),
        ("server_group",),
        ("domain",),
        ("order_id",),
    ],
)
def test_nul_in_any_intake_string_is_422_naming_the_field(
    api: httpx.Client, services: Services, server: Server, path: tuple[str, ...]
) -> None:
    before = row_counts(services)
    response = post_raw(api, encode(_nul_in(create_body(), *path)))
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"][1 : 1 + len(path)] == list(path) for e in errors), errors
    assert "long-pass" not in response.text
    assert row_counts(services) == before


def test_nul_in_a_mailbox_password_and_a_key_are_refused(
    api: httpx.Client, services: Services, server: Server
) -> None:
    body = create_body()
    body["mailboxes"][0]["password"] = "mailbox\u0000pass"
    response = post_raw(api, encode(body))
    assert response.status_code == 422
    loc = response.json()["detail"][0]["loc"]
    assert loc == ["body", "mailboxes", 0, "password"]
    body = {**create_body(), "extra\u0000key": 1}
    assert post_raw(api, encode(body)).status_code == 422
    assert row_counts(services)["orders"] == 0


def test_lone_surrogate_in_a_string_is_422(
    api: httpx.Client, services: Services, server: Server
) -> None:
    raw = encode(create_body()).replace(b"correct-horse-battery", b"pass\\ud800word1")
    response = post_raw(api, raw)
    assert response.status_code == 422
    assert "surrogate" in response.json()["detail"][0]["msg"]
    assert row_counts(services)["orders"] == 0


@pytest.mark.parametrize(
    "target",
    [
        "/v1/orders?order_id=%00",
        "/v1/orders?order_id=a%00b",
        "/v1/orders?order%00id=x",
        "/v1/services/%00",
        "/v1/services/svc%00-1",
        "/v1/orders/%00",
    ],
)
def test_nul_in_intake_query_or_path_is_422(
    api: httpx.Client, services: Services, target: str
) -> None:
    response = signed_get(api, target)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] in ("path", "query")


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("GET", "/v1/admin/orders?server=%00", None),
        ("GET", "/v1/admin/orders?since=1%00d", None),
        ("GET", "/v1/admin/audit?actor=ops%00", None),
        ("GET", "/v1/admin/orders/%00", None),
        ("GET", "/v1/admin/servers/a%00b", None),
        ("POST", "/v1/admin/orders/%00/cancel", None),
        ("POST", "/v1/admin/orders/x/resolve", {"note": "fixed\u0000"}),
        ("PUT", "/v1/admin/servers/new", {"url": "http://a\u0000.example"}),
        (
            "PUT",
            "/v1/admin/servers/new",
            {"url": "http://a.example", "api_key": "k\u0000"},
        ),
        (
            "PUT",
            "/v1/admin/servers/new",
            {"url": "http://a.example", "group": "\u0000"},
        ),
        ("POST", "/v1/services/s%00/payments", {"paid_until": "2030-01-01"}),
    ],
)
def test_nul_on_admin_and_payment_routes_is_422_and_changes_nothing(
    api: httpx.Client,
    services: Services,
    method: str,
    target: str,
    body: dict[str, Any] | None,
) -> None:
    before = row_counts(services)
    raw = json.dumps(body).encode() if body is not None else b""
    headers = {**ADMIN, **signed_headers(method, target, raw)}
    response = api.request(method, target, content=raw, headers=headers)
    assert response.status_code == 422, response.text
    assert row_counts(services) == before


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://billing.example:abc/cb", "invalid port"),
        ("http://billing.example:99999/cb", "invalid port"),
        ("https://user:secret-pass@billing.example/cb", "credentials"),
        ("https://token@billing.example/cb", "credentials"),
        ("ftp://billing.example/cb", "http"),
        ("http:///no-host", "http"),
    ],
)
def test_bad_callback_urls_are_422_never_stored(
    api: httpx.Client, services: Services, server: Server, url: str, reason: str
) -> None:
    response = post_raw(api, encode(create_body(callback_url=url)))
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"][0], error["loc"][-1]) == ("body", "callback_url")
    assert reason in error["msg"]
    assert "secret-pass" not in response.text
    assert row_counts(services)["orders"] == 0


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda b: b["mailboxes"][0].update(quota_mb=True), "quota_mb"),
        (lambda b: b["mailboxes"][0].update(quota_mb="10"), "quota_mb"),
        (lambda b: b["mailboxes"][0].update(quota_mb=10.0), "quota_mb"),
        (lambda b: b.update(paid_until=0), "paid_until"),
        (lambda b: b.update(paid_until=1_700_000_000), "paid_until"),
        (lambda b: b.update(paid_until="2030-01-01T00:00:00"), "paid_until"),
        (lambda b: b.update(ssl="true"), "ssl"),
        (lambda b: b.update(ssl=1), "ssl"),
    ],
    ids=[
        "quota-true",
        "quota-string",
        "quota-float",
        "paid-zero",
        "paid-timestamp",
        "paid-datetime",
        "ssl-string",
        "ssl-one",
    ],
)
def test_json_types_are_strict_where_they_matter(
    api: httpx.Client, services: Services, server: Server, mutate: Any, loc: str
) -> None:
    body = create_body()
    mutate(body)
    response = post_raw(api, encode(body))
    assert response.status_code == 422, response.text
    assert any(loc in e["loc"] for e in response.json()["detail"])
    assert row_counts(services)["orders"] == 0


def test_a_payment_day_must_be_text(api: httpx.Client, services: Services) -> None:
    target = "/v1/services/svc-1/payments"
    for value in (0, True, "2030-1-1", "2030-02-30"):
        response = post_raw(api, encode({"paid_until": value}), target)
        assert response.status_code == 422, (value, response.text)


@pytest.mark.parametrize(
    "target",
    [
        "/v1/admin/orders?page=100000000000000000000",
        "/v1/admin/orders?page=1000001",
        "/v1/admin/orders?per_page=201",
        "/v1/admin/audit?page=100000000000000000000",
        "/v1/admin/orders?since=99999999999d",
        "/v1/admin/orders?since=1e400d",
        "/v1/admin/audit?since=99999999999w",
        "/v1/admin/orders?since=" + "9" * 100,
    ],
)
def test_out_of_range_admin_queries_are_422(api: httpx.Client, target: str) -> None:
    response = api.get(target, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "query"


@pytest.mark.parametrize(
    "target",
    ["/v1/usage?page=100000000000000000000", "/v1/usage?page=1000001"],
)
def test_out_of_range_usage_pages_are_422(api: httpx.Client, target: str) -> None:
    response = signed_get(api, target)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "page"]


def _integer_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The integer alternatives of a parameter's schema (`int | None` is anyOf)."""
    options = schema.get("anyOf", [schema])
    return [option for option in options if option.get("type") == "integer"]


def test_every_integer_path_or_query_parameter_has_a_maximum(
    services: Services,
) -> None:
    # Without one, a client can send 10^20 and PostgreSQL answers "out of range"
    # with a 500; walking the served document keeps a new route from missing it.
    document = create_app(services).openapi()
    checked, unbounded = [], []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] not in ("path", "query"):
                    continue
                for schema in _integer_schemas(parameter["schema"]):
                    where = f"{method.upper()} {path} {parameter['name']}"
                    checked.append(where)
                    if "maximum" not in schema:
                        unbounded.append(where)
    assert unbounded == []
    assert "GET /v1/usage page" in checked  # the walk sees integer parameters


@pytest.mark.parametrize(
    "since",
    ["0001-01-01T00:00%2B14:00", "9999-12-31T23:59-14:00"],
    ids=["year-0-in-utc", "year-10000-in-utc"],
)
@pytest.mark.parametrize(
    "route",
    ["/v1/admin/orders", "/v1/admin/audit", "/v1/usage"],
)
def test_moments_without_a_utc_form_are_422_naming_since(
    api: httpx.Client, route: str, since: str
) -> None:
    # Valid ISO 8601, but converting them to UTC overflows the datetime range.
    target = f"{route}?since={since}"
    headers = {**ADMIN, **signed_headers("GET", target)}
    response = api.get(target, headers=headers)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "since"]
    assert "UTC" in error["msg"]


def test_the_largest_page_still_answers(api: httpx.Client) -> None:
    response = api.get("/v1/admin/orders?page=1000000&per_page=200", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["data"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capacity", 2**31),
        ("capacity", -5),
        ("capacity", True),
        ("rate_limit_per_min", 0),
        ("rate_limit_per_min", 1_000_001),
        ("rate_limit_per_min", "60"),
        ("force_login", "yes"),
        ("webhooks", "yes"),
        ("webhooks", 1),
        ("url", "http://panel.example:99999"),
        ("url", "https://admin:pw@panel.example"),
    ],
)
def test_out_of_range_or_loose_server_fields_are_422(
    api: httpx.Client, services: Services, field: str, value: Any
) -> None:
    body = {"url": "http://panel.example", "api_key": "k", field: value}
    response = api.put("/v1/admin/servers/new", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]
    assert row_counts(services)["servers"] == 0


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("url", "http://a b", "spaces"),
        ("url", "http://panel.example/\tx", "control characters"),
        ("ca_bundle", "/etc/passwd", "not a PEM CA bundle"),
        ("ca_bundle", "/no/such/ca.pem", "no such file"),
    ],
)
def test_a_server_url_or_ca_bundle_the_client_cannot_use_is_422(
    api: httpx.Client,
    services: Services,
    server: Server,
    field: str,
    value: str,
    reason: str,
) -> None:
    # Checked by save_server, shared with the CLI: the schema let "http://a b"
    # through (urlsplit takes "a b" for a host) and any existing file as a bundle.
    before, stored = row_counts(services), stored_server(services, "sim")
    body = {"url": "http://panel.example", "api_key": "k", field: value}
    added = api.put("/v1/admin/servers/new", json=body, headers=ADMIN)
    assert_refused(added, field, reason)
    edited = api.put("/v1/admin/servers/sim", json={field: value}, headers=ADMIN)
    assert_refused(edited, field, reason)
    assert row_counts(services) == before
    assert stored_server(services, "sim") == stored


@pytest.mark.parametrize("value", ["60", 60.0, True])
def test_a_loose_sso_lifetime_is_422(api: httpx.Client, value: Any) -> None:
    # Refused by the body's schema before the service is even looked up (a
    # valid lifetime for this unknown service would be a 404).
    target = "/v1/services/svc-unknown/sso"
    response = post_raw(api, encode({"expires_in": value}), target)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "expires_in"]


def test_a_server_name_longer_than_the_column_is_422(
    api: httpx.Client, services: Services
) -> None:
    body = {"url": "http://panel.example", "api_key": "k"}
    response = api.put("/v1/admin/servers/" + "n" * 65, json=body, headers=ADMIN)
    assert response.status_code == 422
    assert row_counts(services)["servers"] == 0


def test_options_and_unserved_methods_list_every_method_of_the_path(
    api: httpx.Client,
) -> None:
    options = api.options("/v1/admin/servers/x")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, PUT, DELETE, OPTIONS"
    patched = api.patch("/v1/admin/servers/x", headers=ADMIN)
    assert patched.status_code == 405
    assert patched.headers["allow"] == "GET, PUT, DELETE, OPTIONS"
    assert api.options("/v1/orders").headers["allow"] == "GET, POST, OPTIONS"
    assert api.delete("/healthz").headers["allow"] == "GET, OPTIONS"
    assert api.options("/nowhere").status_code == 404


def test_credentials_in_a_stored_callback_url_are_never_shown(
    api: httpx.Client, services: Services, settings: Settings, server: Server
) -> None:
    # Intake refuses them now; an order stored before the upgrade may hold them.
    order_uuid = submit(services, create_spec())
    with services.sessions.begin() as session:
        session.execute(
            update(Order)
            .where(Order.id == order_uuid)
            .values(callback_url="https://billing:secret-pass@billing.example/cb?x=1")
        )
    response = api.get(f"/v1/admin/orders/{order_uuid}", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["order"]["callback_url"] == "https://billing.example/cb?x=1"
    shown = as_json(bridge(settings, "orders", "show", str(order_uuid), "--json"))
    assert shown["order"]["callback_url"] == "https://billing.example/cb?x=1"
    listing = api.get("/v1/admin/orders", headers=ADMIN)
    for text in (response.text, json.dumps(shown), listing.text):
        assert "secret-pass" not in text
        assert "billing:" not in text


def test_an_expired_duplicate_record_is_the_same_409_before_and_after_its_purge(
    api: httpx.Client, services: Services, server: Server, clock: FakeClock
) -> None:
    raw = encode(create_body())

    def post() -> httpx.Response:
        timestamp = int(clock().timestamp())  # the API's clock, advanced below
        headers = signed_headers("POST", "/v1/orders", raw, timestamp=timestamp)
        return api.post("/v1/orders", content=raw, headers=headers)

    assert post().status_code == 202
    assert post().status_code == 200  # a replay within the record's lifetime
    clock.advance(services.settings.intake_idempotency_ttl_seconds + 1)
    expired = post()  # the record is still there, not yet purged
    assert expired.status_code == 409, expired.text
    assert "already used by an earlier order" in expired.json()["detail"]
    assert purge_orders(services, clock(), "ops:test").intake_requests == 1
    purged = post()
    assert (purged.status_code, purged.json()) == (409, expired.json())
    assert row_counts(services)["orders"] == 1


def stored_server(services: Services, name: str) -> tuple[str, dict[str, Any]]:
    """A server's sealed credentials and route overrides, as stored."""
    with services.sessions() as session:
        row = session.scalars(select(Server).where(Server.name == name)).one()
        return row.credentials, dict(row.route_overrides)


def assert_refused(response: httpx.Response, field: str, reason: str) -> None:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert reason in error["msg"]


@pytest.mark.parametrize(
    "key",
    ["wsp_clé", "wsp_a b", "wsp_\x01x", "wsp_\x7fx", "wsp_\u2028x"],
    ids=["accent", "space", "control", "delete", "line-separator"],
)
def test_an_api_key_that_cannot_go_in_a_header_is_422_and_changes_nothing(
    api: httpx.Client, services: Services, server: Server, key: str
) -> None:
    # Stored, it made every `servers test` and order of the server a 500 /
    # `internal` (httpx encodes the Authorization header as ASCII).
    before, stored = row_counts(services), stored_server(services, "sim")
    body = {"url": "http://panel.example", "api_key": key}
    added = api.put("/v1/admin/servers/new", json=body, headers=ADMIN)
    assert_refused(added, "api_key", "printable ASCII")
    edited = api.put("/v1/admin/servers/sim", json={"api_key": key}, headers=ADMIN)
    assert_refused(edited, "api_key", "printable ASCII")
    assert row_counts(services) == before
    assert stored_server(services, "sim") == stored
    tested = api.post("/v1/admin/servers/sim/test", headers=ADMIN)
    assert tested.json()["report"]["authenticated"] is True


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("!!!", "base32"),
        ("JBSW Y3DP EHPK 3PXP JBSW Y3DP", "base32"),
        ("é" * 32, "base32"),
        ("A" * 22, "base32"),  # 22 characters is never a whole number of bytes
        ("JBSWY3DP", "112 bits"),  # base32, but too short for pyotp
    ],
    ids=["punctuation", "spaces", "non-ascii", "bad-length", "short"],
)
def test_a_totp_secret_pyotp_cannot_use_is_422_and_changes_nothing(
    api: httpx.Client, services: Services, secret: str, reason: str
) -> None:
    before = row_counts(services)
    body = {
        "url": "http://panel.example",
        "username": "u",
        "password": "p",
        "totp_secret": secret,
    }
    response = api.put("/v1/admin/servers/new", json=body, headers=ADMIN)
    assert_refused(response, "totp_secret", reason)
    assert row_counts(services) == before


def test_unicode_login_credentials_and_a_loose_totp_secret_log_in(
    api: httpx.Client,
    services: Services,
    simulator: SimulatorServer,
    sim: SimControl,
) -> None:
    # What is NOT refused: the username and password travel in the login's
    # JSON body, where any Unicode is fine, and pyotp reads a base32 secret
    # case-insensitively with its padding left off.
    secret = pyotp.random_base32(length=34)  # 34 characters: 6 "=" left off
    sim.config(password="pässwörd-€-密码", totp_secret=secret)
    body = {
        "url": simulator.base_url,
        "username": simulator.credentials().username,
        "password": "pässwörd-€-密码",
        "totp_secret": secret.lower(),
    }
    saved = api.put("/v1/admin/servers/login", json=body, headers=ADMIN)
    assert saved.status_code == 201, saved.text
    tested = api.post("/v1/admin/servers/login/test", headers=ADMIN)
    assert tested.status_code == 200, tested.text
    assert tested.json()["report"]["authenticated"] is True


@pytest.mark.parametrize(
    ("operation", "path", "reason"),
    [
        ("create_user", "/api/v1/users/{}", "has no name"),
        ("get_user", "/api/v1/users/{username!z}", "conversion"),
        ("get_user", "/api/v1/users/{username:>99999999}", "format spec"),
    ],
    ids=["positional", "conversion", "format-spec"],
)
def test_a_route_placeholder_that_is_not_plain_is_422_and_changes_nothing(
    api: httpx.Client,
    services: Services,
    settings: Settings,
    server: Server,
    operation: str,
    path: str,
    reason: str,
) -> None:
    # Each kept the default's field names, so they were stored; then `{}` made
    # `servers test` a 500, `!z` failed the orders that used it and `:>99999999`
    # built a 100 MB URL.
    stored = stored_server(services, "sim")
    body = {"route_overrides": {operation: {"path": path}}}
    response = api.put("/v1/admin/servers/sim", json=body, headers=ADMIN)
    assert_refused(response, "route_overrides", reason)
    result = bridge(
        settings, "servers", "edit", "sim", "--route-override", f"{operation}={path}"
    )
    assert result.returncode == 2, result
    assert "--route-override" in result.stderr
    assert reason in result.stderr
    assert stored_server(services, "sim") == stored
    tested = api.post("/v1/admin/servers/sim/test", headers=ADMIN)
    assert tested.status_code == 200, tested.text


@pytest.mark.parametrize(
    ("args", "option", "reason"),
    [
        (["--api-key", "wsp_clé"], "--api-key", "printable ASCII"),
        (
            ["--username", "u", "--password", "p", "--totp-secret", "!!!"],
            "--totp-secret",
            "base32",
        ),
    ],
    ids=["api-key", "totp-secret"],
)
def test_the_cli_refuses_the_same_credentials_naming_the_option(
    services: Services,
    settings: Settings,
    server: Server,
    args: list[str],
    option: str,
    reason: str,
) -> None:
    before, stored = row_counts(services), stored_server(services, "sim")
    url = ["--url", "http://a.example"]
    added = bridge(settings, "servers", "add", "new", *url, *args)
    edited = bridge(settings, "servers", "edit", "sim", *args)
    for result in (added, edited):
        assert result.returncode == 2, result
        assert option in result.stderr
        assert reason in result.stderr
    assert row_counts(services) == before
    assert stored_server(services, "sim") == stored
