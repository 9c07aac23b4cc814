"""structlog configuration and the redaction processor; nothing else.

`configure_logging(settings)` is called once per process. Context (request_id,
order_id, task_id) is bound with `structlog.contextvars` by the edges.
"""

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bridge.settings import LogFormat, Settings

REDACTED = "[redacted]"

# Key names whose values are secrets wherever they appear (matched case-insensitively
# as substrings, so "admin_token", "X-New-Token" and "totp_secret" are all caught).
_SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "cookie",
    "signature",
    "totp",
    "credential",
)

# Secrets that hide inside free text (exception messages, URLs, reprs).
_TEXT_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    (re.compile(r"wsp_[0-9A-Za-z]{6,}"), "wsp_" + REDACTED),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|api[_-]?key|totp[_a-z]*)"
            r"['\"]?\s*[:=]\s*['\"]?)[^'\"\s,&}]+"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)(://[^:/@\s]+:)[^@\s]+@"), r"\1" + REDACTED + "@"),
)


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    """Scrub bearer tokens, API keys, JWTs and key=value secrets from free text."""
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Return a copy of `value` with secret keys masked at any depth."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) else redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in every key, nested value and exception."""
    out: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        out[key] = REDACTED if is_secret_key(key) else redact_value(value)
    return dict(out)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]


# Libraries whose INFO lines are per request: configure_logging keeps them at WARNING.
QUIET_LOGGERS = ("httpx", "httpcore", "uvicorn.access")


def configure_logging(settings: Settings) -> None:
    """Route structlog and stdlib logging through one redacting formatter."""
    fmt = settings.log_format
    if fmt is LogFormat.AUTO:
        fmt = LogFormat.JSON if settings.is_production else LogFormat.CONSOLE
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # stdlib records (celery, uvicorn) get the context; both kinds then share
            # the same level/time/exception/redaction chain exactly once.
            foreign_pre_chain=shared[:1],
            processors=[
                *shared[1:],
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
