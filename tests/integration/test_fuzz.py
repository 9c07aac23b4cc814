"""Fuzzing in the suite: schemathesis over the served OpenAPI (signed, admin
token), zero 5xx and zero schema violations; OPTIONS and 405 list every method.

`make fuzz` runs the same test with BRIDGE_FUZZ_EXAMPLES=160 (>= 5,000 cases) and
writes its figures to BRIDGE_FUZZ_REPORT (docs/reliability.md, "Fuzzing").
"""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.api.app import create_app
from bridge.container import Services
from bridge.db.models import Server
from tests.fuzzing import dump, fuzz_api
from tests.http_server import serve_in_thread
from tests.simctl import FakeClock

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("BRIDGE_FUZZ_EXAMPLES", "6"))
METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


def served_operations(base_url: str) -> set[str]:
    """Every operation of the served OpenAPI document, as "GET /path"."""
    with httpx.Client(base_url=base_url) as client:
        paths = client.get("/openapi.json").json()["paths"]
    return {
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method in operations
        if method.upper() in METHODS | {"HEAD", "OPTIONS", "TRACE"}
    }


@pytest.fixture
def served(services: Services) -> Iterator[str]:
    with serve_in_thread(create_app(services)) as base_url:
        yield base_url


# The suite's run takes about 30 s on an idle machine; the bound leaves room for
# a shared, busy one, and grows with the long run's size.
@pytest.mark.timeout(max(300, EXAMPLES * 10))
def test_fuzzed_api_never_answers_5xx_and_keeps_to_its_schema(
    served: str, services: Services, server: Server, clock: FakeClock
) -> None:
    tally = fuzz_api(served, clock, EXAMPLES)
    report = tally.report()
    if target := os.environ.get("BRIDGE_FUZZ_REPORT"):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(dump(report) + "\n")
    assert tally.server_errors == [], dump(report)
    assert tally.violations == [], dump(report)
    # The run really ran: every served operation, both kinds of case, signed
    # well enough that some got past the signature check.
    fuzzed = {label.split(" ", 1)[1] for label in tally.per_operation}
    assert fuzzed == served_operations(served)
    assert report["operations"] == len(fuzzed)
    assert tally.cases >= EXAMPLES * 30
    assert tally.statuses[401] < tally.cases / 10
    assert {200, 202, 404, 422} <= set(tally.statuses)
    # Only operations without parameters or body have nothing to violate.
    assert set(tally.no_negative_cases) == {
        "GET /healthz",
        "GET /readyz",
        "GET /v1/admin/servers",
        # The panel's raw, signed body: no schema to break, no parameters.
        "POST /v1/panel-events/{server}",
    }


def test_options_and_unserved_methods_answer_with_the_documented_methods(
    served: str,
) -> None:
    with httpx.Client(base_url=served) as client:
        paths = client.get("/openapi.json").json()["paths"]
        for template, operations in paths.items():
            documented = {m.upper() for m in operations} & METHODS
            url = template.replace("{", "x").replace("}", "")
            expected = documented | {"OPTIONS"}
            options = client.options(url)
            assert options.status_code == 204, template
            assert set(options.headers["allow"].split(", ")) == expected, template
            for method in METHODS - documented:
                response = client.request(method, url)
                assert response.status_code == 405, (method, template)
                allow = set(response.headers["allow"].split(", "))
                assert allow == expected, (method, template)
