"""Shared plumbing of the process-level benchmarks (intake, fleet, overhead, soak).

Fresh databases, bridge child processes with exact settings, servers registered in
the DB, signed create bodies, percentiles and RSS sampling. Loopback only.
"""

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bridge.crypto import SecretBox
from bridge.db import migrate
from bridge.db.session import make_engine
from bridge.domain.model import AuthMode
from bridge.fleet import ServerSpec, save_server

REPO = Path(__file__).resolve().parent.parent
# Where benchmarks put their databases and Redis data (the smoke tests point these
# at the test suite's server and index so parallel runs do not collide).
PG_SERVER = os.environ.get(
    "BRIDGE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/"
)
DB_PREFIX = os.environ.get("BRIDGE_BENCH_DB_PREFIX", "bridge_bench_")
BENCH_REDIS = os.environ.get("BRIDGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
INTAKE_SECRET = "bench-intake-secret"  # noqa: S105 - a loopback benchmark's
INTAKE_DIGEST_KEY = "bench-intake-digest-key"
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105


def pg_url(name: str) -> str:
    """A benchmark database on the bench PostgreSQL server (name gets the prefix)."""
    return PG_SERVER.rstrip("/") + "/" + DB_PREFIX + name


def sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite:///{(directory / (name + '.db')).resolve()}"


def redis_db(url: str, index: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{index}"))


def recreate_database(url: str) -> None:
    """Drop and create a PostgreSQL database, or delete a SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False)) as conn:
        conn.autocommit = True
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def fresh_bridge_database(url: str) -> None:
    recreate_database(url)
    migrate.upgrade(url)


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class BridgeEnv:
    """The settings every bridge child process of one benchmark case shares."""

    database_url: str
    redis_url: str
    var_dir: Path
    secret_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    extra: tuple[tuple[str, str], ...] = ()

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
        env.update(
            {
                "BRIDGE_ENV": "development",
                "BRIDGE_VAR_DIR": str(self.var_dir),
                "BRIDGE_DATABASE_URL": self.database_url,
                "BRIDGE_REDIS_URL": self.redis_url,
                "BRIDGE_SECRET_KEY": self.secret_key,
                "BRIDGE_INTAKE_SECRET": INTAKE_SECRET,
                "BRIDGE_INTAKE_DIGEST_KEY": INTAKE_DIGEST_KEY,
                "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
                "BRIDGE_LOG_FORMAT": "json",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(dict(self.extra))
        return env


def register_server(
    env: BridgeEnv,
    name: str,
    url: str,
    api_key: str,
    *,
    limit: int = 60,
    capacity: int | None = None,
) -> None:
    engine = make_engine(env.database_url)
    try:
        with Session(engine) as session, session.begin():
            save_server(
                session,
                SecretBox(SecretStr(env.secret_key)),
                ServerSpec(
                    name=name,
                    base_url=url,
                    auth_mode=AuthMode.API_KEY,
                    api_key=api_key,
                    rate_limit_per_min=limit,
                    capacity=capacity,
                ),
            )
    finally:
        engine.dispose()


class Children:
    """Child processes started in their own session; all stopped at exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            list(argv),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def bridge(
        self, name: str, args: Sequence[str], env: BridgeEnv
    ) -> subprocess.Popen[bytes]:
        return self.start(name, [sys.executable, "-m", "bridge", *args], env.environ())

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def _exit_on_term(_signum: int, _frame: object) -> None:
    sys.exit(143)


@contextmanager
def children(log_dir: Path) -> Iterator[Children]:
    """Children stopped at exit, also when this process gets SIGTERM."""
    signal.signal(signal.SIGTERM, _exit_on_term)
    kids = Children(log_dir)
    try:
        yield kids
    finally:
        kids.stop_all()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until `url` answers 200 (fails if the process exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"{proc.args} exited with {proc.returncode} before {url} answered"
            raise RuntimeError(msg)
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    msg = f"{url} did not answer within {timeout} s"
    raise RuntimeError(msg)


UNLIMITED = 1_000_000


def start_simulator(
    kids: "Children", flags: list[str], panels: list[str] | None = None
) -> str:
    """`bridge simulator` on a free port, certificates at once, no licence caps.

    `flags` are extra CLI flags (limit, window, panel count); `panels` names the
    panels of a multi-panel simulator (None: the single panel at the root).
    Returns its base URL once it answers.
    """
    port = free_port()
    argv = [
        sys.executable, "-m", "bridge", "simulator", "--port", str(port),
        "--ssl-delay", "0", *flags,
    ]  # fmt: skip
    proc = kids.start("simulator", argv, {**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/openapi.yaml", proc)
    prefixes = [f"/p/{name}" for name in panels] if panels else [""]
    uncapped = {"license_max_users": -1, "license_max_domains": -1}
    with httpx.Client(base_url=base, timeout=10) as http:
        for prefix in prefixes:
            http.post(f"{prefix}/_sim/config", json=uncapped).raise_for_status()
    return base


def start_unlimited_panel(kids: "Children") -> tuple[str, str]:
    """One panel with no rate limit: its base URL and admin API key."""
    base = start_simulator(kids, ["--limit", str(UNLIMITED)])
    key: str = httpx.get(base + "/_sim/credentials", timeout=10).json()["api_key"]
    return base, key


def sign(method: str, target: str, body: bytes, timestamp: int | None = None) -> str:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    message = f"{ts}.{method}.{target}.".encode() + body
    return (
        "sha256="
        + hmac.new(INTAKE_SECRET.encode(), message, hashlib.sha256).hexdigest()
    )


def signed_headers(method: str, target: str, body: bytes = b"") -> dict[str, str]:
    ts = int(time.time())
    return {
        "X-Bridge-Timestamp": str(ts),
        "X-Bridge-Signature": sign(method, target, body, ts),
        "Content-Type": "application/json",
    }


def create_body(
    tag: str, n: int, *, mailboxes: int = 1, server: str | None = None
) -> bytes:
    """A create order with SSL and `mailboxes` mailboxes; unique per (tag, n)."""
    body: dict[str, Any] = {
        "order_id": f"bench-{tag}-{n}",
        "service_id": f"svc-{tag}-{n}",
        "action": "create",
        "account": {
            "username": f"u{tag}{n}",
            "email": f"u{tag}{n}@example.com",
            "password": "correct-horse-battery",
            "package": "default",
        },
        "domain": f"s{tag}{n}.example",
        "ssl": True,
        "mailboxes": [
            {"local_part": f"box{i}", "password": "mailbox-pass-1", "quota_mb": 10}
            for i in range(mailboxes)
        ],
    }
    if server is not None:
        body["server"] = server
    return json.dumps(body, separators=(",", ":")).encode()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def tree_rss_mb(proc: subprocess.Popen[bytes]) -> dict[str, float]:
    """RSS (MB) of a process and each of its descendants, keyed by pid and name."""
    out: dict[str, float] = {}
    try:
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                out[f"{p.name()}:{p.pid}"] = round(p.memory_info().rss / 2**20, 1)
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        pass
    return out


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
    }


def cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds of a process and its children (API or worker processes)."""
    root = psutil.Process(proc.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total
