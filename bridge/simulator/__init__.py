"""WisPanel simulator: a stand-in panel over real HTTP, with fault injection.

Implements the shared WisPanel API contract (``wispanel-api.md``): every ASSUMED
behaviour as proposed there, each documented variant selectable. Only the CLI and tests
import this package; it imports nothing else from ``bridge``.

Start it in-process (``SimulatorServer(cfg, panels=N)`` as a context manager) or
in the foreground (``serve(cfg, panels, host, port)``). The root panel lives at
``/``; panel ``pK`` lives under ``/p/pK`` (API ``/p/pK/api/v1/...``, control API
``/p/pK/_sim/...``). Panels share nothing: config, credentials (named panels get
their own generated key and password), clock, state, limits, faults, logs.

Control API (per panel, no auth; bad input -> ``400 {"error": "..."}``):

``POST /_sim/faults``  JSON, omitted fields unchanged; answers the full fault set:
    ``error_rate``  0-1: a mutating API call answers 500 INTERNAL_ERROR, not applied
    ``drop_after_apply_rate``  0-1: applied (and its idempotent response stored), then
        the connection is closed without a status line
    ``stall_after_apply_rate``  0-1: applied and stored, answered ``stall_seconds`` late
    ``stall_seconds``  seconds of a stall (default 10)
    ``latency_ms``  delay before every API handler runs; a mutating call with an
        Idempotency-Key is "in progress" (409 to a twin) during it
    ``storm_seconds``  every API request answers 429 RATE_LIMITED until the panel clock
        has moved that far (so advancing the clock ends a storm)
    ``ssl_failure_rate``  0-1: an SSL issue/renew ends ``failed`` instead of ``active``
``GET /_sim/faults``; ``POST /_sim/faults/clear`` (also clears fail-next and storms).
``POST /_sim/fail-next {"count": 1, "status": 500}``  the next ``count`` API requests
    (any method, before auth) answer ``status`` in the panel's envelope, not applied.
``POST /_sim/revoke {"username"?}``  bump the token version (``tv``) of every user (or
    one): their JWTs answer 401 "Token revoked". Answers ``{"token_versions": {...}}``.
``POST /_sim/clock {"advance_seconds": N}``, ``GET /_sim/clock``  ->
    ``{"now", "now_unix", "offset_seconds"}``. Drives rate windows, JWT exp/iat, the
    idempotency window, SSL delay, API key expiry and storms.
``POST /_sim/config {...}``, ``GET /_sim/config``  any ``SimulatorConfig`` field except
    ``state_file``: ``limit``, ``window`` fixed|sliding, ``token_lifetime_s``,
    ``ssl_delay_s``, ``envelope`` flat|nested|lean, ``validation_status`` 400|422,
    ``key_mismatch_status`` 409|422, ``empty_accounts`` null|[] (or "null"/"[]"),
    ``retry_after`` bool|"on"|"off", ``ssl_retry_after`` (off by default; on: a
    pending certificate's answers carry Retry-After, the seconds until it is ready),
    ``ip_binding``, ``single_session``,
    ``login_limit_per_min``, ``license_max_users``, ``license_max_domains``,
    ``idempotency_window_s``, ``trust_forwarded_for`` (client IP from X-Forwarded-For,
    for IP-binding tests), ``tz_offset_minutes``, ``seed``, and the admin's
    ``api_key``/``username``/``password``/``totp_secret``/``email``.
``POST /_sim/reset``  back to the startup config, seeded state, calm faults, real clock,
    empty logs and ledger, new JWT secret (old tokens: 401 "Invalid token"); a
    ``state_file`` is overwritten with the fresh state.
``GET /_sim/state``  users, packages, api_keys (no secrets), domains, certificates,
    mailboxes, sessions, idempotency key count.
``GET /_sim/requests``  list of ``{"method", "path" (from /api/v1, query excluded),
    "idempotency_key", "status", "at" (RFC 3339 UTC, panel clock), "replayed",
    "fault" (null|"storm"|"fail_next"|"error"|"drop"|"stall")}``.
``GET /_sim/ledger``  ``{"user": {...}, "domain": {...}, "certificate": {...},
    "mailbox": {...}}``: creations per natural key (username, domain, domain, address);
    renew is not a creation, every issue is.
``POST /_sim/usage {"username", "disk_used_mb", "bandwidth_used_mb"}``  set the usage
    figures the usage endpoints report for one account (unset accounts read 0).
``GET /_sim/credentials``  the panel's admin credentials; ``GET /_sim/panels`` lists
    every panel of the process.
``GET /_sim/webhooks``  ``{"webhooks": [... secrets included], "deliveries": [{"id",
    "webhook_id", "event", "url", "attempts": [{"status", "error"}], "state"
    (pending|delivered|failed)}]}``; a delivery is logged when its event happens.
``POST /_sim/webhooks/emit {"event", "data"?, "subject"?}``  fire any event (e.g. one
    the catalogue lacks) to matching subscriptions; answers ``{"deliveries": n}``.

Webhooks (``/api/v1/webhooks``, §8): lean envelope, API keys need scope ``all``,
non-admins see their own. Events: ``user.created``/``suspended``/``unsuspended``/
``deleted``/``package_changed`` (only on a real change) and ``ssl.issued``. SSL is
judged lazily, so an issue/renew made while an ``ssl.issued`` subscription exists
starts a watcher that checks every ``webhook_ssl_tick_s`` (real seconds, so clock
jumps count) and announces the certificate once active. Delivery runs in the
background: attempt 1 at once, then after each of ``webhook_retry_delays_s``
("1,5"), each with ``webhook_timeout_s`` (10); a non-2xx (3xx included) fails.

Other choices: ``GET /openapi.yaml`` (no auth) describes the API routes; packages
``default`` (unlimited), ``basic`` (1 domain, 5 mailboxes) and ``pro`` are seeded;
an email account's ``id`` is its full address; SSO links are served at
``GET /sso/consume/<nonce>`` (302 once, then 410; 404 unknown); idempotency records,
rate windows and faults are not persisted to ``state_file``.
"""

from bridge.simulator.config import SimulatorConfig
from bridge.simulator.server import PanelCredentials, SimulatorServer, describe, serve

__all__ = [
    "PanelCredentials",
    "SimulatorConfig",
    "SimulatorServer",
    "describe",
    "serve",
]
