"""`plan(spec)`: the ordered panel calls an order needs, bodies fixed now. Pure.

Secrets (passwords) are split from the bodies so the caller can store them encrypted
and wipe them once the step that needs them has succeeded.
"""

from typing import Any

from bridge.domain.model import (
    AccountRole,
    AccountSpec,
    Action,
    OrderSpec,
    PlannedStep,
    StepKind,
)


def plan(
    spec: OrderSpec,
    *,
    username: str | None = None,
    role: AccountRole = AccountRole.USER,
) -> tuple[PlannedStep, ...]:
    """Return the steps for `spec` in execution order (only what it asks for).

    `username` and `role` are the service's panel account, needed by every action
    but create.
    """
    if spec.action is Action.CREATE:
        return _plan_create(spec)
    username_param = {"username": _required(username)}
    match spec.action:
        case Action.SUSPEND:
            reason = spec.reason.value if spec.reason else "other"
            body = {"reason": reason}
            return (PlannedStep(StepKind.SUSPEND_USER, username_param, body),)
        case Action.UNSUSPEND:
            return (PlannedStep(StepKind.UNSUSPEND_USER, username_param),)
        case Action.TERMINATE:
            return (_terminate(spec, username_param, role),)
        case Action.CHANGE_PACKAGE:
            body = {"package": _required(spec.package)}
            return (PlannedStep(StepKind.CHANGE_PACKAGE, username_param, body),)
        case Action.CHANGE_PASSWORD:
            secret = {"password": _required(spec.password)}
            return (PlannedStep(StepKind.CHANGE_PASSWORD, username_param, {}, secret),)
    msg = f"no plan for action {spec.action}"
    raise ValueError(msg)


def _plan_create(spec: OrderSpec) -> tuple[PlannedStep, ...]:
    account = spec.account
    if account is None:
        msg = "create needs an account"
        raise ValueError(msg)
    steps = _account_steps(account)
    if spec.domain:
        steps.append(
            PlannedStep(
                StepKind.CREATE_DOMAIN,
                {},
                {"domain": spec.domain, "username": account.username},
            )
        )
        if spec.ssl:
            steps.append(
                PlannedStep(
                    StepKind.ISSUE_SSL,
                    {"domain": spec.domain},
                    {"provider": "letsencrypt", "include_www": True},
                )
            )
        steps.extend(
            PlannedStep(
                StepKind.CREATE_MAILBOX,
                {},
                {
                    "domain": spec.domain,
                    "username": box.local_part,
                    "quota_mb": box.quota_mb,
                },
                {"password": box.password},
            )
            for box in spec.mailboxes
        )
    return tuple(steps)


def _terminate(
    spec: OrderSpec, username_param: dict[str, str], role: AccountRole
) -> PlannedStep:
    if role is AccountRole.RESELLER:
        force: dict[str, Any] = {"force": spec.force}
        return PlannedStep(StepKind.DELETE_RESELLER, username_param, force)
    return PlannedStep(StepKind.DELETE_USER, username_param)


def _account_steps(account: AccountSpec) -> list[PlannedStep]:
    body = {
        "username": account.username,
        "email": account.email,
        "package": account.package,
    }
    secret = {"password": account.password}
    if account.role is AccountRole.USER:
        return [PlannedStep(StepKind.CREATE_USER, {}, body, secret)]
    steps = [PlannedStep(StepKind.CREATE_RESELLER, {}, body, secret)]
    if account.limits:
        steps.append(
            PlannedStep(
                StepKind.SET_RESELLER_LIMITS,
                {"username": account.username},
                dict(account.limits),
            )
        )
    return steps


def _required(value: str | None) -> str:
    if not value:
        msg = "missing value the plan needs"
        raise ValueError(msg)
    return value
