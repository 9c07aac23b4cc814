"""PanelClient's typed operations against the simulator over real HTTP."""

import time
import uuid
from typing import Any

import pytest

from bridge.domain.model import AuthMode
from bridge.errors import ConfigurationError, RateLimitedError
from bridge.panel import (
    PanelAlreadyExistsError,
    PanelClient,
    PanelConfig,
    PanelKeyMismatchError,
    PanelNotFoundError,
    PanelNotSentError,
    PanelOutcomeUnknownError,
    PanelRejectedError,
    PanelResponse,
    PanelTimeouts,
)
from bridge.settings import Settings
from tests.panel.conftest import MakeClient, Sim

pytestmark = pytest.mark.integration


def key() -> str:
    return str(uuid.uuid4())


def create_alice(
    client: PanelClient, idempotency_key: str | None = None
) -> PanelResponse:
    return client.create_user(
        "alice",
        "alice@example.com",
        "s3cret-pass",
        "default",
        idempotency_key=idempotency_key or key(),
    )


def test_create_user_sends_the_key_and_creates_once(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client()
    k = key()
    first = create_alice(client, k)
    again = create_alice(client, k)
    assert (first.status, first.replayed) == (201, False)
    assert (again.status, again.replayed, again.data) == (201, True, first.data)
    assert sim.get("ledger")["user"] == {"alice": 1}
    creates = [r for r in sim.requests() if r["method"] == "POST"]
    assert [r["idempotency_key"] for r in creates] == [k, k]


def test_second_create_with_a_new_key_is_already_exists(
    make_client: MakeClient,
) -> None:
    client = make_client()
    create_alice(client)
    with pytest.raises(PanelAlreadyExistsError) as caught:
        create_alice(client)
    assert caught.value.status == 409
    assert caught.value.operation == "create_user"


@pytest.mark.parametrize("mismatch_status", [409, 422])
def test_key_reused_with_another_body_is_key_mismatch(
    make_client: MakeClient, sim: Sim, mismatch_status: int
) -> None:
    sim.configure(key_mismatch_status=mismatch_status)
    client = make_client()
    k = key()
    create_alice(client, k)
    with pytest.raises(PanelKeyMismatchError) as caught:
        client.create_user(
            "alice", "other@example.com", "pw-123456", "default", idempotency_key=k
        )
    assert caught.value.status == mismatch_status


def test_every_write_carries_its_idempotency_key(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client()
    keys = [key() for _ in range(10)]
    create_alice(client, keys[0])
    client.create_domain("alice.example", "alice", idempotency_key=keys[1])
    client.issue_ssl("alice.example", idempotency_key=keys[2])
    client.renew_ssl("alice.example", idempotency_key=keys[3])
    client.create_mailbox(
        "alice.example", "info", "mail-pass-1", 100, idempotency_key=keys[4]
    )
    client.suspend_user("alice", "non_payment", idempotency_key=keys[5])
    client.unsuspend_user("alice", idempotency_key=keys[6])
    client.change_package("alice", "pro", idempotency_key=keys[7])
    client.change_password("alice", "n3w-password", idempotency_key=keys[8])
    client.delete_user("alice", idempotency_key=keys[9])
    writes = [r for r in sim.requests() if r["method"] != "GET"]
    assert [r["idempotency_key"] for r in writes] == keys
    assert all(r["status"] in (200, 201) for r in writes)


def test_write_without_a_key_is_refused_before_sending(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="idempotency_key"):
        client.request("delete_user", params={"username": "alice"})
    assert sim.requests() == []


def test_reads_return_the_panel_objects(make_client: MakeClient) -> None:
    client = make_client()
    create_alice(client)
    client.create_domain("alice.example", "alice", idempotency_key=key())
    assert client.get_user("alice").data["package"] == "default"
    assert client.get_domain("alice.example").data["owner"] == "alice"
    assert client.get_package("pro").data["name"] == "pro"
    assert client.get_ssl("alice.example").data["status"] == "none"
    assert "default" in [p["name"] for p in client.list_packages().items]


def test_desired_state_answers_are_typed_not_hidden(make_client: MakeClient) -> None:
    # The client only types answers; bridge.outcomes decides they mean "done".
    client = make_client()
    create_alice(client)
    client.suspend_user("alice", "abuse", idempotency_key=key())
    assert client.suspend_user("alice", "abuse", idempotency_key=key()).status == 200
    client.delete_user("alice", idempotency_key=key())
    with pytest.raises(PanelNotFoundError):
        client.delete_user("alice", idempotency_key=key())


def test_unknown_user_is_not_found(make_client: MakeClient) -> None:
    with pytest.raises(PanelNotFoundError):
        make_client().get_user("nobody")


@pytest.mark.parametrize(
    ("envelope", "status"), [("flat", 400), ("nested", 422), ("lean", 400)]
)
def test_validation_error_is_rejected_in_every_envelope(
    make_client: MakeClient, sim: Sim, envelope: str, status: int
) -> None:
    sim.configure(envelope=envelope, validation_status=status)
    with pytest.raises(PanelRejectedError) as caught:
        make_client().create_user(
            "Bad Name!", "x@example.com", "pw-123456", "default", idempotency_key=key()
        )
    assert caught.value.status == status
    assert caught.value.panel_code == "VALIDATION_ERROR"
    assert caught.value.message


@pytest.mark.parametrize("empty", [None, []])
def test_empty_mailbox_list_in_either_shape_is_empty(
    make_client: MakeClient, sim: Sim, empty: list[object] | None
) -> None:
    sim.configure(empty_accounts=empty)
    page = make_client().list_mailboxes("alice.example")
    assert (page.items, page.total) == ([], 0)


def test_mailbox_list_returns_the_accounts(make_client: MakeClient) -> None:
    client = make_client()
    create_alice(client)
    client.create_domain("alice.example", "alice", idempotency_key=key())
    client.create_mailbox(
        "alice.example", "info", "mail-pass-1", 0, idempotency_key=key()
    )
    page = client.list_mailboxes("alice.example")
    assert [m["email"] for m in page.items] == ["info@alice.example"]


def test_list_reads_plain_and_paginated_shapes(make_client: MakeClient) -> None:
    client = make_client()
    create_alice(client)
    plain = client.list_users()
    paged = client.list_users(page=1, per_page=1)
    assert {u["username"] for u in plain.items} == {"admin", "alice"}
    assert (len(paged.items), paged.total, paged.last_page, paged.has_more) == (
        1,
        2,
        2,
        True,
    )


def test_route_override_changes_the_path_sent(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client(route_overrides={"create_user": {"path": "/api/v1/accounts/"}})
    with pytest.raises(PanelNotFoundError):
        create_alice(client)
    assert [r["path"] for r in sim.requests()] == ["/api/v1/accounts/"]


def test_route_override_to_the_slashless_twin_works(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client(route_overrides={"list_users": {"path": "/api/v1/users"}})
    assert client.list_users().total == 1
    assert sim.requests()[0]["path"] == "/api/v1/users"


def test_panel_5xx_is_unknown_on_a_write_and_not_sent_on_a_read(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client()
    sim.post("fail-next", {"count": 2, "status": 503})
    with pytest.raises(PanelOutcomeUnknownError):
        create_alice(client)
    with pytest.raises(PanelNotSentError):
        client.get_user("admin")


def test_connection_dropped_after_apply_is_unknown_then_replayed(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client()
    k = key()
    sim.post("faults", {"drop_after_apply_rate": 1.0})
    with pytest.raises(PanelOutcomeUnknownError):
        create_alice(client, k)
    sim.post("faults/clear")
    assert create_alice(client, k).replayed is True
    assert sim.get("ledger")["user"] == {"alice": 1}


def test_unreachable_panel_is_not_sent(make_client: MakeClient) -> None:
    client = make_client(base_url="http://127.0.0.1:1")
    with pytest.raises(PanelNotSentError):
        create_alice(client)


def test_connection_report_names_version_me_license_and_limits(
    make_client: MakeClient,
) -> None:
    report = make_client().test_connection()
    assert report.me["username"] == "admin"
    assert report.version
    assert report.license is not None
    assert report.rate_limit.limit is not None
    assert report.tls is None  # plain HTTP simulator
    assert report.notes == ()


def test_connection_report_waits_for_budget_only_when_given_sleep(
    make_client: MakeClient,
) -> None:
    client = make_client(rate_limit_per_min=240)  # one call per ~0.26 s
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    report = client.test_connection(sleep=sleep)
    assert report.me["username"] == "admin"
    assert len(waits) >= 2  # version and license each waited for a token
    with pytest.raises(RateLimitedError):
        client.test_connection()


def test_connection_report_notes_what_a_user_key_may_not_read(
    make_client: MakeClient, sim: Sim
) -> None:
    admin = make_client()
    create_alice(admin)
    minted = sim.control.post(
        sim.url() + "/api/v1/users/alice/api-keys",
        json={"name": "bridge", "permissions": ["all"]},
        headers={"Authorization": f"Bearer {admin.config.api_key}"},
    )
    report = make_client(api_key=minted.json()["api_key"]).test_connection()
    assert report.me["username"] == "alice"
    assert report.license is None
    assert [n.split(":")[0] for n in report.notes] == ["license"]


@pytest.mark.parametrize("operation", ["auth_login", "no_such_operation"])
def test_unknown_or_internal_operations_are_refused(
    make_client: MakeClient, sim: Sim, operation: str
) -> None:
    with pytest.raises(ValueError, match=r"operation|client itself"):
        make_client().request(operation)
    assert sim.requests() == []


@pytest.mark.parametrize(
    "values",
    [
        {"auth_mode": AuthMode.API_KEY},
        {"auth_mode": AuthMode.LOGIN, "username": "admin"},
        {"auth_mode": AuthMode.API_KEY, "api_key": "wsp_x", "rate_limit_per_min": 0},
    ],
    ids=["api-key-missing", "password-missing", "zero-limit"],
)
def test_incomplete_server_config_is_a_configuration_error(
    values: dict[str, Any],
) -> None:
    with pytest.raises(ConfigurationError):
        PanelConfig(name="p", base_url="https://panel.test:3082", **values)


def test_timeouts_come_from_settings() -> None:
    settings = Settings(
        panel_connect_timeout=1,
        panel_read_timeout=2,
        panel_write_timeout=3,
        panel_pool_timeout=4,
    )
    timeouts = PanelTimeouts.from_settings(settings).as_httpx()
    assert (timeouts.connect, timeouts.read, timeouts.write, timeouts.pool) == (
        1,
        2,
        3,
        4,
    )
