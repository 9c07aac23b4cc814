"""Direct calls to the simulated panel's API, as its admin (or another key): what
an operator or a stranger does on the panel behind the bridge's back."""

from typing import Any

import httpx


class PanelApi:
    """The simulator's panel API with the admin key by default."""

    def __init__(self, base_url: str, admin_key: str) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=10)
        self.admin_key = admin_key

    def close(self) -> None:
        self._http.close()

    def call(
        self, method: str, path: str, *, token: str | None = None, json: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.admin_key}"}
        return self._http.request(method, path, json=json, headers=headers)

    def create_user(
        self,
        username: str,
        *,
        email: str | None = None,
        package: str = "default",
        role: str = "user",
        password: str = "made-by-hand-1",  # noqa: S107 - a test account
        token: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "username": username,
            "email": email or f"{username}@example.com",
            "password": password,
            "package": package,
            "role": role,
        }
        response = self.call("POST", "/api/v1/users/", json=body, token=token)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def create_key(self, username: str) -> str:
        body = {"name": "test", "permissions": ["all"]}
        response = self.call("POST", f"/api/v1/users/{username}/api-keys", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])

    def get_user(self, username: str) -> dict[str, Any]:
        response = self.call("GET", f"/api/v1/users/{username}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def can_log_in(self, username: str, password: str) -> bool:
        response = self._http.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        return response.status_code == 200 and "token" in response.json()
