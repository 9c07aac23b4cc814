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
        Settings(
            suspend_sweep_enabled=False,
            terminate_sweep_enabled=False,
            usage_enabled=False,
            packages_refresh_seconds=0,
        )
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
    assert {
        "bridge.collect_usage",
        "bridge.collect_server_usage",
        "bridge.refresh_packages",
    } <= set(app.tasks)


def test_usage_collection_ticks_every_usage_interval() -> None:
    schedule = beat_schedule(Settings(usage_interval_seconds=900))
    assert schedule["collect_usage"]["task"] == "bridge.collect_usage"
    assert schedule["collect_usage"]["schedule"] == 900


def test_usage_collection_is_off_when_disabled_or_interval_zero() -> None:
    assert "collect_usage" not in beat_schedule(Settings(usage_enabled=False))
    assert "collect_usage" not in beat_schedule(Settings(usage_interval_seconds=0))


def test_package_refresh_is_scheduled_unless_zero() -> None:
    schedule = beat_schedule(Settings(packages_refresh_seconds=1800))
    assert schedule["refresh_packages"]["task"] == "bridge.refresh_packages"
    assert schedule["refresh_packages"]["schedule"] == 1800
    assert "refresh_packages" not in beat_schedule(Settings(packages_refresh_seconds=0))


def test_tasks_are_registered_on_the_given_app_only() -> None:
    # Celery's shared tasks would also land on every app created later in the
    # process, once per register_tasks call: duplicates Celery 5.7 refuses.
    def no_services() -> None:
        raise AssertionError

    for _ in range(2):
        register_tasks(Celery("earlier", set_as_current=False), no_services)  # type: ignore[arg-type]
    later = Celery("later", set_as_current=False)
    assert "bridge.run_order" not in later.tasks
    register_tasks(later, no_services)  # type: ignore[arg-type]
    assert "bridge.run_order" in later.tasks
