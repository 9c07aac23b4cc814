"""ChaosConfig: every size, rate and duration of one chaos run, and the BRIDGE_*
environment the bridge's processes get from it."""

import base64
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INTAKE_SECRET = "chaos-intake-secret"  # noqa: S105 - a throwaway run's secret
ADMIN_TOKEN = "chaos-admin-token"  # noqa: S105 - a throwaway run's token
PANELS = ("p1", "p2", "p3")
LOGIN_PANEL = "p3"  # the panel the bridge reaches in login (JWT) mode


@dataclass(frozen=True)
class ChaosConfig:
    """One run. Durations are seconds; rates are probabilities per mutating call."""

    orders: int = 1000
    seed: int = 1
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/bridge_chaos"
    redis_url: str = "redis://127.0.0.1:6379/8"
    workdir: Path = Path("var/chaos")
    workers: int = 3
    worker_threads: int = 4
    post_rate: float = 3.0  # orders per second billing posts
    kill_every: float = 15.0  # a random worker is SIGKILLed this often
    min_kills: int = 20  # kills go on into the drain until this many happened
    restart_delay: float = 1.0  # a killed worker comes back after this
    storm_every: float = 45.0  # a 429 storm on a random panel this often
    storm_seconds: float = 3.0
    drain_timeout: float = 600.0
    drain_idle: float = 120.0  # give up the drain once no order finished for this long
    # Fault rates on every panel (bridge/simulator/faults.py).
    error_rate: float = 0.10
    drop_rate: float = 0.05
    stall_rate: float = 0.02
    stall_seconds: float = 6.0  # longer than the lease
    # A permanent panel answer: the certificate ends "failed" (domain does not
    # resolve), so failed creates and what billing sends after them are exercised.
    ssl_failure_rate: float = 0.02
    # Panel and bridge timing.
    panel_limit: int = 1200  # requests/min per panel, and the bridge's budget
    ssl_delay: float = 1.0
    lease_seconds: float = 3.0
    dispatch_interval: float = 0.5
    backoff_base: float = 0.2
    backoff_cap: float = 2.0
    busy_retry: float = 0.3
    ssl_poll: float = 0.5
    circuit_probe: float = 1.0
    connect_timeout: float = 2.0
    read_timeout: float = 10.0  # longer than a stall: a stalled answer arrives late
    secret_key: str = field(
        default_factory=lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()
    )

    def bridge_env(self) -> dict[str, str]:
        """The environment of every bridge process (api, worker, beat, CLI)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
        # A parent test run's coverage must not slow the chaos processes down.
        env = {k: v for k, v in env.items() if not k.startswith(("COV", "COVERAGE"))}
        values: dict[str, Any] = {
            "env": "development",
            "var_dir": self.workdir / "var",
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "secret_key": self.secret_key,
            "intake_secret": INTAKE_SECRET,
            "admin_token": ADMIN_TOKEN,
            "log_format": "json",
            "log_level": "INFO",
            "dispatch_interval": self.dispatch_interval,
            "lease_seconds": self.lease_seconds,
            "backoff_base_seconds": self.backoff_base,
            "backoff_cap_seconds": self.backoff_cap,
            "busy_retry_seconds": self.busy_retry,
            "ssl_poll_seconds": self.ssl_poll,
            "ssl_poll_first_seconds": self.ssl_poll,
            "circuit_probe_seconds": self.circuit_probe,
            "panel_connect_timeout": self.connect_timeout,
            "panel_read_timeout": self.read_timeout,
            "panel_write_timeout": self.read_timeout,
            "panel_pool_timeout": self.connect_timeout,
            "suspend_sweep_enabled": "false",
            "terminate_sweep_enabled": "false",
        }
        env.update({f"BRIDGE_{k.upper()}": str(v) for k, v in values.items()})
        return env

    def public(self) -> dict[str, Any]:
        """The settings for the report (no secret key)."""
        data = asdict(self)
        data.pop("secret_key")
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}
