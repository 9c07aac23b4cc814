"""Prometheus event metrics recorded where things happen (intake, engine, callbacks,
sweeps).

Counters and histograms only, so they aggregate across Celery worker processes and
API processes (`bridge api --workers N`) in prometheus-client's multiprocess mode
(set PROMETHEUS_MULTIPROC_DIR for every process of a host; `bridge run` does, and
`bridge api --workers N` makes a private one if it is unset). Gauges that describe
state (orders by status, queue depth, dispatcher lag, bucket fill) are read from
the DB/Redis at scrape time by the API instead (bridge.api.metrics_routes).
"""

from prometheus_client import Counter, Histogram

STEP_SECONDS = Histogram(
    "bridge_step_duration_seconds",
    "Wall time of one step's panel call(s), by server and step kind.",
    ["server", "kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PANEL_RESPONSES = Counter(
    "bridge_panel_responses_total",
    "Panel answers by server and status class (2xx, 4xx, 5xx, 429, transport).",
    ["server", "status_class"],
)
PANEL_THROTTLED = Counter(
    "bridge_panel_429_total", "429 answers received from a panel.", ["server"]
)
BUDGET_WAIT_SECONDS = Counter(
    "bridge_budget_wait_seconds_total",
    "Seconds orders were told to wait because the shared bucket had no token.",
    ["server"],
)
INTAKE_ORDERS = Counter(
    "bridge_intake_orders_total",
    "Orders accepted by the intake API (new = 202, replayed = 200), by action.",
    ["action", "result"],
)
INTAKE_BATCH_SIZE = Histogram(
    "bridge_intake_batch_size",
    "Creates of new services handled per shared intake transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1000),
)
ORDERS_FINISHED = Counter(
    "bridge_orders_finished_total",
    "Orders that reached a final status, by action and status.",
    ["action", "status"],
)
CALLBACK_FAILURES = Counter(
    "bridge_callback_failures_total",
    "Callback deliveries to billing that did not get a 2xx.",
)
SWEEP_ORDERS = Counter(
    "bridge_sweep_orders_total", "Orders created by sweeps.", ["kind"]
)
SWEEP_GUARD_TRIPS = Counter(
    "bridge_sweep_guard_trips_total",
    "Sweeps the blast-radius guard refused to run.",
    ["kind"],
)


def status_class(status: int | None) -> str:
    """Bucket a panel status for the responses counter (None = no HTTP answer)."""
    if status is None:
        return "transport"
    if status == 429:  # noqa: PLR2004 - the throttling status is its own class
        return "429"
    return f"{status // 100}xx"
