"""Fixtures for the simulator's own tests: one served simulator, reset per test."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.simulator import PanelCredentials, SimulatorConfig, SimulatorServer


class PanelClient:
    """An httpx client for one panel: API calls (admin key by default) and control."""

    def __init__(
        self, http: httpx.Client, base_url: str, creds: PanelCredentials
    ) -> None:
        self.http = http
        self.base_url = base_url
        self.creds = creds

    def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request to this panel without adding any header."""
        return self.http.request(method, self.base_url + path, **kwargs)

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        key: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send an API request with ``token`` (default: the admin key)."""
        sent = {"Authorization": f"Bearer {token or self.creds.api_key}"}
        if key is not None:
            sent["Idempotency-Key"] = key
        sent |= headers or {}
        return self.raw(
            method,
            path,
            json=json,
            headers=sent,
            params=params,
            timeout=timeout if timeout is not None else 5.0,
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("DELETE", path, **kwargs)

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call ``/_sim/<path>`` and return its JSON (raising on non-2xx)."""
        response = self.raw(method, f"/_sim/{path}", json=json)
        response.raise_for_status()
        return response.json()

    def configure(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", "config", changes)
        return result

    def faults(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", "faults", changes)
        return result

    def advance(self, seconds: float) -> float:
        """Move the panel clock; return its new Unix time."""
        return float(
            self.control("POST", "clock", {"advance_seconds": seconds})["now_unix"]
        )

    def now(self) -> float:
        return float(self.control("GET", "clock")["now_unix"])

    def ledger(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = self.control("GET", "ledger")
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", "requests")
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "state")
        return result

    def create_user(
        self, username: str, *, token: str | None = None, **fields: Any
    ) -> httpx.Response:
        body = {"username": username, "email": f"{username}@example.com"}
        body |= {"password": f"{username}-pw"} | fields
        return self.post("/api/v1/users/", json=body, token=token)

    def create_key(
        self, username: str, permissions: list[str] | None = None, **fields: Any
    ) -> str:
        """Mint a key for ``username`` as admin; return its secret."""
        body = {"name": "test", "permissions": permissions or ["all"]} | fields
        response = self.post(f"/api/v1/users/{username}/api-keys", json=body)
        assert response.status_code == 201, response.text
        secret: str = response.json()["api_key"]
        return secret

    def user_with_key(self, username: str, **fields: Any) -> str:
        """Create a user and an ``all``-scoped key for it; return the key."""
        assert self.create_user(username, **fields).status_code == 201
        return self.create_key(username)

    def login(
        self,
        username: str,
        password: str,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> httpx.Response:
        body = {"username": username, "password": password} | fields
        return self.raw("POST", "/api/v1/auth/login", json=body, headers=headers)

    def admin_token(self, headers: dict[str, str] | None = None, **fields: Any) -> str:
        response = self.login(
            self.creds.username, self.creds.password, headers=headers, **fields
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimulatorServer]:
    """The simulator with the root panel and two named panels (p1, p2)."""
    with SimulatorServer(SimulatorConfig(), panels=2) as server:
        yield server


@pytest.fixture(scope="session")
def sim_http() -> Iterator[httpx.Client]:
    """One HTTP client for the session (building one costs ~30 ms of TLS setup)."""
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture
def panel(sim_server: SimulatorServer, sim_http: httpx.Client) -> PanelClient:
    """A client for the root panel; every panel is reset first."""
    for name in [None, *sim_server.panel_names]:
        sim_http.post(sim_server.panel_url(name) + "/_sim/reset").raise_for_status()
    return PanelClient(sim_http, sim_server.base_url, sim_server.credentials())


@pytest.fixture
def other_panel(
    sim_server: SimulatorServer, sim_http: httpx.Client, panel: PanelClient
) -> PanelClient:
    """A client for panel p1 (reset together with ``panel``)."""
    del panel
    return PanelClient(
        sim_http, sim_server.panel_url("p1"), sim_server.credentials("p1")
    )
