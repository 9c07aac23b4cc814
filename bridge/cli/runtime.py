"""The runtime file of a running `bridge run` (`<var>/run.json`).

`bridge run` writes it once its embedded Redis is up and removes it when it stops, so
that CLI commands in a second terminal find that Redis and the API without any
environment variable. A file left by a killed supervisor is ignored (its pid is gone).
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RUNTIME_FILE = "run.json"


@dataclass(frozen=True)
class RunInfo:
    """Where the processes of one `bridge run` can be reached."""

    pid: int
    api_url: str
    # Only the embedded Redis is recorded: a configured BRIDGE_REDIS_URL may carry
    # a password, and whoever set it can set it in the second terminal too.
    redis_url: str | None


def write_run_info(var_dir: Path, info: RunInfo) -> None:
    """Record the running supervisor atomically (readers never see half a file)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / RUNTIME_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2))
    tmp.replace(path)


def remove_run_info(var_dir: Path, pid: int) -> None:
    """Remove the runtime file if it is this supervisor's."""
    info = _read(var_dir / RUNTIME_FILE)
    if info is not None and info.pid == pid:
        (var_dir / RUNTIME_FILE).unlink(missing_ok=True)


def live_run_info(var_dir: Path) -> RunInfo | None:
    """The runtime file's content if its supervisor is still alive, else None."""
    info = _read(var_dir / RUNTIME_FILE)
    if info is None or not _alive(info.pid):
        return None
    return info


def _read(path: Path) -> RunInfo | None:
    try:
        raw = json.loads(path.read_text())
        return RunInfo(
            pid=int(raw["pid"]),
            api_url=str(raw["api_url"]),
            redis_url=None if raw.get("redis_url") is None else str(raw["redis_url"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True
