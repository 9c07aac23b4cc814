"""Opt-in pagination of list endpoints (ASSUMED contract, §6).

Without ``page``/``per_page`` a list keeps its legacy shape; with either, it is
``{"success": true, "data": [...], "meta": {total, per_page, current_page,
last_page}}``.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.simulator.errors import ApiValidationError

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100


def wants_page(query: Mapping[str, str]) -> bool:
    """Return whether the caller opted into pagination."""
    return "page" in query or "per_page" in query


def paginate(items: Sequence[Any], query: Mapping[str, str]) -> dict[str, Any]:
    """Return one page of ``items`` in the paginated shape.

    Raises:
        ApiValidationError: ``page`` < 1 or ``per_page`` < 1 or not integers.
    """
    page = _positive(query, "page", 1)
    per_page = min(_positive(query, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    total = len(items)
    start = (page - 1) * per_page
    return {
        "success": True,
        "data": list(items[start : start + per_page]),
        "meta": {
            "total": total,
            "per_page": per_page,
            "current_page": page,
            "last_page": max(1, math.ceil(total / per_page)),
        },
    }


def _positive(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ApiValidationError(f"{name} must be a positive integer", name)
    return value
