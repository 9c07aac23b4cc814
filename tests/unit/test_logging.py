"""Logging: secrets never reach a line, JSON in production, context bound."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bridge.logging import REDACTED, configure_logging, redact, redact_text
from bridge.settings import Settings
from tests.cli_runner import logging_restored


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    """These tests configure this process's logging: later tests get it back."""
    with logging_restored():
        yield


def test_secret_keys_are_redacted_at_any_depth() -> None:
    event = {
        "event": "x",
        "password": "hunter2",
        "headers": {"Authorization": "Bearer abc", "Accept": "json"},
        "body": [{"api_key": "wsp_0123456789abcdef", "name": "ok"}],
        "admin_token": "t",
    }
    out = redact(None, "info", event)
    assert out["password"] == REDACTED
    assert out["admin_token"] == REDACTED
    assert out["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert out["body"] == [{"api_key": REDACTED, "name": "ok"}]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("auth failed: Bearer eyJhbGciOi.eyJzdWIi.sig", "eyJhbGciOi"),
        ("key wsp_56be4cb59e73761bed78 refused", "56be4cb59e73761bed78"),
        ("body {'password': 'hunter2', 'user': 'x'}", "hunter2"),
        ('{"totp_secret": "JBSWY3DP"}', "JBSWY3DP"),
        ("redis://user:pa55word@host:6379/0", "pa55word"),
        ("token=abcdef&x=1", "abcdef"),
    ],
)
def test_secrets_inside_free_text_are_scrubbed(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


def test_exception_text_is_redacted_in_rendered_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(var_dir=tmp_path, env="production", log_format="json")
    configure_logging(settings)
    log = structlog.get_logger("test")
    structlog.contextvars.bind_contextvars(order_id="o-1")
    try:
        try:
            raise ValueError("login failed for password=hunter2 key wsp_abcdef0123")
        except ValueError:
            log.exception("step_failed", api_key="wsp_abcdef0123")
    finally:
        structlog.contextvars.clear_contextvars()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "step_failed"
    assert record["order_id"] == "o-1"
    assert record["api_key"] == REDACTED
    assert "hunter2" not in line
    assert "wsp_abcdef0123" not in line
    assert "ValueError" in record["exception"]


def test_stdlib_records_share_the_redacting_formatter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(var_dir=tmp_path, log_format="json"))
    logging.getLogger("celery").warning("connect with Bearer abc.def.ghi")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "abc.def.ghi" not in record["event"]
    assert record["level"] == "warning"


def test_development_renders_console_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(var_dir=tmp_path))
    structlog.get_logger("t").info("order_received", password="x1y2")
    err = capsys.readouterr().err
    assert "order_received" in err
    assert "x1y2" not in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.strip().splitlines()[-1])
