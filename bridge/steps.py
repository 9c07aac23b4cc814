"""One panel call per step kind, reads by natural key, and safe adoption.

`execute()` runs one try of a step through the PanelClient and names what happened
as a `StepResult` (an `bridge.outcomes.Answer` plus data); it never raises a panel
error. What the engine does with the answer lives in `bridge.outcomes`.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bridge.domain.model import StepKind
from bridge.errors import RateLimitedError, RateLimiterUnavailableError
from bridge.logging import redact_value
from bridge.outcomes import Answer, answer_of
from bridge.panel import (
    PanelAlreadyExistsError,
    PanelClient,
    PanelError,
    PanelNotFoundError,
    PanelResponse,
    PanelThrottledError,
)
from bridge.panel.errors import retry_after_seconds

SSL_DONE = "active"
SSL_WAITING = frozenset({"pending", "processing"})
# A certificate in these states does not exist for reconciliation purposes.
SSL_ABSENT = frozenset({"none", "failed", "expired"})

# The panel operation each step kind sends: its route says whether the panel
# honours Idempotency-Key there (bridge.panel.routes.KEYED_FOLDERS).
STEP_OPERATIONS: dict[StepKind, str] = {
    StepKind.CREATE_USER: "create_user",
    StepKind.CREATE_DOMAIN: "create_domain",
    StepKind.ISSUE_SSL: "issue_ssl",
    StepKind.CREATE_MAILBOX: "create_mailbox",
    StepKind.SUSPEND_USER: "suspend_user",
    StepKind.UNSUSPEND_USER: "unsuspend_user",
    StepKind.DELETE_USER: "delete_user",
    StepKind.CHANGE_PACKAGE: "change_package",
    StepKind.CHANGE_PASSWORD: "change_password",
    StepKind.CREATE_RESELLER: "create_reseller",
    StepKind.SET_RESELLER_LIMITS: "set_reseller_limits",
    StepKind.DELETE_RESELLER: "delete_reseller",
}
# Kinds that create something and can therefore find it by natural key. Every
# non-keyed kind must be here: its unknown outcomes are settled by a read.
READABLE_KINDS = frozenset(
    {
        StepKind.CREATE_USER,
        StepKind.CREATE_RESELLER,
        StepKind.CREATE_DOMAIN,
        StepKind.ISSUE_SSL,
        StepKind.CREATE_MAILBOX,
    }
)
# Kinds whose re-send reaches the same state (the panel answers "already in
# state", 404 on a delete, or sets the same value again): a re-send needs no read
# first, keyed or not. Every kind is in READABLE_KINDS or here (`reads_first`).
RESEND_SAFE_KINDS = frozenset(
    {
        StepKind.SUSPEND_USER,
        StepKind.UNSUSPEND_USER,
        StepKind.DELETE_USER,
        StepKind.CHANGE_PACKAGE,
        StepKind.CHANGE_PASSWORD,
        StepKind.SET_RESELLER_LIMITS,
        StepKind.DELETE_RESELLER,
    }
)
# Kinds that send a secret billing ordered (a password): they cannot run once
# retention has wiped it. `_secret()` refuses any other kind, so a new kind that
# sends a secret cannot be left out (bridge.ops.retry asks for a new order).
SECRET_KINDS = frozenset(
    {
        StepKind.CREATE_USER,
        StepKind.CREATE_RESELLER,
        StepKind.CREATE_MAILBOX,
        StepKind.CHANGE_PASSWORD,
    }
)
# Kinds whose proof (`StepCall.proven`) can go stale: a failed order forgets it, so
# a retry of the order checks again (a reseller's users, days later perhaps).
RECHECKED_AFTER_FAILURE = frozenset({StepKind.DELETE_RESELLER})
# The panel role each account-creating kind makes: adoption accepts only that one.
_ACCOUNT_ROLES = {StepKind.CREATE_USER: "user", StepKind.CREATE_RESELLER: "reseller"}
# Namespace of the key of the password sent to an adopted user: derived from the
# step's own uuid4 key, so retries of that step replay it and no two steps share it.
_ADOPT_PASSWORD_NS = uuid.UUID("5b0a9d1e-6f43-4c7e-9a55-2f1f3f6f0a11")


def is_keyed(client: PanelClient, kind: StepKind) -> bool:
    """Whether this server's endpoint for `kind` de-duplicates by Idempotency-Key."""
    return client.routes[STEP_OPERATIONS[kind]].honours_key


class StepDefinitionError(Exception):
    """A step kind is missing from a table it must be in: a bug in the bridge.

    Its message names the kind and the table, never a secret, so the engine
    stores it on the step for ops.
    """


def reads_first(
    kind: StepKind,
    *,
    owed: bool,
    readable: frozenset[StepKind] = READABLE_KINDS,
    resend_safe: frozenset[StepKind] = RESEND_SAFE_KINDS,
) -> bool:
    """Whether this try reads the resource first, given whether a read is `owed`.

    A kind that owes a read but has none must not re-send silently: unless its
    re-send is safe by the state it asks for, that is a StepDefinitionError.
    """
    if not owed or kind in resend_safe:
        return False
    if kind in readable:
        return True
    msg = (
        f"step kind {kind.value} owes a read before re-sending but has no read by "
        "natural key: add it to READABLE_KINDS (with a read) or RESEND_SAFE_KINDS"
    )
    raise StepDefinitionError(msg)


@dataclass(frozen=True, slots=True)
class StepCall:
    """Everything needed to run one step, detached from the session."""

    kind: StepKind
    params: Mapping[str, str]
    body: Mapping[str, Any]
    secret: Mapping[str, str]
    idempotency_key: str
    read_first: bool
    polling: bool
    # Another live service of this server holds the username (create_user only).
    username_held_by: str | None = None
    # An earlier try's read proved what this step's write needs, so this try only
    # writes: the panel account is ours (the adopted user's data), or the
    # reseller has no users (delete_reseller).
    proven: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one try of a step came to."""

    answer: Answer
    response: dict[str, Any] | None = None
    retry_after: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    panel_status: int | None = None
    adopted: bool = False
    # A read found the resource absent this try (a keyed step's window restarts).
    read_absent: bool = False
    # The resource may exist but could not be read or finished: read next time.
    read_next: bool = False
    # A read proved what the write needs (the account is ours; the reseller has
    # no users) but the write did not complete: the next try only writes.
    proven: dict[str, Any] | None = None


class ConflictError(Exception):
    """The resource exists on the panel but is not provably this order's."""


class ResellerHasUsersError(Exception):
    """Terminating this reseller would delete its users; the order did not force."""


def execute(client: PanelClient, call: StepCall) -> StepResult:
    """Run one try of a step and name its answer (never raises a panel error)."""
    absent = False
    try:
        if call.polling:
            polled = client.get_ssl(call.params["domain"])
            return _ssl_state(_as_dict(polled.data), polled.headers)
        if call.kind is StepKind.DELETE_RESELLER:
            return _delete_reseller(client, call)
        if call.proven is not None:
            return _give_ordered_password(client, call, call.proven)
        if call.read_first:
            found = _read(client, call)
            if found is not None:
                return _adopt(client, call, found)
            absent = True
        try:
            result = _after_send(call, _send(client, call))
        except PanelAlreadyExistsError as exc:
            result = _reconcile_exists(client, call, exc)
    except ConflictError as exc:
        result = _failed(Answer.CONFLICT, "conflict", str(exc), 409)
    except ResellerHasUsersError as exc:
        result = _failed(Answer.REJECTED, "reseller_has_users", str(exc), 422)
    except (PanelError, RateLimitedError, RateLimiterUnavailableError) as exc:
        result = _from_error(call.kind, exc)
        if call.read_first and not absent:
            # The read itself did not complete: it is still owed.
            result = replace(result, read_next=True)
    return replace(result, read_absent=True) if absent else result


def _from_error(kind: StepKind, exc: Exception) -> StepResult:
    answer = answer_of(kind, exc)
    if isinstance(exc, RateLimitedError):
        return StepResult(answer, retry_after=exc.retry_after)
    if isinstance(exc, RateLimiterUnavailableError):
        return StepResult(answer, error_code="rate_limiter_unavailable")
    assert isinstance(exc, PanelError)  # noqa: S101 - answer_of raised otherwise
    retry_after = exc.retry_after if isinstance(exc, PanelThrottledError) else None
    code = exc.panel_code or type(exc).__name__
    if answer is Answer.KEY_MISMATCH:
        code = "idempotency_key_mismatch"
    return StepResult(
        answer,
        response={"already": exc.message} if answer is Answer.IN_STATE else None,
        retry_after=retry_after,
        error_code=code,
        error_message=str(exc),
        panel_status=exc.status,
    )


def _failed(
    answer: Answer, code: str, message: str, status: int | None = None
) -> StepResult:
    return StepResult(
        answer, error_code=code, error_message=message, panel_status=status
    )


def _send(client: PanelClient, call: StepCall) -> PanelResponse:  # noqa: PLR0911
    key = call.idempotency_key
    body, params = call.body, call.params
    match call.kind:
        case StepKind.CREATE_USER:
            return client.create_user(
                body["username"],
                body["email"],
                _secret(call, "password"),
                body["package"],
                idempotency_key=key,
            )
        case StepKind.CREATE_DOMAIN:
            return client.create_domain(
                body["domain"], body["username"], idempotency_key=key
            )
        case StepKind.ISSUE_SSL:
            return client.issue_ssl(params["domain"], idempotency_key=key)
        case StepKind.CREATE_MAILBOX:
            return client.create_mailbox(
                body["domain"],
                body["username"],
                _secret(call, "password"),
                int(body.get("quota_mb", 0)),
                idempotency_key=key,
            )
        case StepKind.SUSPEND_USER:
            return client.suspend_user(
                params["username"], body.get("reason", "other"), idempotency_key=key
            )
        case StepKind.UNSUSPEND_USER:
            return client.unsuspend_user(params["username"], idempotency_key=key)
        case StepKind.DELETE_USER:
            return client.delete_user(params["username"], idempotency_key=key)
        case StepKind.CHANGE_PACKAGE:
            return client.change_package(
                params["username"], body["package"], idempotency_key=key
            )
        case StepKind.CHANGE_PASSWORD:
            return client.change_password(
                params["username"], _secret(call, "password"), idempotency_key=key
            )
        case StepKind.CREATE_RESELLER:
            return client.create_reseller(
                body["username"],
                body["email"],
                _secret(call, "password"),
                body["package"],
                idempotency_key=key,
            )
        case StepKind.SET_RESELLER_LIMITS:
            return client.set_reseller_limits(
                params["username"], body, idempotency_key=key
            )
        case StepKind.DELETE_RESELLER:
            # Only after its users check (`_delete_reseller`, which calls this).
            return client.delete_reseller(params["username"], idempotency_key=key)
    msg = f"no executor for step kind {call.kind}"
    raise ValueError(msg)


def _secret(call: StepCall, name: str) -> str:
    """A secret the step sends; only SECRET_KINDS may send one."""
    if call.kind not in SECRET_KINDS:
        msg = f"step kind {call.kind.value} sends a secret but is not in SECRET_KINDS"
        raise StepDefinitionError(msg)
    return call.secret[name]


def _delete_reseller(client: PanelClient, call: StepCall) -> StepResult:
    """Terminate a reseller: unless the order says force, only one without users.

    The users check and the DELETE are two calls, and the shared budget never
    grants two in a row: once the check found no users, that is kept as the
    step's proof (`proven`, persisted by the engine on a wait) and the next tries
    only send the DELETE. Re-checking on every try would spend the token on the
    listing each time and never send the DELETE.

    The check is a guard against an order that forgot `force`, not a lock: a user
    the reseller creates after it, while the DELETE waits for its turn (normally
    the next budget token, about a second), is deleted with the reseller. A failed
    order forgets the proof (`RECHECKED_AFTER_FAILURE`), so an operator's retry,
    however much later, checks again.
    """
    proof = call.proven
    if proof is None and not call.body.get("force"):
        proof = _no_users_left(client, call.params["username"])
    try:
        response = _send(client, call)
    except (PanelError, RateLimitedError, RateLimiterUnavailableError) as exc:
        result = _from_error(call.kind, exc)
        return result if proof is None else replace(result, proven=dict(proof))
    return _after_send(call, response)


def _no_users_left(client: PanelClient, username: str) -> dict[str, Any]:
    """The proof that the reseller has no users (or is gone already).

    Raises ResellerHasUsersError naming them; a failed listing raises its panel
    or budget error (nothing was proved: the next try lists again).
    """
    try:
        users = client.list_reseller_users(username).items
    except PanelNotFoundError:
        # Already gone: the DELETE's 404 says "done".
        return {"reseller_users": 0, "reseller_absent": True}
    names = sorted(str(u.get("username")) for u in users)
    if names:
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")  # noqa: PLR2004
        msg = (
            f"reseller {username!r} still has {len(names)} user(s): {shown}; "
            'post the terminate with "force": true to delete them too'
        )
        raise ResellerHasUsersError(msg)
    return {"reseller_users": 0}


def _as_dict(data: Any) -> dict[str, Any]:
    if isinstance(data, dict):
        return dict(redact_value(data))
    return {"data": redact_value(data)}


def _after_send(call: StepCall, response: PanelResponse) -> StepResult:
    data = _as_dict(response.data)
    if call.kind is StepKind.ISSUE_SSL:
        return _ssl_state(data, response.headers)
    return StepResult(Answer.DONE, response=data)


def _ssl_state(
    cert: dict[str, Any], headers: Mapping[str, str] | None = None
) -> StepResult:
    """A certificate's answer; a pending one carries the panel's Retry-After."""
    status = str(cert.get("status", "")).lower()
    if status == SSL_DONE:
        return StepResult(Answer.DONE, response=cert)
    if status in SSL_WAITING:
        return StepResult(
            Answer.SSL_PENDING, response=cert, retry_after=_hinted_wait(headers)
        )
    return _failed(
        Answer.SSL_FAILED, "ssl_failed", f"certificate status {status or 'unknown'}"
    )


def _hinted_wait(headers: Mapping[str, str] | None) -> float | None:
    """The panel's Retry-After on a 2xx, if it sent one (None: it did not).

    Only that header: on a 2xx, X-RateLimit-Reset is the rate-limit window's and
    says nothing about the certificate. A value that does not parse counts as
    the helper's default; the engine never waits past BRIDGE_SSL_TIMEOUT_SECONDS.
    """
    value = (headers or {}).get("retry-after")
    if value is None:
        return None
    return retry_after_seconds({"retry-after": value}, now=None)


def _adopt(client: PanelClient, call: StepCall, found: dict[str, Any]) -> StepResult:
    """Take over a resource the read proved ours (a pending certificate is polled)."""
    if call.kind is StepKind.ISSUE_SSL:
        return replace(_ssl_state(found), adopted=True)
    if call.kind in _ACCOUNT_ROLES:
        return _give_ordered_password(client, call, found)
    return StepResult(Answer.DONE, response={"adopted": True, **found}, adopted=True)


def _give_ordered_password(
    client: PanelClient, call: StepCall, found: Mapping[str, Any]
) -> StepResult:
    """Billing ordered this password: an adopted account never keeps an old one.

    The read that proved the account ours is not repeated when this call is cut
    short (`proven`): a step needing read + write back to back would otherwise
    never find two budget tokens in a row on a busy panel.
    """
    try:
        client.change_password(
            call.body["username"],
            _secret(call, "password"),
            idempotency_key=str(uuid.uuid5(_ADOPT_PASSWORD_NS, call.idempotency_key)),
        )
    except (PanelError, RateLimitedError, RateLimiterUnavailableError) as exc:
        return replace(_from_error(call.kind, exc), proven=dict(found))
    return StepResult(Answer.DONE, response={"adopted": True, **found}, adopted=True)


def _reconcile_exists(
    client: PanelClient, call: StepCall, exc: PanelAlreadyExistsError
) -> StepResult:
    """409 "already exists": read it; adopt if it is provably ours, else conflict."""
    try:
        found = _read(client, call)
    except (PanelError, RateLimitedError, RateLimiterUnavailableError) as read_exc:
        # Re-sending the create would only repeat the 409: read next time.
        return replace(_from_error(call.kind, read_exc), read_next=True)
    if found is None:
        # Said "exists" but reads as absent (deleted meanwhile?): look again later.
        return StepResult(
            Answer.NOT_SENT,
            error_code="reconcile_absent",
            error_message=str(exc),
            read_next=True,
        )
    return _adopt(client, call, found)


def _read(client: PanelClient, call: StepCall) -> dict[str, Any] | None:
    """Read the step's resource by natural key: ours -> it, absent -> None.

    Raises ConflictError when it exists but is not provably this order's.
    """
    try:
        match call.kind:
            case StepKind.CREATE_USER | StepKind.CREATE_RESELLER:
                return _match_user(client, call)
            case StepKind.CREATE_DOMAIN:
                return _match_domain(client, call.body)
            case StepKind.ISSUE_SSL:
                cert = _as_dict(client.get_ssl(call.params["domain"]).data)
                return None if str(cert.get("status")).lower() in SSL_ABSENT else cert
            case StepKind.CREATE_MAILBOX:
                return _match_mailbox(client, call.body)
    except PanelNotFoundError:
        return None
    msg = f"step kind {call.kind} has no read by natural key"
    raise ValueError(msg)


def _match_user(client: PanelClient, call: StepCall) -> dict[str, Any]:
    """The panel user, if provably ours (design.md §2, "already exists" row)."""
    name = call.body["username"]
    if call.username_held_by is not None:
        raise ConflictError(
            f"user {name!r} belongs to service {call.username_held_by} on this server"
        )
    # Asked first: it is cached per process, so a try that the budget cuts short
    # after this call does not need it again.
    ours = client.account_name()
    return match_user(call, _as_dict(client.get_user(name).data), ours)


def match_user(call: StepCall, user: dict[str, Any], ours: str) -> dict[str, Any]:
    """`user`, as the panel reports it, if provably this create's; else ConflictError.

    `ours` is the bridge's panel account (the `creator` of what it makes).
    """
    body = call.body
    name = body["username"]
    role = user.get("role")
    if role is None:
        # No role reported is no proof of "user": it could be an admin's account.
        raise ConflictError(f"user {name!r} exists on the panel with no role reported")
    if str(role) != _ACCOUNT_ROLES[call.kind]:
        # Never an admin; a reseller only when the order asked for one.
        raise ConflictError(f"user {name!r} exists on the panel with role {role!r}")
    same_email = str(user.get("email", "")).lower() == str(body["email"]).lower()
    if not (same_email and user.get("package") == body["package"]):
        raise ConflictError(
            f"user {name!r} already exists on the panel with another email or package"
        )
    creator = user.get("creator")
    if creator is not None and creator != ours:
        raise ConflictError(
            f"user {name!r} was created by panel account {creator!r}, not the bridge's"
        )
    return user


def _match_domain(client: PanelClient, body: Mapping[str, Any]) -> dict[str, Any]:
    domain = _as_dict(client.get_domain(body["domain"]).data)
    if domain.get("owner") != body["username"]:
        msg = f"domain {body['domain']!r} already exists and belongs to another owner"
        raise ConflictError(msg)
    return domain


def _match_mailbox(
    client: PanelClient, body: Mapping[str, Any]
) -> dict[str, Any] | None:
    address = f"{body['username']}@{body['domain']}".lower()
    for account in client.list_mailboxes(body["domain"]).items:
        if str(account.get("email", "")).lower() == address:
            return _as_dict(account)
    return None
