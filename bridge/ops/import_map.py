"""The `--map` file of `servers import`: username -> billing service id (CSV or JSON).

Validated whole before anything is read from the panel: a bad line changes nothing.
"""

import csv
import json
from pathlib import Path
from typing import Any

from bridge.errors import InvalidOrderError
from bridge.ops.linking import PLACEHOLDER_PREFIX


def load_mapping(path: Path) -> dict[str, str]:
    """Read a username -> billing service id map: JSON object, or CSV rows.

    CSV is `username,service_id` per line (a header line naming those two columns
    is allowed). Raises InvalidOrderError naming the problem.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidOrderError("map", f"cannot read {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except ValueError:
            raise InvalidOrderError("map", "not valid JSON") from None
        pairs = list(raw.items())
    else:
        pairs = [tuple(row) for row in csv.reader(text.splitlines()) if row]
        if pairs and [c.strip().lower() for c in pairs[0]] == [
            "username",
            "service_id",
        ]:
            pairs = pairs[1:]
    mapping: dict[str, str] = {}
    for number, pair in enumerate(pairs, start=1):
        username, service_id = _mapping_entry(number, pair)
        if username in mapping:
            raise InvalidOrderError("map", f"entry {number}: {username} given twice")
        mapping[username] = service_id
    ids = list(mapping.values())
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InvalidOrderError("map", f"service ids used twice: {', '.join(dupes)}")
    return mapping


def _mapping_entry(number: int, pair: tuple[Any, ...]) -> tuple[str, str]:
    if len(pair) != 2:  # noqa: PLR2004 - username and service id
        raise InvalidOrderError("map", f"entry {number}: expected username,service_id")
    username, service_id = (str(v).strip() if isinstance(v, str) else v for v in pair)
    if not isinstance(username, str) or not username:
        raise InvalidOrderError("map", f"entry {number}: empty username")
    if not isinstance(service_id, str) or not _valid_service_id(service_id):
        raise InvalidOrderError(
            "map", f"entry {number}: service id must be 1-128 printable characters"
        )
    if service_id.startswith(PLACEHOLDER_PREFIX):
        raise InvalidOrderError(
            "map", f"entry {number}: '{PLACEHOLDER_PREFIX}' ids are reserved"
        )
    return username, service_id


def _valid_service_id(value: str) -> bool:
    return 1 <= len(value) <= 128 and all(0x21 <= ord(c) <= 0x7E for c in value)  # noqa: PLR2004
