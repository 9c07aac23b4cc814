"""Creates of new services that arrive together share one transaction (PostgreSQL).

Each test holds an EXCLUSIVE lock on `orders` while a first create leads a batch
(it blocks at its INSERT), queues the creates under test behind it, then releases
the lock: they are then accepted as one batch. Rows written by one transaction
share their `xmin`, so the tests read what was committed together from the
database itself.
"""

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from bridge.container import Services
from bridge.domain.model import AuthMode, OrderSpec
from bridge.errors import InvalidOrderError
from bridge.fleet import ServerSpec, save_server
from bridge.intake import IntakeResult, accept_order, body_digest
from tests.factories import create_spec

pytestmark = pytest.mark.integration

_WAIT_S = 20.0


@pytest.fixture(autouse=True)
def _postgresql_only(committed_db: Engine) -> None:
    if committed_db.dialect.name != "postgresql":
        pytest.fail("these tests read PostgreSQL's xmin: run them on PostgreSQL")


def _add(services: Services, name: str, capacity: int | None) -> None:
    with services.sessions.begin() as session:
        save_server(
            session,
            services.box,
            ServerSpec(
                name=name,
                base_url=f"http://{name}.invalid:3082",
                auth_mode=AuthMode.API_KEY,
                api_key="wsp_" + "cd" * 24,
                group="shared",
                capacity=capacity,
            ),
        )


def _spec(n: int, **overrides: Any) -> OrderSpec:
    values: dict[str, Any] = {"server_group": "shared"}
    values.update(overrides)
    return create_spec(n, **values)


def _accept(services: Services, spec: OrderSpec) -> IntakeResult:
    return accept_order(services, spec, body_sha256=body_digest(repr(spec)))


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _blocked_on_a_lock(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def _together(
    services: Services, specs: Sequence[OrderSpec]
) -> list[Future[IntakeResult]]:
    """Accept `specs` as one batch, behind a leading create (`ord-0`)."""
    pool = ThreadPoolExecutor(max_workers=len(specs) + 1)
    with services.engine.connect() as holder:
        holder.execute(text("LOCK TABLE orders IN EXCLUSIVE MODE"))
        leader = pool.submit(_accept, services, _spec(0))
        _until(lambda: _blocked_on_a_lock(services.engine) == 1)
        futures = [pool.submit(_accept, services, spec) for spec in specs]
        _until(lambda: services.intake_commits.waiting() == len(specs))
        holder.commit()
    pool.shutdown(wait=True)
    assert leader.result().created
    return futures


def _xmins(engine: Engine, sql: str) -> dict[str, str]:
    with engine.connect() as conn:
        return {row[0]: str(row[1]) for row in conn.execute(text(sql))}


def _batches_of_5_to_8() -> float:
    def bucket(le: str) -> float:
        value = REGISTRY.get_sample_value("bridge_intake_batch_size_bucket", {"le": le})
        return value or 0.0

    return bucket("8.0") - bucket("4.0")


def _order_xmins(engine: Engine) -> dict[str, str]:
    return _xmins(engine, "SELECT order_id, xmin FROM orders")


def _orders_per_server(engine: Engine) -> dict[str, int]:
    """Orders per server name ('-': none yet, waiting for capacity)."""
    sql = (
        "SELECT coalesce(s.name, '-'), count(*) FROM orders o "
        "LEFT JOIN servers s ON s.id = o.server_id GROUP BY 1"
    )
    with engine.connect() as conn:
        return {str(name): int(n) for name, n in conn.execute(text(sql))}


@pytest.fixture
def shared(services: Services) -> Services:
    _add(services, "a", capacity=None)
    return services


def test_creates_arriving_together_are_written_in_one_transaction(
    shared: Services,
) -> None:
    specs = [_spec(n) for n in range(1, 7)]
    before = _batches_of_5_to_8()
    results = [f.result() for f in _together(shared, specs)]
    assert _batches_of_5_to_8() == before + 1  # bridge_intake_batch_size
    assert all(r.created for r in results)
    orders = _order_xmins(shared.engine)
    batch = {orders[f"ord-{n}"] for n in range(1, 7)}
    assert len(batch) == 1
    assert orders["ord-0"] not in batch
    (xmin,) = batch
    # Every row of every order of the batch: its service, whole plan, audit
    # entry and duplicate-check record, in that one transaction.
    for table, column, expected in [
        ("services", "service_id", 6),
        ("steps", "idempotency_key", 6 * 5),
        ("audit_log", "id::text", 6),
        ("intake_requests", "key", 6),
    ]:
        rows = _xmins(
            shared.engine,
            f"SELECT {column}, xmin FROM {table} WHERE xmin::text = '{xmin}'",  # noqa: S608
        )
        assert len(rows) == expected, table
    # Each caller got its own order back, with its own plan.
    for spec, result in zip(specs, results, strict=True):
        body = result.response["order"]
        assert body["order_id"] == spec.order_id
        assert body["service_id"] == spec.service_id
        assert [s["kind"] for s in body["steps"]] == [
            "create_user",
            "create_domain",
            "issue_ssl",
            "create_mailbox",
            "create_mailbox",
        ]
    keys = _xmins(shared.engine, "SELECT idempotency_key, xmin FROM steps")
    assert len(keys) == 7 * 5  # fresh, distinct keys for every step


def test_a_create_refused_by_its_checks_leaves_the_batch_with_its_own_error(
    shared: Services,
) -> None:
    specs = [_spec(1), _spec(2, server="no-such-server"), _spec(3)]
    futures = _together(shared, specs)
    with pytest.raises(InvalidOrderError) as refused:
        futures[1].result()
    assert refused.value.field == "server"
    assert futures[0].result().created
    assert futures[2].result().created
    orders = _order_xmins(shared.engine)
    assert set(orders) == {"ord-0", "ord-1", "ord-3"}
    assert orders["ord-1"] == orders["ord-3"]


def test_a_duplicate_inside_a_batch_is_answered_as_a_replay(
    shared: Services,
) -> None:
    twin = _spec(2)
    futures = _together(shared, [_spec(1), twin, twin, _spec(3)])
    results = [f.result() for f in futures]
    assert [r.created for r in results].count(False) == 1
    first, second = results[1], results[2]
    assert first.response == second.response  # the replay is the first answer
    assert set(_order_xmins(shared.engine)) == {"ord-0", "ord-1", "ord-2", "ord-3"}


def test_a_batch_fills_limited_servers_as_single_creates_would(
    services: Services,
) -> None:
    _add(services, "a", capacity=3)  # ord-0 takes one of a's slots
    _add(services, "b", capacity=1)
    futures = _together(services, [_spec(n) for n in range(1, 6)])
    assert all(f.result().created for f in futures)
    assert _orders_per_server(services.engine) == {"a": 3, "b": 1, "-": 2}
    orders = _order_xmins(services.engine)
    assert len({orders[f"ord-{n}"] for n in range(1, 6)}) == 1


def test_a_batch_spreads_unlimited_servers_by_account_count(
    shared: Services,
) -> None:
    _add(shared, "b", capacity=None)  # ord-0 goes to a (name order)
    futures = _together(shared, [_spec(n) for n in range(1, 6)])
    assert all(f.result().created for f in futures)
    assert _orders_per_server(shared.engine) == {"a": 3, "b": 3}
