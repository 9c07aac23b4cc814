"""Lazily built settings and Services for CLI commands (built once per invocation).

With BRIDGE_REDIS_URL unset, a command adopts the embedded Redis of a `bridge run`
that is running on the same var directory (see bridge.cli.runtime), so the README's
commands work in a second terminal as written.
"""

from typing import TYPE_CHECKING

import structlog

from bridge.cli.runtime import RunInfo, live_run_info
from bridge.errors import ConfigurationError
from bridge.logging import configure_logging
from bridge.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from bridge.container import Services


class CliContext:
    """Holds what a command needs; nothing is built until a command asks for it."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._run_info: RunInfo | None = None
        self._services: Services | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings, generated = load_settings()
            configure_logging(settings)
            for name in generated:
                structlog.get_logger("bridge.cli").warning(
                    "development_secret_generated",
                    variable=name,
                    path=str(settings.var_dir / "dev-secrets.json"),
                )
            self._run_info = live_run_info(settings.var_dir)
            if settings.redis_url is None and self._run_info is not None:
                settings = settings.model_copy(
                    update={"redis_url": self._run_info.redis_url}
                )
            self._settings = settings
        return self._settings

    @property
    def run_info(self) -> RunInfo | None:
        """The `bridge run` alive on this var directory, if any."""
        _ = self.settings
        return self._run_info

    @property
    def api_url(self) -> str:
        """The running bridge's API, else the configured host and port."""
        info = self.run_info
        if info is not None:
            return info.api_url
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def services(self) -> "Services":
        if self._services is None:
            if self.settings.redis_url is None:
                msg = (
                    "BRIDGE_REDIS_URL: not set, and no `bridge run` is running on "
                    f"{self.settings.var_dir} (start `make run` or set the variable)"
                )
                raise ConfigurationError(msg)
            # Imported here: commands that exec Celery or only read the run
            # file never load the stack (see bridge.cli).
            from bridge.container import build_services

            self._services = build_services(self.settings)
        return self._services

    @property
    def sessions(self) -> "sessionmaker[Session]":
        """Database sessions only: read-only commands need no Redis."""
        if self._services is not None:
            return self._services.sessions
        if self._sessions is None:
            from bridge.db.session import make_engine, make_session_factory

            self._engine = make_engine(self.settings.effective_database_url)
            self._sessions = make_session_factory(self._engine)
        return self._sessions

    def close(self) -> None:
        if self._services is not None:
            self._services.close()
            self._services = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = None
