"""Bringing a chaos run up: a fresh database and Redis index, the simulator's
panels configured under the documented contract, the servers registered."""

from typing import Any

import psycopg
import redis
from sqlalchemy.engine import make_url

from bench.chaoslib.config import LOGIN_PANEL, PANELS, ChaosConfig
from bench.chaoslib.panels import SimPanel
from bench.chaoslib.procs import bridge_cli

# Settings shown in the report (never credentials).
REPORTED_PANEL_SETTINGS = (
    "limit",
    "window",
    "ssl_delay_s",
    "keyed_folders",
    "idempotency_window_s",
    "login_limit_per_min",
    "single_session",
    "ip_binding",
)


def fresh_database(url: str) -> None:
    """Drop and create the run's PostgreSQL database, then migrate it to head."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        msg = "the chaos run needs PostgreSQL (a postgresql+psycopg:// URL)"
        raise ValueError(msg)
    admin = parsed.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def fresh_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def configure_panels(cfg: ChaosConfig, root: str) -> dict[str, SimPanel]:
    """Open every panel; lift the license caps (not under test), seed the dice."""
    panels = {name: SimPanel(root, name) for name in PANELS}
    for number, panel in enumerate(panels.values()):
        panel.configure(
            limit=cfg.panel_limit,
            ssl_delay_s=cfg.ssl_delay,
            license_max_users=-1,
            license_max_domains=-1,
            seed=cfg.seed * 100 + number,
        )
    return panels


def register_servers(cfg: ChaosConfig, panels: dict[str, SimPanel]) -> None:
    """``bridge servers add`` each panel: api_key mode, the login panel by JWT."""
    for name, panel in panels.items():
        creds = panel.credentials()
        args = ["servers", "add", name, "--url", panel.url]
        # A capacity lets least_full placement spread the accounts (with none,
        # every panel looks equally empty and the first one gets them all).
        args += ["--limit", str(cfg.panel_limit), "--capacity", str(cfg.orders)]
        if name == LOGIN_PANEL:
            args += ["--username", creds["username"], "--password", creds["password"]]
        else:
            args += ["--api-key", creds["api_key"]]
        bridge_cli(cfg, *args)


def turn_faults_on(cfg: ChaosConfig, panels: dict[str, SimPanel]) -> None:
    for panel in panels.values():
        panel.faults(
            error_rate=cfg.error_rate,
            drop_after_apply_rate=cfg.drop_rate,
            stall_after_apply_rate=cfg.stall_rate,
            stall_seconds=cfg.stall_seconds,
            ssl_failure_rate=cfg.ssl_failure_rate,
        )


def panel_settings(panels: dict[str, SimPanel]) -> dict[str, Any]:
    """The contract-relevant settings of each panel, for the report."""
    return {
        name: {k: v for k, v in panel.config().items() if k in REPORTED_PANEL_SETTINGS}
        for name, panel in panels.items()
    }
