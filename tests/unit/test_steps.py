"""The step tables of bridge.steps: every kind is classified, so none can forget
its read before a re-send or the secret a retry needs."""

import pytest

from bridge.domain.model import (
    AccountRole,
    AccountSpec,
    Action,
    MailboxSpec,
    OrderSpec,
    StepKind,
)
from bridge.domain.planner import plan
from bridge.steps import (
    READABLE_KINDS,
    RESEND_SAFE_KINDS,
    SECRET_KINDS,
    StepDefinitionError,
    reads_first,
)


def test_every_kind_either_has_a_read_or_is_safe_to_resend() -> None:
    assert set(StepKind) == READABLE_KINDS | RESEND_SAFE_KINDS
    assert not READABLE_KINDS & RESEND_SAFE_KINDS


def test_a_read_is_taken_only_when_owed_and_never_for_a_resend_safe_kind() -> None:
    assert reads_first(StepKind.ISSUE_SSL, owed=True)
    assert not reads_first(StepKind.ISSUE_SSL, owed=False)
    assert not reads_first(StepKind.SUSPEND_USER, owed=True)


def test_a_kind_that_owes_a_read_it_does_not_have_is_an_error() -> None:
    # What a new non-keyed kind left out of both tables meets: never a re-send.
    with pytest.raises(StepDefinitionError, match="create_mailbox owes a read"):
        reads_first(
            StepKind.CREATE_MAILBOX,
            owed=True,
            readable=frozenset(),
            resend_safe=frozenset(),
        )
    assert not reads_first(
        StepKind.CREATE_MAILBOX,
        owed=False,
        readable=frozenset(),
        resend_safe=frozenset(),
    )


def _specs() -> list[tuple[OrderSpec, AccountRole]]:
    specs: list[tuple[OrderSpec, AccountRole]] = []
    for role in AccountRole:
        account = AccountSpec("u1", "u1@example.com", "pw-1", "default", role=role)
        specs.append(
            (
                OrderSpec(
                    order_id=f"create-{role.value}",
                    service_id="s1",
                    action=Action.CREATE,
                    account=account,
                    domain="site.example",
                    ssl=True,
                    mailboxes=(MailboxSpec("info", "pw-2"),),
                ),
                role,
            )
        )
        for action in Action:
            if action is not Action.CREATE:
                spec = OrderSpec(
                    order_id=f"{action.value}-{role.value}",
                    service_id="s1",
                    action=action,
                    package="pro",
                    password="pw-3",
                )
                specs.append((spec, role))
    return specs


def test_secret_kinds_are_exactly_the_kinds_the_planner_gives_a_secret() -> None:
    # bridge.ops.retry refuses a retry of these once retention wiped the secret.
    with_secret = {
        step.kind
        for spec, role in _specs()
        for step in plan(spec, username="u1", role=role)
        if step.secret
    }
    assert with_secret == SECRET_KINDS
