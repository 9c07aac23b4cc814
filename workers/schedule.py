"""Celery beat schedule: the dispatcher tick, the (enabled) sweeps, usage collection
and the package-list refresh."""

from typing import Any

from bridge.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "dispatch": {
            "task": "bridge.dispatch",
            "schedule": settings.dispatch_interval,
            # A tick older than a few intervals is pointless: the next one follows.
            "options": {"expires": max(settings.dispatch_interval * 5, 5)},
        },
    }
    # A sweep tick still queued half an interval later is dropped: the next one
    # follows, and two ticks (or two beats) running at once are safe anyway.
    sweep_options = {"expires": settings.sweep_interval_seconds / 2}
    if settings.suspend_sweep_enabled:
        schedule["sweep_suspend"] = {
            "task": "bridge.sweep_suspend",
            "schedule": settings.sweep_interval_seconds,
            "options": sweep_options,
        }
    if settings.terminate_sweep_enabled:
        schedule["sweep_terminate"] = {
            "task": "bridge.sweep_terminate",
            "schedule": settings.sweep_interval_seconds,
            "options": sweep_options,
        }
    # Daily by default: secrets of long-failed orders, then old orders' bodies.
    schedule["retention"] = {
        "task": "bridge.retention",
        "schedule": settings.purge_interval_seconds,
        "options": {"expires": settings.purge_interval_seconds / 2},
    }
    if settings.usage_collection_on:
        schedule["collect_usage"] = {
            "task": "bridge.collect_usage",
            "schedule": settings.usage_interval_seconds,
            "options": {"expires": settings.usage_interval_seconds / 2},
        }
    if settings.packages_refresh_seconds > 0:
        schedule["refresh_packages"] = {
            "task": "bridge.refresh_packages",
            "schedule": settings.packages_refresh_seconds,
            "options": {"expires": settings.packages_refresh_seconds / 2},
        }
    return schedule
