"""Login-mode authentication: JWTs, 2FA, refresh, revocation, sessions, login limit."""

from typing import Any

import jwt
import pyotp


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_login_returns_token_user_and_lifetime(panel):
    response = panel.login(panel.creds.username, panel.creds.password)
    body = response.json()

    assert response.status_code == 200
    assert body["expires_in"] == 86400
    assert body["user"]["username"] == "admin"
    assert set(body["user"]) >= {"email", "role", "status", "can_use_ssl"}


def test_admin_jwt_carries_sub_role_exp_iat_tv_and_ip(panel):
    token = panel.admin_token()

    decoded = claims(token)

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert decoded["sub"] == "admin"
    assert decoded["role"] == "admin"
    assert decoded["exp"] - decoded["iat"] == 86400
    assert decoded["tv"] == 1
    assert decoded["ip"] == "127.0.0.1"


def test_user_jwt_is_not_ip_bound(panel):
    panel.create_user("alice")

    token = panel.login("alice", "alice-pw").json()["token"]

    assert "ip" not in claims(token)


def test_jwt_authenticates_api_calls(panel):
    token = panel.admin_token()

    assert panel.get("/api/v1/auth/me", token=token).json()["username"] == "admin"


def test_login_by_email(panel):
    panel.create_user("alice")

    assert panel.login("alice@example.com", "alice-pw").status_code == 200


def test_wrong_password_is_401_invalid_credentials(panel):
    response = panel.login("admin", "wrong")

    assert response.status_code == 401
    assert response.json()["error"] == "Invalid credentials"


def test_missing_password_is_400_validation_error(panel):
    response = panel.raw("POST", "/api/v1/auth/login", json={"username": "admin"})

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert response.json()["error"] == "Username and password are required"


def test_totp_user_gets_2fa_challenge_without_code(panel):
    panel.configure(totp_secret=pyotp.random_base32())

    response = panel.login(panel.creds.username, panel.creds.password)

    assert response.status_code == 200
    assert response.json()["requires_2fa"] is True
    assert "token" not in response.json()


def test_wrong_totp_code_is_401(panel):
    panel.configure(totp_secret=pyotp.random_base32())

    response = panel.login(panel.creds.username, panel.creds.password, totp_code="1")

    assert response.status_code == 401
    assert response.json()["error"] == "Invalid 2FA code"


def test_valid_totp_code_on_panel_clock_logs_in(panel):
    secret = pyotp.random_base32()
    panel.configure(totp_secret=secret)
    code = pyotp.TOTP(secret).at(int(panel.advance(3600)))

    response = panel.login(panel.creds.username, panel.creds.password, totp_code=code)

    assert response.status_code == 200
    assert "token" in response.json()


def test_no_new_token_while_more_than_half_the_lifetime_remains(panel):
    token = panel.admin_token()
    panel.advance(86400 * 0.4)

    response = panel.get("/api/v1/auth/me", token=token)

    assert "X-New-Token" not in response.headers


def test_sliding_refresh_sends_new_token_past_half_lifetime(panel):
    token = panel.admin_token()
    panel.advance(86400 * 0.6)

    response = panel.get("/api/v1/auth/me", token=token)
    fresh = response.headers["X-New-Token"]

    assert response.status_code == 200
    assert claims(fresh)["exp"] > claims(token)["exp"]
    assert claims(fresh)["tv"] == claims(token)["tv"]
    assert claims(fresh)["ip"] == claims(token)["ip"]
    assert panel.get("/api/v1/auth/me", token=fresh).status_code == 200


def test_expired_token_is_401_token_expired(panel):
    token = panel.admin_token()
    panel.advance(86401)

    response = panel.get("/api/v1/auth/me", token=token)

    assert response.status_code == 401
    assert response.json()["error"] == "Token expired"


def test_token_lifetime_is_configurable(panel):
    panel.configure(token_lifetime_s=120)

    response = panel.login(panel.creds.username, panel.creds.password)

    assert response.json()["expires_in"] == 120
    assert (
        claims(response.json()["token"])["exp"]
        - claims(response.json()["token"])["iat"]
        == 120
    )


def test_control_revoke_bumps_every_token_version(panel):
    token = panel.admin_token()

    panel.control("POST", "revoke")
    response = panel.get("/api/v1/auth/me", token=token)

    assert response.status_code == 401
    assert response.json()["error"] == "Token revoked"
    assert panel.get("/api/v1/auth/me", token=panel.admin_token()).status_code == 200


def test_password_change_revokes_the_users_tokens(panel):
    panel.create_user("alice")
    token = panel.login("alice", "alice-pw").json()["token"]

    panel.put("/api/v1/users/alice/password", json={"password": "new-secret"})

    assert panel.get("/api/v1/auth/me", token=token).json()["error"] == "Token revoked"
    assert panel.login("alice", "new-secret").status_code == 200


def test_token_bound_to_login_ip(panel):
    panel.configure(trust_forwarded_for=True)
    token = panel.admin_token(headers={"X-Forwarded-For": "10.0.0.1"})

    moved = panel.get(
        "/api/v1/auth/me", token=token, headers={"X-Forwarded-For": "10.0.0.2"}
    )
    same = panel.get(
        "/api/v1/auth/me", token=token, headers={"X-Forwarded-For": "10.0.0.1"}
    )

    assert moved.status_code == 401
    assert moved.json()["error"] == "Token bound to a different IP"
    assert same.status_code == 200


def test_ip_binding_can_be_switched_off(panel):
    panel.configure(ip_binding=False)

    assert "ip" not in claims(panel.admin_token())


def test_single_session_refuses_second_login_with_session_info(panel):
    panel.configure(single_session=True)
    panel.admin_token()

    response = panel.login(panel.creds.username, panel.creds.password)
    body = response.json()

    assert response.status_code == 409
    assert body["existing_session"] is True
    assert set(body["session_info"]) == {"ip", "device", "login_at", "last_seen"}


def test_forced_login_kicks_the_other_session(panel):
    panel.configure(single_session=True)
    first = panel.admin_token()

    second = panel.admin_token(force=True)

    assert panel.get("/api/v1/auth/me", token=first).status_code == 401
    assert panel.get("/api/v1/auth/me", token=second).status_code == 200


def test_logout_ends_the_single_session(panel):
    panel.configure(single_session=True)
    token = panel.admin_token()

    logout = panel.post("/api/v1/auth/logout", token=token)

    assert logout.json() == {"message": "Logged out successfully"}
    assert panel.login(panel.creds.username, panel.creds.password).status_code == 200


def test_explicit_refresh_returns_a_fresh_token(panel):
    token = panel.admin_token()
    panel.advance(10)

    response = panel.post("/api/v1/auth/refresh", token=token)

    assert response.status_code == 200
    assert claims(response.json()["token"])["iat"] > claims(token)["iat"]


def test_login_is_limited_to_20_per_minute_per_ip(panel):
    statuses = [panel.login("admin", "wrong").status_code for _ in range(20)]

    limited = panel.login(panel.creds.username, panel.creds.password)

    assert set(statuses) == {401}
    assert limited.status_code == 429
    assert limited.json()["code"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) <= 60
    panel.advance(60)
    assert panel.login(panel.creds.username, panel.creds.password).status_code == 200


def test_login_limit_is_per_client_ip(panel):
    panel.configure(trust_forwarded_for=True, login_limit_per_min=1)
    panel.login("admin", "wrong", headers={"X-Forwarded-For": "10.0.0.1"})

    other = panel.login("admin", "wrong", headers={"X-Forwarded-For": "10.0.0.2"})
    again = panel.login("admin", "wrong", headers={"X-Forwarded-For": "10.0.0.1"})

    assert other.status_code == 401
    assert again.status_code == 429


def test_suspended_user_cannot_log_in_and_loses_its_session(panel):
    panel.create_user("alice")
    token = panel.login("alice", "alice-pw").json()["token"]

    panel.post("/api/v1/users/alice/suspend")

    assert panel.get("/api/v1/auth/me", token=token).status_code == 401
    assert panel.login("alice", "alice-pw").status_code == 401
