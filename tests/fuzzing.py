"""Schemathesis over the served OpenAPI, every case signed and carrying the admin
token, with a tally of what came back (for the suite's small run and `make fuzz`).

Each operation is fuzzed with positive (schema-valid) and negative (schema-
violating) cases; every response is checked for 5xx and against the documented
statuses, content types, headers and response schemas.
"""

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests  # noqa: TID251 - schemathesis sends its cases with requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi import checks as openapi_checks

from tests.infra import ADMIN_TOKEN, INTAKE_SECRET

CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


class SignedAdminAuth(requests.auth.AuthBase):
    """Sign the request as billing does and add the admin bearer token.

    The timestamp comes from the API's own clock (the tests' FakeClock), so a
    long run never drifts out of the allowed skew.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = r.body or b""
        # A str body goes out as latin-1 (what http.client sends for it).
        body = raw.encode("latin-1") if isinstance(raw, str) else raw
        if not isinstance(body, bytes):
            msg = "a streamed body cannot be signed"
            raise TypeError(msg)
        timestamp = str(int(self._clock().timestamp()))
        message = f"{timestamp}.{r.method}.{r.path_url}.".encode() + body
        digest = hmac.new(INTAKE_SECRET.encode(), message, hashlib.sha256)
        r.headers["X-Bridge-Timestamp"] = timestamp
        r.headers["X-Bridge-Signature"] = "sha256=" + digest.hexdigest()
        r.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        return r


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    no_negative_cases: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "operations": len({k.split(" ", 1)[-1] for k in self.per_operation}),
            "server_errors_5xx": len(self.server_errors),
            "schema_violations": len(self.violations),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "per_operation": dict(sorted(self.per_operation.items())),
            "no_negative_cases": self.no_negative_cases,
            "first_failures": (self.server_errors + self.violations)[:20],
        }


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    session: requests.Session,
    auth: SignedAdminAuth,
    examples: int,
    tally: Tally,
) -> None:
    label = f"{mode.value} {operation.label}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, auth=auth)
        tally.cases += 1
        tally.statuses[response.status_code] += 1
        tally.per_operation[label] += 1
        where = f"{label} -> {response.status_code}: {case.as_curl_command()[:400]}"
        if response.status_code >= 500:
            tally.server_errors.append(where)
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except AssertionError as exc:
            tally.violations.append(f"{where}\n{str(exc)[:600]}")

    try:
        run()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise
        # Nothing to violate: an operation without parameters or body.
        tally.no_negative_cases.append(operation.label)


def fuzz_api(base_url: str, clock: Callable[[], datetime], examples: int) -> Tally:
    """Fuzz every operation of the API served at `base_url`."""
    # The auth hook replaces whatever credentials a case carries, so generating
    # (invalid) credentials would only waste negative cases on valid requests.
    config = schemathesis.Config.from_dict(
        {"generation": {"with-security-parameters": False}}
    )
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json", config=config)
    tally = Tally()
    auth = SignedAdminAuth(clock)
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                # An operation schemathesis cannot read: say why, not "no .ok()".
                raise result.err()
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, base_url, session, auth, examples, tally)
    return tally


def dump(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)
