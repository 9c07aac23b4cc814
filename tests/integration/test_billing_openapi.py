"""The bridge's OpenAPI document describes the SSO, usage and packages routes."""

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_openapi_describes_sso_usage_and_packages(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]

    sso = paths["/v1/services/{service_id}/sso"]["post"]
    assert {"200", "404", "409", "422", "502", "503"} <= set(sso["responses"])
    assert "SsoIn" in str(sso["requestBody"])
    assert set(spec["components"]["schemas"]["SsoOut"]["properties"]) == {
        "url",
        "expires_at",
    }
    usage = paths["/v1/usage"]["get"]
    assert {p["name"] for p in usage["parameters"]} == {
        "server",
        "since",
        "page",
        "per_page",
    }
    assert "get" in paths["/v1/services/{service_id}/usage"]
    packages = paths["/v1/packages"]["get"]
    assert {p["name"] for p in packages["parameters"]} == {"server", "group"}


def _schemes(operation: dict[str, Any]) -> set[str]:
    return {name for option in operation.get("security", []) for name in option}


def test_every_route_declares_how_it_is_authenticated(api: httpx.Client) -> None:
    # Walks the served document, so a new route that forgets
    # `dependencies=SIGNATURE_HEADERS` (or the admin bearer) fails here: billing's
    # generated clients read `security` to know what to send.
    spec = api.get("/openapi.json").json()
    assert {"BridgeSignature", "AdminToken"} <= set(
        spec["components"]["securitySchemes"]
    )
    wrong: list[str] = []
    signed: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            schemes = _schemes(operation)
            if path.startswith("/v1/admin/"):
                expected = {"AdminToken"}
            elif path.startswith("/v1/panel-events/"):
                # The panel's own HMAC: a header parameter, neither of ours.
                expected = set()
                headers = {
                    p["name"].lower()
                    for p in operation["parameters"]
                    if p["in"] == "header"
                }
                assert "x-wispanel-signature" in headers, where
            elif path.startswith("/v1/"):
                expected = {"BridgeSignature"}
                signed.append(where)
            else:
                expected = set()  # /healthz, /readyz, /metrics
            if schemes != expected:
                wrong.append(f"{where}: {sorted(schemes)} != {sorted(expected)}")
    assert wrong == []
    # The walk sees the routes the audit found undeclared, and intake.
    assert {
        "POST /v1/orders",
        "POST /v1/services/{service_id}/payments",
        "POST /v1/services/{service_id}/sso",
        "GET /v1/services/{service_id}/usage",
        "GET /v1/usage",
        "GET /v1/packages",
    } <= set(signed)
