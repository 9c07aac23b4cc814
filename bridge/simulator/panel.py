"""Panel: all one simulated panel owns (config, clock, state, limits, faults, log).

A process hosts several panels; they share nothing. All mutation happens on the
server's event loop, so no locks are needed.
"""

import secrets
from typing import Any

from bridge.simulator.clock import PanelClock, format_ts, format_utc
from bridge.simulator.config import SimulatorConfig
from bridge.simulator.faults import Dice, Faults
from bridge.simulator.idempotency import IdempotencyStore
from bridge.simulator.persistence import load_state, save_state
from bridge.simulator.ratelimit import RateLimiter
from bridge.simulator.records import DeliveryLog
from bridge.simulator.state import PanelState

_CREDENTIAL_FIELDS = ("api_key", "username", "password", "totp_secret", "email")


class Panel:
    """One simulated WisPanel server."""

    def __init__(self, name: str | None, config: SimulatorConfig) -> None:
        self.name = name
        self.startup_config = config.resolved()
        self.config = self.startup_config
        self.clock = PanelClock()
        self.limiter = RateLimiter()
        self.login_limiter = RateLimiter()
        self.idempotency = IdempotencyStore()
        self.faults = Faults()
        self.dice = Dice(self.config.seed)
        self.requests: list[dict[str, Any]] = []
        self.deliveries: list[DeliveryLog] = []
        self.jwt_secret = secrets.token_hex(32)
        self.state = PanelState()
        loaded = load_state(self.config.state_file) if self.config.state_file else None
        if loaded is not None:
            self.state, self.jwt_secret = loaded
        self.state.install_admin(self.config, self.now())

    @property
    def prefix(self) -> str:
        """Return the URL path prefix of this panel ('' for the root panel)."""
        return f"/p/{self.name}" if self.name else ""

    def now(self) -> float:
        """Return the panel clock's time in Unix seconds."""
        return self.clock.now()

    def fmt(self, ts: float | None) -> str:
        """Format a timestamp in the panel's local offset."""
        return format_ts(ts, self.config.tz_offset_minutes)

    def reset(self) -> None:
        """Return to the startup config with a fresh seeded state and no history."""
        self.config = self.startup_config
        self.clock.reset()
        self.limiter.clear()
        self.login_limiter.clear()
        self.idempotency.clear()
        self.faults = Faults()
        self.dice = Dice(self.config.seed)
        self.requests.clear()
        self.deliveries.clear()
        self.jwt_secret = secrets.token_hex(32)
        self.state = PanelState()
        self.state.install_admin(self.config, self.now())
        self.save()

    def configure(self, changes: dict[str, Any]) -> None:
        """Apply runtime config changes (same field names as SimulatorConfig).

        Raises:
            ValueError: an invalid field or value; nothing is changed then.
        """
        new = self.config.updated(changes).resolved()
        old, self.config = self.config, new
        if (old.window, old.limit) != (new.window, new.limit):
            self.limiter.clear()
        if old.seed != new.seed:
            self.dice = Dice(new.seed)
        if any(getattr(old, f) != getattr(new, f) for f in _CREDENTIAL_FIELDS):
            self.state.install_admin(new, self.now())

    def revoke(self, username: str | None = None) -> dict[str, int]:
        """Bump the token version of one user, or of every user."""
        versions: dict[str, int] = {}
        for user in self.state.users.values():
            if username is None or user.username == username:
                user.token_version += 1
                versions[user.username] = user.token_version
        return versions

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append one API request to the inspection log."""
        self.requests.append(entry)

    def request_entry(self, method: str, path: str, key: str | None) -> dict[str, Any]:
        """Start a log entry for a request arriving now."""
        return {
            "method": method,
            "path": path,
            "idempotency_key": key,
            "status": None,
            "at": format_utc(self.now()),
            "replayed": False,
            "fault": None,
        }

    def save(self) -> None:
        """Persist the state when the panel has a state file."""
        if self.config.state_file:
            save_state(self.config.state_file, self.state, self.jwt_secret)
