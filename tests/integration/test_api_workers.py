"""`bridge api --workers 2`: two processes serve the API; /metrics merges them."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.db.models import Server
from bridge.settings import Settings
from tests.e2e.conftest import settings_env
from tests.signing import create_body, encode, signed_headers

pytestmark = pytest.mark.integration

ORDERS = 40
NEW_CREATES = ("bridge_intake_orders_total", (("action", "create"), ("result", "new")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    # A fresh connection each time, so either process may answer.
    text = httpx.get(base + "/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.timeout(120)
def test_two_api_processes_count_every_order_in_every_scrape(
    settings: Settings, server: Server, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    env = {**settings_env(settings), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "api", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "bridge api --workers 2 exited"
            assert time.monotonic() < deadline, "API did not come up"
            time.sleep(0.1)
        for n in range(1, ORDERS + 1):
            raw = encode(create_body(n))
            posted = httpx.post(
                base + "/v1/orders",
                content=raw,
                headers=signed_headers("POST", "/v1/orders", raw),
                timeout=10,
            )
            assert posted.status_code == 202, posted.text
        writers = {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*")}
        assert len(writers) >= 2  # both processes counted orders they accepted
        for _ in range(10):
            assert scrape(base)[NEW_CREATES] == ORDERS
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
