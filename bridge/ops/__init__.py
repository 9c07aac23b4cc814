"""Operator use cases: the failed-jobs queue, the server registry, admin tokens,
retention. Every action writes an audit entry (who, what, before, after)."""

from bridge.ops.errors import OperationRefusedError
from bridge.ops.orders import cancel_order, resolve_order
from bridge.ops.probe import probe_server
from bridge.ops.queries import (
    get_order_by_ref,
    list_orders,
    order_detail,
    order_summary,
)
from bridge.ops.retention import PurgeResult, purge_orders
from bridge.ops.retry import (
    RetryOutcome,
    needs_fresh_key,
    retry_all_failed,
    retry_order,
    retry_orders,
)
from bridge.ops.servers import (
    ServerChanges,
    add_server,
    drain_server,
    edit_server,
    list_servers,
    put_server,
    remove_server,
    server_detail,
)
from bridge.ops.timespec import parse_duration, parse_moment
from bridge.ops.tokens import issue_token, list_tokens, revoke_token

__all__ = [
    "OperationRefusedError",
    "PurgeResult",
    "RetryOutcome",
    "ServerChanges",
    "add_server",
    "cancel_order",
    "drain_server",
    "edit_server",
    "get_order_by_ref",
    "issue_token",
    "list_orders",
    "list_servers",
    "list_tokens",
    "needs_fresh_key",
    "order_detail",
    "order_summary",
    "parse_duration",
    "parse_moment",
    "probe_server",
    "purge_orders",
    "put_server",
    "remove_server",
    "resolve_order",
    "retry_all_failed",
    "retry_order",
    "retry_orders",
    "revoke_token",
    "server_detail",
]
