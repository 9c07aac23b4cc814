"""docs/integration.md's examples against a live `bridge run` (API, worker, demo panel).

The Python and PHP example clients create accounts; their callback receivers verify,
refuse forgeries and stale timestamps, and apply each delivery once; the curl +
openssl block of the guide runs as written.
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.running import REPO, RunningBridge, bridge_run, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EXAMPLES = REPO / "docs" / "examples"
SECRET = "integration-guide-secret"


@dataclass
class Receiver:
    name: str
    url: str
    applied: Path
    proc: subprocess.Popen[bytes]

    def applied_callbacks(self) -> list[dict[str, str]]:
        if not self.applied.exists():
            return []
        lines = self.applied.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def _wait_listening(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"receiver {url} exited"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"receiver {url} never listened")


def _start_receivers(tmp: Path) -> dict[str, Receiver]:
    assert shutil.which("php"), "php-cli is required (see .ci/run)"
    env = {**os.environ, "BRIDGE_INTAKE_SECRET": SECRET}
    receivers = {}
    py_port, php_port = free_port(), free_port()
    py_applied, php_applied = tmp / "py-applied.txt", tmp / "php-applied.txt"
    py = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "client.py"),
            "callbacks",
            "--port",
            str(py_port),
            "--applied",
            str(py_applied),
        ],
        env=env,
    )
    php = subprocess.Popen(
        ["php", "-S", f"127.0.0.1:{php_port}", str(EXAMPLES / "client.php")],
        env={**env, "APPLIED_FILE": str(php_applied)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    receivers["python"] = Receiver(
        "python", f"http://127.0.0.1:{py_port}/callback", py_applied, py
    )
    receivers["php"] = Receiver(
        "php", f"http://127.0.0.1:{php_port}/callback", php_applied, php
    )
    for receiver in receivers.values():
        _wait_listening(receiver.url, receiver.proc)
    return receivers


@pytest.fixture(scope="module")
def receivers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Receiver]]:
    started = _start_receivers(tmp_path_factory.mktemp("receivers"))
    yield started
    for receiver in started.values():
        receiver.proc.terminate()
        receiver.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def bridge(
    tmp_path_factory: pytest.TempPathFactory, receivers: dict[str, Receiver]
) -> Iterator[RunningBridge]:
    origins = ",".join(r.url.rsplit("/", 1)[0] for r in receivers.values())
    extra = {
        "BRIDGE_INTAKE_SECRET": SECRET,
        "BRIDGE_BILLING_CALLBACK_URL": receivers["python"].url,
        "BRIDGE_CALLBACK_ALLOWED_ORIGINS": origins,
    }
    with bridge_run(tmp_path_factory.mktemp("bridge"), extra) as running:
        yield running


def _client_env(bridge: RunningBridge, callback_url: str = "") -> dict[str, str]:
    return {
        **os.environ,
        "BRIDGE_URL": bridge.api_url,
        "BRIDGE_INTAKE_SECRET": SECRET,
        "CALLBACK_URL": callback_url,
    }


def _panel_users(bridge: RunningBridge) -> set[str]:
    state = httpx.get(f"http://127.0.0.1:{bridge.demo_port}/_sim/state").json()
    return set(state["users"])


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.2)


CLIENTS = {
    "python": [sys.executable, str(EXAMPLES / "client.py")],
    "php": ["php", str(EXAMPLES / "client.php")],
}


@pytest.mark.parametrize("language", ["python", "php"])
def test_example_client_creates_an_account_and_its_receiver_applies_the_callback(
    language: str, bridge: RunningBridge, receivers: dict[str, Receiver]
) -> None:
    receiver = receivers[language]
    username = f"{language[:2]}{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [
            *CLIENTS[language],
            "create",
            f"svc-{username}",
            username,
            f"{username}@example.com",
            f"{username}.example",
        ],
        env=_client_env(bridge, receiver.url),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    order = json.loads(done.stdout)["order"]
    assert order["status"] == "completed"
    assert [s["status"] for s in order["steps"]] == ["succeeded"] * 3
    assert username in _panel_users(bridge)
    _wait_for(
        lambda: any(
            c["service_id"] == f"svc-{username}" for c in receiver.applied_callbacks()
        ),
        f"{language} receiver applied the callback",
    )
    (applied,) = [
        c for c in receiver.applied_callbacks() if c["service_id"] == f"svc-{username}"
    ]
    assert applied["status"] == "completed"
    assert applied["result"] == "success"
    assert applied["order_id"] == order["order_id"]
    assert uuid.UUID(applied["delivery"])


def _callback_headers(
    body: bytes, delivery: str, *, age: int = 0, secret: str = SECRET
) -> dict[str, str]:
    timestamp = str(int(time.time()) - age)
    digest = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Bridge-Timestamp": timestamp,
        "X-Bridge-Signature": f"sha256={digest}",
        "X-Bridge-Delivery": delivery,
    }


@pytest.mark.parametrize("language", ["python", "php"])
def test_example_receiver_refuses_forgeries_and_applies_a_delivery_once(
    language: str, receivers: dict[str, Receiver]
) -> None:
    receiver = receivers[language]
    service = f"svc-replay-{uuid.uuid4().hex[:8]}"
    body = json.dumps(
        {
            "order_id": f"{service}-o",
            "service_id": service,
            "action": "suspend",
            "status": "completed",
            "result": "success",
        }
    ).encode()
    delivery = str(uuid.uuid4())

    def post(headers: dict[str, str]) -> httpx.Response:
        return httpx.post(receiver.url, content=body, headers=headers, timeout=10)

    forged = post(_callback_headers(body, delivery, secret="not-the-secret"))
    stale = post(_callback_headers(body, delivery, age=301))
    first = post(_callback_headers(body, delivery))
    replay = post(_callback_headers(body, delivery))
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert first.status_code == 200
    assert first.json() == {"applied": True}
    assert replay.status_code == 200
    assert replay.json()["applied"] is False
    mine = [c for c in receiver.applied_callbacks() if c["service_id"] == service]
    assert [c["delivery"] for c in mine] == [delivery]


def test_the_curl_and_openssl_example_runs_as_written(bridge: RunningBridge) -> None:
    guide = (REPO / "docs" / "integration.md").read_text()
    section = guide.split("### curl + openssl", 1)[1]
    script = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert script is not None
    done = subprocess.run(
        ["bash", "-e", "-c", script.group(1)],
        env={**os.environ, "BRIDGE_URL": bridge.api_url, "SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # curl -f fails on any 4xx: both signatures were accepted.
    assert done.stdout.count('"order_id":"curl-1"') == 2
