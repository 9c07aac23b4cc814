"""Celery beat schedule: the dispatcher tick (sweeps join with the lifecycle issue)."""

from typing import Any

from bridge.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "dispatch": {
            "task": "bridge.dispatch",
            "schedule": settings.dispatch_interval,
            # A tick older than a few intervals is pointless: the next one follows.
            "options": {"expires": max(settings.dispatch_interval * 5, 5)},
        },
    }
