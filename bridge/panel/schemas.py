"""Shapes the client hands back: one answer, one page of a list, a connection report.

List endpoints answer in three shapes (wispanel-api.md §6): a plain array,
`{<plural>: [...] | null, total}` and `{data: [...], meta: {...}}`; `null` is empty.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PanelResponse:
    """A successful (or desired-state) panel answer; `replayed` = idempotent replay."""

    status: int
    data: Any
    headers: Mapping[str, str]
    replayed: bool


@dataclass(frozen=True, slots=True)
class PanelPage:
    """One page of a list; `last_page` is 1 for the unpaginated shapes."""

    items: list[dict[str, Any]]
    total: int
    current_page: int = 1
    last_page: int = 1
    response: PanelResponse | None = field(default=None, repr=False, compare=False)

    @property
    def has_more(self) -> bool:
        return self.current_page < self.last_page


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    limit: int | None
    remaining: int | None
    reset: int | None


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """How the connection was trusted (`system`, `ca_bundle`, `pin`, `none`)."""

    mode: str
    protocol: str | None
    cipher: str | None
    peer_fingerprint: str | None


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """What `bridge servers test` shows: who we are on the panel and its limits."""

    server: str
    base_url: str
    auth_mode: str
    me: dict[str, Any]
    version: str | None
    license: dict[str, Any] | None
    rate_limit: RateLimitInfo
    tls: TlsInfo | None
    notes: tuple[str, ...] = ()


def parse_page(data: Any, plural: str) -> PanelPage | None:
    """Read any of the three list shapes; None when `data` is none of them."""
    if isinstance(data, list):
        return PanelPage(items=_dicts(data), total=len(data))
    if not isinstance(data, Mapping):
        return None
    if "data" in data and isinstance(data.get("meta"), Mapping):
        items = _dicts(data.get("data") or [])
        meta = data["meta"]
        return PanelPage(
            items=items,
            total=_int(meta.get("total"), len(items)),
            current_page=_int(meta.get("current_page"), 1),
            last_page=max(_int(meta.get("last_page"), 1), 1),
        )
    for key in (plural, "data", "items"):
        if key in data and (data[key] is None or isinstance(data[key], list)):
            items = _dicts(data[key] or [])
            return PanelPage(items=items, total=_int(data.get("total"), len(items)))
    return None


def _dicts(values: Any) -> list[dict[str, Any]]:
    if not isinstance(values, list):
        return []
    return [dict(v) for v in values if isinstance(v, Mapping)]


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
