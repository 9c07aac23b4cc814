"""The WHMCS server module, run with PHP against a live `bridge run`.

A WHMCS stand-in (tests/whmcs/standin/init.php: localAPI, logModuleCall, Capsule over
a JSON file) stands where WHMCS would; `php -S` serves the module's callback.php as
the bridge's billing callback URL; phpunit runs tests/whmcs/ModuleTest.php.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.running import REPO, bridge_run, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MODULE = REPO / "deploy" / "whmcs" / "modules" / "servers" / "wispanelbridge"
SECRET = "whmcs-intake-secret"
ADMIN_TOKEN = "whmcs-operator-token"


def _php_files() -> list[Path]:
    """Every PHP file of the repository, outside hidden and tool directories."""
    skip = {"node_modules", "vendor", "var", "__pycache__"}
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(REPO):
        subdirectories[:] = [
            d for d in subdirectories if not d.startswith(".") and d not in skip
        ]
        found.extend(Path(directory) / f for f in files if f.endswith(".php"))
    return sorted(found)


def test_every_php_file_in_the_repository_passes_php_lint() -> None:
    assert shutil.which("php"), "php-cli is required (see .ci/run)"
    files = _php_files()
    relative = {path.relative_to(REPO).as_posix() for path in files}
    assert {
        "deploy/whmcs/modules/servers/wispanelbridge/wispanelbridge.php",
        "deploy/whmcs/modules/servers/wispanelbridge/callback.php",
        "deploy/whmcs/modules/servers/wispanelbridge/lib/Store.php",
        "tests/whmcs/ModuleTest.php",
        "tests/whmcs/standin/init.php",
        "docs/examples/client.php",
    } <= relative
    for path in files:
        done = subprocess.run(
            ["php", "-l", str(path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def whmcs_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A stand-in WHMCS tree serving the module's callback.php over HTTP."""
    root = tmp_path / "whmcs"
    shutil.copytree(MODULE, root / "modules" / "servers" / "wispanelbridge")
    shutil.copy(REPO / "tests" / "whmcs" / "standin" / "init.php", root / "init.php")
    state = root / "state.json"
    server = {"id": 1, "type": "wispanelbridge", "password": SECRET}
    state.write_text(json.dumps({"tables": {"tblservers": [server]}}))
    port = free_port()
    web = subprocess.Popen(
        ["php", "-S", f"127.0.0.1:{port}", "-t", str(root)],
        env={**os.environ, "WHMCS_STANDIN_STATE": str(state)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/modules/servers/wispanelbridge/callback.php"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "php -S never listened"
            time.sleep(0.1)
    yield root, url
    web.terminate()
    web.wait(timeout=10)


def test_whmcs_module_against_a_running_bridge(
    tmp_path: Path, whmcs_root: tuple[Path, str]
) -> None:
    assert shutil.which("phpunit"), "phpunit is required (see .ci/run)"
    root, callback_url = whmcs_root
    extra = {
        "BRIDGE_INTAKE_SECRET": SECRET,
        "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "BRIDGE_BILLING_CALLBACK_URL": callback_url,
    }
    with bridge_run(tmp_path, extra) as bridge:
        cli = _second_terminal_cli(tmp_path, bridge.second_terminal_env())
        done = subprocess.run(
            [
                "phpunit",
                "--colors=never",
                "--do-not-cache-result",
                str(REPO / "tests" / "whmcs" / "ModuleTest.php"),
            ],
            env={
                **os.environ,
                "WHMCS_ROOT": str(root),
                "WHMCS_STANDIN_STATE": str(root / "state.json"),
                "BRIDGE_HOST": "127.0.0.1",
                "BRIDGE_PORT": str(bridge.api_port),
                "BRIDGE_SECRET": SECRET,
                "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
                "SIM_URL": f"http://127.0.0.1:{bridge.demo_port}",
                "CALLBACK_URL": callback_url,
                "BRIDGE_CLI": str(cli),
                "CLOSED_PORT": str(free_port()),
            },
            capture_output=True,
            text=True,
            timeout=500,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "OK (" in done.stdout


def _second_terminal_cli(tmp_path: Path, env: dict[str, str]) -> Path:
    """`bridge …` as a second terminal runs it: only that terminal's environment."""
    script = tmp_path / "bridge-cli"
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
    script.write_text(
        "#!/bin/sh\n"
        f"cd {shlex.quote(str(REPO))} || exit 1\n"
        f'exec env -i {assignments} {shlex.quote(sys.executable)} -m bridge "$@"\n'
    )
    script.chmod(0o755)
    return script
