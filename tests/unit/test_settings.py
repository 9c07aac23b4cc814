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
