"""The operation -> route table and per-server overrides."""

import pytest

from bridge.errors import ConfigurationError
from bridge.panel.routes import DEFAULT_ROUTES, Route, resolve_routes


def test_override_replaces_only_the_named_entry() -> None:
    routes = resolve_routes({"create_user": {"path": "/api/v1/accounts/"}})
    assert routes["create_user"] == Route("POST", "/api/v1/accounts/")
    assert routes["get_user"] == DEFAULT_ROUTES["get_user"]


def test_override_may_change_method_within_the_same_kind() -> None:
    routes = resolve_routes({"change_package": {"method": "patch"}})
    assert routes["change_package"].method == "PATCH"


@pytest.mark.parametrize(
    "override",
    [
        {"create_usr": {"path": "/api/v1/users/"}},
        {"create_user": {"verb": "POST"}},
        {"create_user": {"method": "TRACE"}},
        {"create_user": {"path": "api/v1/users/"}},
        {"create_user": {"path": "/api/v1/users/?x=1"}},
        {"get_user": {"path": "/api/v1/users/{name}"}},
        {"get_user": {"path": "/api/v1/users/{username"}},
        {"get_user": {"method": "DELETE"}},
    ],
    ids=[
        "unknown-op",
        "unknown-key",
        "bad-method",
        "relative",
        "query",
        "fields",
        "malformed",
        "kind",
    ],
)
def test_invalid_override_fails_at_configuration(
    override: dict[str, dict[str, str]],
) -> None:
    with pytest.raises(ConfigurationError):
        resolve_routes(override)


def test_path_values_are_encoded_into_one_segment() -> None:
    route = DEFAULT_ROUTES["get_user"]
    assert route.url_path({"username": "../admin"}) == "/api/v1/users/..%2Fadmin"


def test_missing_or_extra_path_params_are_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        DEFAULT_ROUTES["get_user"].url_path({})
    with pytest.raises(ValueError, match="unused"):
        DEFAULT_ROUTES["list_users"].url_path({"username": "x"})


def test_reads_and_writes_are_told_apart_by_method() -> None:
    writes = {op for op, r in DEFAULT_ROUTES.items() if r.is_mutating}
    assert writes == {
        "create_user",
        "delete_user",
        "suspend_user",
        "unsuspend_user",
        "change_package",
        "change_password",
        "create_domain",
        "issue_ssl",
        "renew_ssl",
        "create_mailbox",
        "create_webhook",
        "delete_webhook",
        "auth_login",
        "create_reseller",
        "set_reseller_limits",
        "delete_reseller",
        "sso_mint",
    }


def test_only_the_documented_folders_honour_keys() -> None:
    keyed = {op for op, r in DEFAULT_ROUTES.items() if r.honours_key}
    assert keyed == {
        "create_user",
        "delete_user",
        "suspend_user",
        "unsuspend_user",
        "change_package",
        "change_password",
        "create_domain",
        "create_reseller",
        "set_reseller_limits",
        "delete_reseller",
        "create_webhook",
        "delete_webhook",
    }


@pytest.mark.parametrize(
    ("operation", "path", "reason"),
    [
        ("create_user", "/api/v1/users/{}", "has no name"),
        ("get_user", "/api/v1/users/{username!z}", "conversion"),
        ("get_user", "/api/v1/users/{username!r}", "conversion"),
        ("get_user", "/api/v1/users/{username:>99999999}", "format spec"),
    ],
    ids=["positional", "bad-conversion", "conversion", "format-spec"],
)
def test_only_plain_named_placeholders_are_allowed(
    operation: str, path: str, reason: str
) -> None:
    # Each kept the default's field names (or none), so only this check stops
    # them before an order fails on them, or builds a 100 MB URL.
    with pytest.raises(ConfigurationError, match=reason):
        resolve_routes({operation: {"path": path}})


def test_literal_braces_and_an_empty_spec_are_still_plain() -> None:
    routes = resolve_routes({"get_user": {"path": "/api/v1/{{u}}/{username:}"}})
    assert routes["get_user"].url_path({"username": "a"}) == "/api/v1/{u}/a"
