"""Beat schedule and task names: sweeps are scheduled only when enabled."""

from celery import Celery

from bridge.settings import Settings
from workers.schedule import beat_schedule
from workers.tasks import register_tasks


def test_enabled_sweeps_tick_every_sweep_interval() -> None:
    schedule = beat_schedule(Settings(sweep_interval_seconds=600))
    assert schedule["sweep_suspend"]["task"] == "bridge.sweep_suspend"
    assert schedule["sweep_terminate"]["task"] == "bridge.sweep_terminate"
    assert schedule["sweep_suspend"]["schedule"] == 600
    assert schedule["sweep_terminate"]["options"] == {"expires": 300}


def test_disabled_sweeps_are_not_scheduled() -> None:
    schedule = beat_schedule(
        Settings(suspend_sweep_enabled=False, terminate_sweep_enabled=True)
    )
    assert "sweep_suspend" not in schedule
    assert "sweep_terminate" in schedule
    none = beat_schedule(
        Settings(suspend_sweep_enabled=False, terminate_sweep_enabled=False)
    )
    assert set(none) == {"dispatch", "retention"}


def test_retention_runs_on_its_interval_by_default() -> None:
    schedule = beat_schedule(Settings(purge_interval_seconds=600))
    assert schedule["retention"]["task"] == "bridge.retention"
    assert schedule["retention"]["schedule"] == 600


def test_sweep_tasks_are_registered_under_their_stable_names() -> None:
    app = Celery("test", set_as_current=False)

    def no_services() -> None:
        raise AssertionError

    register_tasks(app, no_services)  # type: ignore[arg-type]
    assert {"bridge.sweep_suspend", "bridge.sweep_terminate"} <= set(app.tasks)
