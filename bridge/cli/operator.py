"""Who runs a CLI command, for the audit log, and shared human-output helpers.

The actor is `ops:<login name>`: `os.getlogin()` (the human at the terminal, even
under `sudo -u bridge`), else the process user (USER/LOGNAME, then the password
database) when there is no controlling terminal, as under cron or systemd.
"""

import getpass
import os

from rich.markup import escape

_STATUS_STYLE = {
    "completed": "green",
    "active": "green",
    "failed": "red",
    "disabled": "red",
    "cancelled": "dim",
    "revoked": "dim",
    "waiting": "yellow",
    "draining": "yellow",
    "awaiting_capacity": "yellow",
    "running": "cyan",
    "queued": "blue",
}


def cli_actor() -> str:
    try:
        name = os.getlogin()
    except OSError:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return f"ops:{name}"


def styled(status: str | None) -> str:
    """A status word in its colour (rich markup; plain when not a terminal)."""
    if status is None:
        return ""
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{escape(status)}[/{style}]" if style else escape(status)


def cell(value: object, width: int | None = None) -> str:
    """Free text for a rich table: escaped (panel errors contain brackets), cut."""
    if value is None:
        return ""
    text = str(value)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return escape(text)
