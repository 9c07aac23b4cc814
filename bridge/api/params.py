"""Query parameter types that several routers share, bounded so that no value a
client can send reaches the database out of its range.

- `Page`: (page - 1) * per_page must fit PostgreSQL's OFFSET (a bigint); an
  unbounded page number answers 500 ("bigint out of range") instead of 422.
- `UtcMoment`: an aware datetime, normalised to UTC at the edge. A value such as
  `0001-01-01T00:00+14:00` is valid ISO 8601 but has no UTC form a datetime can
  hold; converting it later, when binding it to a query, raised OverflowError.
"""

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime

from bridge.errors import InvalidOrderError
from bridge.ops.timespec import as_utc

MAX_PAGE = 1_000_000
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def _utc(value: datetime) -> datetime:
    try:
        return as_utc(value, "since")
    except InvalidOrderError as exc:
        # pydantic turns a ValueError into a field error naming the parameter.
        raise ValueError(exc.reason) from None


UtcMoment = Annotated[AwareDatetime, AfterValidator(_utc)]
