"""The planner: only what the order asks for, in order, secrets apart."""

import pytest

from bridge.domain.model import Action, OrderSpec, StepKind, SuspendReason
from bridge.domain.planner import plan
from tests.factories import create_spec


def test_full_create_plans_user_domain_ssl_mailboxes_in_order() -> None:
    steps = plan(create_spec())
    assert [s.kind for s in steps] == [
        StepKind.CREATE_USER,
        StepKind.CREATE_DOMAIN,
        StepKind.ISSUE_SSL,
        StepKind.CREATE_MAILBOX,
        StepKind.CREATE_MAILBOX,
    ]
    assert steps[0].secret == {"password": "correct-horse-battery"}
    assert "password" not in steps[0].body
    assert steps[2].params == {"domain": "site1.example"}
    assert steps[3].body == {
        "domain": "site1.example",
        "username": "info",
        "quota_mb": 100,
    }


def test_create_without_domain_is_only_the_user() -> None:
    steps = plan(create_spec(domain=None, ssl=False, mailboxes=()))
    assert [s.kind for s in steps] == [StepKind.CREATE_USER]


def test_create_with_domain_but_no_ssl_skips_the_certificate() -> None:
    kinds = [s.kind for s in plan(create_spec(ssl=False, mailboxes=()))]
    assert kinds == [StepKind.CREATE_USER, StepKind.CREATE_DOMAIN]


@pytest.mark.parametrize(
    ("spec", "kind", "body", "secret"),
    [
        (
            OrderSpec("o", "s", Action.SUSPEND, reason=SuspendReason.ABUSE),
            StepKind.SUSPEND_USER,
            {"reason": "abuse"},
            {},
        ),
        (OrderSpec("o", "s", Action.UNSUSPEND), StepKind.UNSUSPEND_USER, {}, {}),
        (OrderSpec("o", "s", Action.TERMINATE), StepKind.DELETE_USER, {}, {}),
        (
            OrderSpec("o", "s", Action.CHANGE_PACKAGE, package="pro"),
            StepKind.CHANGE_PACKAGE,
            {"package": "pro"},
            {},
        ),
        (
            OrderSpec("o", "s", Action.CHANGE_PASSWORD, password="new-secret-1"),
            StepKind.CHANGE_PASSWORD,
            {},
            {"password": "new-secret-1"},
        ),
    ],
)
def test_lifecycle_actions_are_one_step_on_the_services_user(
    spec: OrderSpec, kind: StepKind, body: dict[str, str], secret: dict[str, str]
) -> None:
    (step,) = plan(spec, username="alice")
    assert (step.kind, step.params, step.body, step.secret) == (
        kind,
        {"username": "alice"},
        body,
        secret,
    )


def test_lifecycle_without_username_is_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        plan(OrderSpec("o", "s", Action.TERMINATE))


def test_reseller_create_goes_through_resellers_with_its_limits() -> None:
    from bridge.domain.model import AccountRole, AccountSpec

    account = AccountSpec(
        "bob",
        "bob@example.com",
        "pw-1",
        "default",
        AccountRole.RESELLER,
        (("max_users", 5),),
    )
    steps = plan(OrderSpec("o", "s", Action.CREATE, account=account))
    assert [s.kind for s in steps] == [
        StepKind.CREATE_RESELLER,
        StepKind.SET_RESELLER_LIMITS,
    ]
    assert steps[1].params == {"username": "bob"}
    assert steps[1].body == {"max_users": 5}


def test_reseller_terminate_carries_force() -> None:
    from bridge.domain.model import AccountRole

    spec = OrderSpec("o", "s", Action.TERMINATE, force=True)
    (step,) = plan(spec, username="bob", role=AccountRole.RESELLER)
    assert (step.kind, step.body) == (StepKind.DELETE_RESELLER, {"force": True})
