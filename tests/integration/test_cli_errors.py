"""Operator mistakes at the command line end in one clear line and an exit code,
never a traceback: bad settings (2), a declined confirmation (1, ^C stays 130),
an unknown migration revision, a --today the sweep cannot count back from."""

import io
import signal
import subprocess
import sys

import pytest

from bridge.settings import Settings
from tests.cli_runner import bridge
from tests.e2e.conftest import settings_env

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("update", "variable"),
    [
        ({"redis_url": "notaurl"}, "BRIDGE_REDIS_URL"),
        ({"log_level": "LOUD"}, "BRIDGE_LOG_LEVEL"),
        (
            {"billing_callback_url": "https://whmcs.example:99999/cb"},
            "BRIDGE_BILLING_CALLBACK_URL",
        ),
        (
            {"billing_callback_url": "billing.example.com/cb"},
            "BRIDGE_BILLING_CALLBACK_URL",
        ),
        (
            {
                "billing_callback_url": "https://billing.example/cb",
                "callback_allowed_origins": ("https://other.example",),
            },
            "BRIDGE_BILLING_CALLBACK_URL",
        ),
        (
            {"callback_allowed_origins": ("billing.example",)},
            "BRIDGE_CALLBACK_ALLOWED_ORIGINS",
        ),
    ],
)
def test_a_bad_setting_stops_the_command_with_one_line_naming_it(
    settings: Settings, update: dict[str, object], variable: str
) -> None:
    # model_copy does not validate: the environment carries the bad value as an
    # operator's would.
    result = bridge(settings.model_copy(update=update), "orders", "list", "--json")

    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"configuration error: {variable}: ")
    assert result.returncode == 2
    assert result.stdout == ""


@pytest.mark.parametrize("answer", ["n\n", ""])
def test_declining_the_purge_says_aborted_and_exits_1(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # "" is `</dev/null`: no answer at all.
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))

    result = bridge(settings, "orders", "purge", "--older-than", "90d")

    # Maybe on the prompt's line: a pipe echoes no answer (a terminal does).
    assert result.stderr.endswith("aborted\n")
    assert "Traceback" not in result.stderr
    assert result.returncode == 1


def test_ctrl_c_at_the_purge_prompt_still_exits_130(settings: Settings) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "orders", "purge", "--older-than", "90d"],
        env=settings_env(settings),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen = b""
    while b"[y/N]" not in seen:  # the prompt is up: input() is waiting
        chunk = proc.stdout.read(1)
        assert chunk, seen.decode()
        seen += chunk
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]

    assert proc.returncode == 130, (seen + rest).decode()
    assert b"aborted" not in rest
    assert b"Traceback" not in rest


@pytest.mark.parametrize(
    ("revision", "reason"),
    [
        ("nope", "Can't locate revision identified by 'nope'"),
        ("head+5", "past the newest migration"),
    ],
)
def test_upgrading_to_an_unknown_revision_names_it_in_one_line(
    settings: Settings, revision: str, reason: str
) -> None:
    result = bridge(settings, "db", "upgrade", "--revision", revision)

    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot upgrade to revision {revision!r}: {reason}"
    )
    assert result.returncode == 1
    assert "database at" not in result.stdout


def test_a_sweep_day_too_early_to_count_back_from_is_a_usage_error(
    settings: Settings,
) -> None:
    result = bridge(settings, "sweep", "suspend", "--dry-run", "--today", "0001-01-02")

    assert "Traceback" not in result.stderr
    assert (
        "Invalid value for '--today': 0001-01-02 is before 1970-01-01" in result.stderr
    )
    assert result.returncode == 2
