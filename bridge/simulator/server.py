"""Running the simulator: ``SimulatorServer`` (uvicorn in a background thread, for
tests) and ``serve`` (foreground, for the CLI). Only ``serve`` prints.
"""

import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import uvicorn

from bridge.simulator.app import SimulatorApp
from bridge.simulator.config import SimulatorConfig

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PanelCredentials:
    """The admin credentials a panel accepts."""

    api_key: str
    username: str
    password: str
    totp_secret: str | None = None


class SimulatorServer:
    """The simulator on a real socket, served from a daemon thread.

    ``port=0`` binds an ephemeral port; ``base_url`` tells which. Use as a
    context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        panels: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = SimulatorApp(config, panels)
        self.host = host
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(self.app, host, self.port))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Return the root panel's base URL (its API is at ``base_url + /api/v1``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def panel_names(self) -> list[str]:
        """Return the names of the extra panels (p1..pN)."""
        return list(self.app.panels)

    def panel_url(self, name: str | None = None) -> str:
        """Return a panel's base URL (the root panel's for ``None``)."""
        return self.base_url + self.app.panel(name).prefix

    def credentials(self, name: str | None = None) -> PanelCredentials:
        """Return the admin credentials of a panel (the root panel's for ``None``)."""
        config = self.app.panel(name).config
        return PanelCredentials(
            api_key=config.api_key or "",
            username=config.username,
            password=config.password or "",
            totp_secret=config.totp_secret,
        )

    def start(self) -> None:
        """Start serving; return once the socket accepts requests.

        Raises:
            RuntimeError: uvicorn did not come up within 10 s.
        """
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="wispanel-simulator",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("simulator server failed to start")
            time.sleep(0.01)

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C)."""
        self._server.run(sockets=[self._sock])

    def stop(self) -> None:
        """Stop serving and wait for the thread (stalled requests are cancelled)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT_S)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted sockets (it
    # checks the protocol number); with proto 0 every response paid a ~40 ms
    # Nagle/delayed-ACK stall between its header and body writes.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: SimulatorApp, host: str, port: int) -> uvicorn.Config:
    # h11 explicitly: the drop-after-apply fault relies on how uvicorn's HTTP/1.1
    # protocols close a connection whose response never started properly.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="h11",
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,  # leave the host process's logging configuration alone
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


def describe(server: SimulatorServer) -> str:
    """Return the base URL and admin credentials of every panel, for printing."""
    lines: list[str] = []
    for name in [None, *server.panel_names]:
        creds = server.credentials(name)
        lines += [
            f"panel {name or '(root)'}: {server.panel_url(name)}",
            f"  api_key:  {creds.api_key}",
            f"  username: {creds.username}",
            f"  password: {creds.password}",
        ]
        if creds.totp_secret:
            lines.append(f"  totp_secret: {creds.totp_secret}")
    return "\n".join(lines)


def serve(
    config: SimulatorConfig | None = None,
    panels: int = 0,
    host: str = "127.0.0.1",
    port: int = 3082,
) -> None:
    """Print what the simulator serves, then run it in the foreground until Ctrl-C."""
    server = SimulatorServer(config, panels, host, port)
    print(describe(server), flush=True)  # noqa: T201 - the CLI's output
    server.serve_forever()
