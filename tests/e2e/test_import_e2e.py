"""Accounts made on the panel by hand, imported, then suspended by billing through
the intake API and a real worker process."""

import pytest

from bridge.container import Services
from bridge.db.models import Server
from tests.e2e.conftest import WorkerProcess, wait_until
from tests.e2e.test_orders_e2e import finished, get_order, post_order
from tests.integration.test_import import run_import
from tests.panel_api import PanelApi
from tests.simctl import SimControl

pytestmark = pytest.mark.e2e


def test_an_imported_account_is_suspended_by_a_billing_order(
    api, services: Services, server: Server, sim: SimControl,
    panel_api: PanelApi, worker: WorkerProcess,
) -> None:  # fmt: skip
    # Given: two accounts created on the panel behind the bridge's back
    panel_api.create_user("carol", package="basic")
    panel_api.create_user("dave")
    report = run_import(services, mapping={"carol": "whmcs-31"})
    assert report["counts"] == {"imported": 2, "skipped": 1}
    # When: billing suspends carol, and (by its placeholder) dave
    first = post_order(
        api, {"order_id": "s-1", "service_id": "whmcs-31", "action": "suspend"}
    )
    second = post_order(
        api,
        {"order_id": "s-2", "service_id": "import:sim:dave", "action": "suspend"},
    )
    # Then
    for order in (first, second):
        wait_until(lambda o=order: finished(api, o["id"]), 60, "the suspension")
        final = get_order(api, order["id"])
        assert final["status"] == "completed", (final, worker.log_tail())
    users = sim.state()["users"]
    assert users["carol"]["status"] == "suspended"
    assert users["dave"]["status"] == "suspended"
    assert sim.ledger()["user"] == {"carol": 1, "dave": 1}  # made by hand, once
