"""The WisPanel client: PanelClient, its configuration and the panel error tree."""

from bridge.panel.client import PanelClient
from bridge.panel.config import Budget, PanelConfig, PanelTimeouts
from bridge.panel.errors import (
    PanelAlreadyExistsError,
    PanelAlreadyInStateError,
    PanelAuthError,
    PanelBusyError,
    PanelError,
    PanelKeyMismatchError,
    PanelNotFoundError,
    PanelNotSentError,
    PanelOutcomeUnknownError,
    PanelPermanentError,
    PanelRejectedError,
    PanelRetryableError,
    PanelThrottledError,
    classify,
)
from bridge.panel.routes import DEFAULT_ROUTES, Route, resolve_routes
from bridge.panel.schemas import (
    ConnectionReport,
    PanelPage,
    PanelResponse,
    RateLimitInfo,
    TlsInfo,
)

__all__ = [
    "DEFAULT_ROUTES",
    "Budget",
    "ConnectionReport",
    "PanelAlreadyExistsError",
    "PanelAlreadyInStateError",
    "PanelAuthError",
    "PanelBusyError",
    "PanelClient",
    "PanelConfig",
    "PanelError",
    "PanelKeyMismatchError",
    "PanelNotFoundError",
    "PanelNotSentError",
    "PanelOutcomeUnknownError",
    "PanelPage",
    "PanelPermanentError",
    "PanelRejectedError",
    "PanelResponse",
    "PanelRetryableError",
    "PanelThrottledError",
    "PanelTimeouts",
    "RateLimitInfo",
    "Route",
    "TlsInfo",
    "classify",
    "resolve_routes",
]
