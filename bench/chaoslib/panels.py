"""A client of one simulated panel's ``/_sim`` control API, plus a user login.

The harness configures the panels, injects storms and revocations, and reads the
ledgers, request logs and state through it (real HTTP, like any other client).
"""

from typing import Any

import httpx


class SimPanel:
    """Panel ``name`` of the simulator at ``root`` (``/p/<name>``)."""

    def __init__(self, root: str, name: str) -> None:
        self.name = name
        self.url = f"{root}/p/{name}"
        self._http = httpx.Client(base_url=self.url, timeout=30)

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._http.post("/_sim" + path, json=body)
        response.raise_for_status()
        return response.json()

    def _get(self, path: str) -> Any:
        response = self._http.get("/_sim" + path)
        response.raise_for_status()
        return response.json()

    def configure(self, **values: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post("/config", values)
        return result

    def faults(self, **values: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post("/faults", values)
        return result

    def clear_faults(self) -> None:
        self._post("/faults/clear", {})

    def revoke(self, username: str) -> dict[str, Any]:
        """Bump ``username``'s token version: its JWTs die, API keys live on."""
        result: dict[str, Any] = self._post("/revoke", {"username": username})
        return result

    def credentials(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/credentials")
        return result

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/config")
        return result

    def ledger(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = self._get("/ledger")
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/requests")
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/state")
        return result

    def login_status(self, username: str, password: str) -> int:
        """Return the status of a panel login as ``username`` (200: password right)."""
        response = self._http.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        return response.status_code
