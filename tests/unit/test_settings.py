"""Settings: one clear line per bad variable; production demands secrets."""

import json
import stat
from pathlib import Path

import pytest

from bridge.errors import ConfigurationError
from bridge.settings import load_settings


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_LEASE_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match=r"^BRIDGE_LEASE_SECONDS: "):
        load_settings()


def test_bad_database_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigurationError, match=r"^BRIDGE_DATABASE_URL: "):
        load_settings()


def test_production_requires_each_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_ENV", "production")
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"^BRIDGE_SECRET_KEY: required"):
        load_settings()
    monkeypatch.setenv("BRIDGE_SECRET_KEY", "k")
    monkeypatch.setenv("BRIDGE_INTAKE_SECRET", "i")
    with pytest.raises(ConfigurationError, match=r"^BRIDGE_ADMIN_TOKEN: required"):
        load_settings()
    monkeypatch.setenv("BRIDGE_ADMIN_TOKEN", "a")
    with pytest.raises(
        ConfigurationError, match=r"^BRIDGE_INTAKE_DIGEST_KEY: required"
    ):
        load_settings()
    assert not (tmp_path / "dev-secrets.json").exists()


def test_development_generates_secrets_once_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    first, generated = load_settings()
    assert generated == [
        "BRIDGE_SECRET_KEY",
        "BRIDGE_INTAKE_SECRET",
        "BRIDGE_ADMIN_TOKEN",
        "BRIDGE_INTAKE_DIGEST_KEY",
    ]
    path = tmp_path / "dev-secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second, generated_again = load_settings()
    assert generated_again == []  # read back, not created: no second warning
    assert first.secret_key is not None
    assert second.secret_key is not None
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert set(json.loads(path.read_text())) == {
        "secret_key",
        "intake_secret",
        "admin_token",
        "intake_digest_key",
    }


def test_explicit_secret_is_not_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_INTAKE_SECRET", "from-env")
    settings, generated = load_settings()
    assert "BRIDGE_INTAKE_SECRET" not in generated
    assert settings.intake_secret is not None
    assert settings.intake_secret.get_secret_value() == "from-env"


def test_a_secret_added_later_is_the_only_one_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_ADMIN_TOKEN", "from-env")
    load_settings()
    monkeypatch.delenv("BRIDGE_ADMIN_TOKEN")
    _, generated = load_settings()
    assert generated == ["BRIDGE_ADMIN_TOKEN"]


def test_comma_separated_origins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(
        "BRIDGE_CALLBACK_ALLOWED_ORIGINS", "https://a.example, https://b.example"
    )
    settings, _ = load_settings()
    assert settings.callback_allowed_origins == (
        "https://a.example",
        "https://b.example",
    )


def test_embedded_database_lives_under_var_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    settings, _ = load_settings()
    assert settings.effective_database_url == f"sqlite:///{tmp_path}/bridge.db"
    assert settings.effective_callback_secret == settings.intake_secret


def test_credentials_in_the_billing_callback_url_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(
        "BRIDGE_BILLING_CALLBACK_URL", "https://bill:secret-pw@billing.example/cb"
    )
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith("BRIDGE_BILLING_CALLBACK_URL: ")
    assert "secret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://whmcs.example:99999/cb", "port"),
        ("https://whmcs.example:0/cb", "port"),
        ("billing.example.com/cb", "http:// or https://"),
        ("ftp://billing.example/cb", "http:// or https://"),
        ("https:///cb", "no host"),
    ],
)
def test_a_billing_callback_url_the_bridge_cannot_call_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, reason: str
) -> None:
    # Accepted before: every order relying on it then failed (500 or 422).
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_BILLING_CALLBACK_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    line = str(caught.value)
    assert line.startswith("BRIDGE_BILLING_CALLBACK_URL: ")
    assert reason in line
    assert "\n" not in line


@pytest.mark.parametrize(
    "entry",
    [
        "billing.example",
        "https://billing.example/cb",
        "https://billing.example:70000",
        "https://u:secret-pw@billing.example",
        "https://billing.example?x=1",
    ],
)
def test_an_allowed_origin_that_is_not_an_origin_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entry: str
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_CALLBACK_ALLOWED_ORIGINS", f"https://ok.example,{entry}")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    line = str(caught.value)
    assert line.startswith("BRIDGE_CALLBACK_ALLOWED_ORIGINS: ")
    assert "scheme://host[:port]" in line
    assert "secret-pw" not in line


def test_the_billing_callback_url_must_be_among_the_allowed_origins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_BILLING_CALLBACK_URL", "https://billing.example/cb")
    monkeypatch.setenv("BRIDGE_CALLBACK_ALLOWED_ORIGINS", "https://other.example")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value) == (
        "BRIDGE_BILLING_CALLBACK_URL: its origin https://billing.example:443 is "
        "not in BRIDGE_CALLBACK_ALLOWED_ORIGINS"
    )

    # The same origin spelled with its default port and a trailing slash.
    monkeypatch.setenv(
        "BRIDGE_CALLBACK_ALLOWED_ORIGINS",
        "https://other.example, https://BILLING.example:443/",
    )
    settings, _ = load_settings()
    assert settings.billing_callback_url == "https://billing.example/cb"


@pytest.mark.parametrize(
    "url", ["notaurl", "http://127.0.0.1:6379/0", "redis://h:99999/0", "redis://h/x"]
)
def test_a_redis_url_redis_py_cannot_read_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_REDIS_URL", url)
    with pytest.raises(ConfigurationError, match=r"^BRIDGE_REDIS_URL: "):
        load_settings()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/11",
        "rediss://:pw@cache.example:6380",
        "unix:///r.sock?db=2",
    ],
)
def test_redis_urls_of_each_scheme_are_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_REDIS_URL", url)
    settings, _ = load_settings()
    assert settings.redis_url == url


def test_an_unknown_log_level_is_refused_and_any_case_of_a_known_one_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value) == (
        "BRIDGE_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    )
    monkeypatch.setenv("BRIDGE_LOG_LEVEL", "debug")
    settings, _ = load_settings()
    assert settings.log_level == "DEBUG"
