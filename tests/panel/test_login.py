"""Login mode: the Redis-cached JWT, X-New-Token swaps, re-login on 401, TOTP, force."""

import jwt
import pyotp
import pytest
import redis

from bridge.domain.model import AuthMode
from bridge.errors import RateLimitedError
from bridge.panel import PanelAuthError, PanelBusyError, PanelClient
from tests.panel.conftest import MakeClient, Sim

pytestmark = pytest.mark.integration

LOGIN = AuthMode.LOGIN


def calls(sim: Sim) -> list[tuple[str, str, int]]:
    return [(r["method"], r["path"], r["status"]) for r in sim.requests()]


def cached(panel_redis: "redis.Redis", client: PanelClient) -> str | None:
    assert client.token_cache is not None
    value = panel_redis.get(client.token_cache.key)
    return value.decode() if isinstance(value, bytes) else value


def test_processes_of_one_host_share_one_login(
    make_client: MakeClient, sim: Sim, panel_redis: "redis.Redis"
) -> None:
    first, second = make_client(mode=LOGIN), make_client(mode=LOGIN)
    first.get_user("admin")
    second.get_user("admin")
    logins = [c for c in calls(sim) if c[1] == "/api/v1/auth/login"]
    assert len(logins) == 1
    assert cached(panel_redis, first) is not None


def test_other_hosts_log_in_separately(make_client: MakeClient, sim: Sim) -> None:
    make_client(mode=LOGIN, host_id="web1").get_user("admin")
    make_client(mode=LOGIN, host_id="web2").get_user("admin")
    logins = [c for c in calls(sim) if c[1] == "/api/v1/auth/login"]
    assert len(logins) == 2


def test_x_new_token_replaces_the_cached_token(
    make_client: MakeClient, sim: Sim, panel_redis: "redis.Redis"
) -> None:
    sim.configure(token_lifetime_s=3600)
    client = make_client(mode=LOGIN)
    client.get_user("admin")
    old = cached(panel_redis, client)
    sim.post("clock", {"advance_seconds": 2000})  # past half of the lifetime
    response = client.get_user("admin")
    new = cached(panel_redis, client)
    assert new is not None
    assert old is not None
    assert response.headers["x-new-token"] == new
    assert new != old
    assert (
        jwt.decode(new, options={"verify_signature": False})["exp"]
        > jwt.decode(old, options={"verify_signature": False})["exp"]
    )
    assert len([c for c in calls(sim) if c[1] == "/api/v1/auth/login"]) == 1


def test_revoked_token_leads_to_one_relogin_and_one_repeat(
    make_client: MakeClient, sim: Sim, panel_redis: "redis.Redis"
) -> None:
    client = make_client(mode=LOGIN)
    client.get_user("admin")
    old = cached(panel_redis, client)
    sim.post("revoke")
    assert client.get_user("admin").status == 200
    assert calls(sim) == [
        ("POST", "/api/v1/auth/login", 200),
        ("GET", "/api/v1/users/admin", 200),
        ("GET", "/api/v1/users/admin", 401),
        ("POST", "/api/v1/auth/login", 200),
        ("GET", "/api/v1/users/admin", 200),
    ]
    assert cached(panel_redis, client) not in (None, old)


def test_401_whose_relogin_is_refused_is_an_auth_error_without_a_loop(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client(mode=LOGIN)
    client.get_user("admin")
    sim.post("fail-next", {"count": 3, "status": 401})
    with pytest.raises(PanelAuthError):
        client.get_user("admin")
    assert calls(sim)[2:] == [
        ("GET", "/api/v1/users/admin", 401),
        ("POST", "/api/v1/auth/login", 401),
    ]


def test_api_key_401_is_an_auth_error_without_login(
    make_client: MakeClient, sim: Sim
) -> None:
    sim.post("fail-next", {"count": 1, "status": 401})
    with pytest.raises(PanelAuthError):
        make_client().get_user("admin")
    assert calls(sim) == [("GET", "/api/v1/users/admin", 401)]


def test_login_does_not_spend_the_credential_budget(
    make_client: MakeClient, sim: Sim
) -> None:
    client = make_client(mode=LOGIN, rate_limit_per_min=1)
    assert client.get_user("admin").status == 200
    with pytest.raises(RateLimitedError):
        client.get_user("admin")
    assert len(calls(sim)) == 2  # login + one call


def test_totp_code_is_sent_when_a_secret_is_configured(
    make_client: MakeClient, sim: Sim
) -> None:
    secret = pyotp.random_base32()
    sim.configure(totp_secret=secret)
    assert make_client(mode=LOGIN, totp_secret=secret).get_user("admin").status == 200


def test_panel_asking_for_2fa_without_a_secret_is_an_auth_error(
    make_client: MakeClient, sim: Sim
) -> None:
    sim.configure(totp_secret=pyotp.random_base32())
    with pytest.raises(PanelAuthError, match="2FA"):
        make_client(mode=LOGIN).get_user("admin")


def test_wrong_password_is_an_auth_error(make_client: MakeClient) -> None:
    with pytest.raises(PanelAuthError) as caught:
        make_client(mode=LOGIN, password="wrong").get_user("admin")
    assert caught.value.operation == "auth_login"


def test_existing_session_without_force_is_an_auth_error(
    make_client: MakeClient, sim: Sim
) -> None:
    sim.configure(single_session=True)
    make_client(mode=LOGIN, host_id="web1").get_user("admin")
    with pytest.raises(PanelAuthError) as caught:
        make_client(mode=LOGIN, host_id="web2").get_user("admin")
    assert caught.value.panel_code == "EXISTING_SESSION"


def test_force_login_replaces_the_other_session(
    make_client: MakeClient, sim: Sim
) -> None:
    sim.configure(single_session=True)
    make_client(mode=LOGIN, host_id="web1").get_user("admin")
    forced = make_client(mode=LOGIN, host_id="web2", force_login=True)
    assert forced.get_user("admin").status == 200


def test_login_in_progress_elsewhere_is_busy_not_a_second_login(
    make_client: MakeClient, sim: Sim, panel_redis: "redis.Redis"
) -> None:
    client = make_client(mode=LOGIN)
    assert client.token_cache is not None
    panel_redis.set(client.token_cache.lock_key, "other-process", px=10_000)
    with pytest.raises(PanelBusyError):
        client.get_user("admin")
    assert calls(sim) == []


def test_config_repr_hides_secrets(make_client: MakeClient) -> None:
    secret = pyotp.random_base32()
    client = make_client(mode=LOGIN, totp_secret=secret)
    text = repr(client.config)
    assert str(client.config.password) not in text
    assert secret not in text
    assert "admin" in text
