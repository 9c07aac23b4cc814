"""Optional JSON persistence of a panel's resources (``state_file``).

Saved atomically after every mutating API call and every reset; idempotency
records, rate windows and faults are not persisted.
"""

import json
import os
from pathlib import Path

from bridge.simulator.state import PanelState


def load_state(path: str) -> tuple[PanelState, str] | None:
    """Return the saved state and JWT secret, or None when the file is absent."""
    file = Path(path)
    if not file.exists():
        return None
    data = json.loads(file.read_text(encoding="utf-8"))
    return PanelState.from_json(data["state"]), str(data["jwt_secret"])


def save_state(path: str, state: PanelState, jwt_secret: str) -> None:
    """Write the state (and the JWT secret, so sessions survive a restart)."""
    file = Path(path)
    tmp = file.with_name(file.name + ".tmp")
    payload = {"state": state.to_json(), "jwt_secret": jwt_secret}
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, file)
