"""The bridge's OpenAPI document describes the SSO, usage and packages routes."""

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
