"""Lazily built settings and Services for CLI commands (built once per invocation)."""

import structlog

from bridge.container import Services, build_services
from bridge.logging import configure_logging
from bridge.settings import Settings, load_settings


class CliContext:
    """Holds what a command needs; nothing is built until a command asks for it."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._services: Services | None = None

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
            self._settings = settings
        return self._settings

    @property
    def services(self) -> Services:
        if self._services is None:
            self._services = build_services(self.settings)
        return self._services

    def close(self) -> None:
        if self._services is not None:
            self._services.close()
            self._services = None
