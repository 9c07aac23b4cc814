"""A thin test wrapper over the simulator's /_sim control API (real HTTP)."""

from typing import Any

import httpx


class SimControl:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url + "/_sim", timeout=10)

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.post(path, json=body or {})
        response.raise_for_status()
        return response.json()

    def _get(self, path: str) -> Any:
        response = self._http.get(path)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._post("/reset")

    def config(self, **values: Any) -> None:
        self._post("/config", values)

    def faults(self, **values: Any) -> None:
        self._post("/faults", values)

    def clear_faults(self) -> None:
        self._post("/faults/clear")

    def fail_next(self, count: int, status: int) -> None:
        self._post("/fail-next", {"count": count, "status": status})

    def revoke(self) -> None:
        self._post("/revoke")

    def advance(self, seconds: float) -> None:
        self._post("/clock", {"advance_seconds": seconds})

    def ledger(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = self._get("/ledger")
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/requests")
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/state")
        return result


class FakeClock:
    """An injectable clock that only moves when told to."""

    def __init__(self, start: Any) -> None:
        self.now = start

    def __call__(self) -> Any:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(seconds=seconds)
