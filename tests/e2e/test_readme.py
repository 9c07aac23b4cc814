"""The README's five-minute tour, run as written in a second terminal of `bridge run`.

Commands come from the tour's fenced `sh` blocks. Only what a user would type
differently is substituted: `<order id>` (the id the last `orders submit` printed)
and the ports (this test runs on free ones). A command whose comment says "fails"
must exit non-zero; every other one must succeed.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.running import REPO, RunningBridge, bridge_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FIRST_TERMINAL = {"make run"}


def tour_commands(readme: str) -> list[str]:
    """The command lines of the sh blocks under `## Five-minute tour`."""
    section = readme.split("## Five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [
        line
        for line in lines
        if line and not line.startswith("#") and line not in FIRST_TERMINAL
    ]


def _run(bridge: RunningBridge, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line],
        env=bridge.second_terminal_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def _substitute(line: str, bridge: RunningBridge, order_id: str | None) -> str:
    line = line.replace("127.0.0.1:8000", f"127.0.0.1:{bridge.api_port}")
    line = line.replace("127.0.0.1:8001", f"127.0.0.1:{bridge.demo_port}")
    if "<order id>" in line:
        assert order_id is not None, f"{line!r} comes before any orders submit"
        line = line.replace("<order id>", order_id)
    return line


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    commands = tour_commands((REPO / "README.md").read_text())
    assert any("orders submit" in c for c in commands)
    assert any("orders retry <order id>" in c for c in commands)
    order_id: str | None = None
    submitted: list[str] = []
    outputs: list[tuple[str, subprocess.CompletedProcess[str]]] = []
    with bridge_run(tmp_path) as bridge:
        for line in commands:
            done = _run(bridge, _substitute(line, bridge, order_id))
            outputs.append((line, done))
            report = f"{line}\n{done.stdout}\n{done.stderr}"
            comment = line.split("#", 1)[1] if " #" in line else ""
            if "fails" in comment:
                assert done.returncode != 0, report
            else:
                assert done.returncode == 0, report
            assert "development_secret_generated" not in done.stderr
            accepted = re.search(r"accepted: (\S+)", done.stdout)
            if "orders submit" in line:
                assert accepted is not None, report
                order_id = accepted.group(1)
                submitted.append(order_id)
        shown = _run(bridge, f".venv/bin/bridge orders show {order_id} --json")
    first_submit = next(d for line, d in outputs if "orders submit" in line)
    assert '"status": "completed"' in first_submit.stdout
    failed_submit = [d for line, d in outputs if "orders submit" in line][-1]
    assert "License limit reached" in failed_submit.stdout
    queue = next(d for line, d in outputs if "--status failed" in line)
    assert "1 in all" in queue.stdout  # the broken order, and only it
    watched = outputs[-1][1]
    assert "watch" in outputs[-1][0]
    assert watched.stdout.strip().splitlines()[-1].lstrip().startswith("completed:")
    final = json.loads(shown.stdout)["order"]
    assert final["id"] == submitted[-1]
    assert final["status"] == "completed"
    assert bridge.exit_code == 0
