"""Prometheus metrics of the service, correct with any number of workers.

With several uvicorn workers each process counts alone, so a scrape, answered by whichever
worker the connection lands on, must add every worker's counts up: that is prometheus-client's
multiprocess mode. `actionlog serve` sets `PROMETHEUS_MULTIPROC_DIR` (a fresh directory) before
the workers start; every process then keeps its values in files there, and `GET /metrics`
reads them all. A single process without that variable (tests, `make run` with one worker)
keeps them in memory.

Labels never carry a tenant id (unbounded, and not to be exposed to whoever scrapes): requests
are labelled by method, route template (`/api/v1/logs/actions/{action_id}`, never the path
itself) and status.
"""

import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "actionlog_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "actionlog_http_request_duration_seconds",
    "Time until the response started, by route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
ACTIONS_RECORDED = Counter("actionlog_actions_recorded", "Action rows written")
AUDITS_RECORDED = Counter("actionlog_audits_recorded", "Audit rows appended to a chain")
GROUP_ROWS = Histogram(
    "actionlog_group_commit_rows",
    "Rows per group commit",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
GROUP_SECONDS = Histogram(
    "actionlog_group_commit_seconds",
    "Time of one group commit (insert, rollups, commit)",
    buckets=LATENCY_BUCKETS,
)
AUDIT_GROUP_ROWS = Histogram(
    "actionlog_audit_group_commit_rows",
    "Audit rows per group commit",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
AUDIT_GROUP_SECONDS = Histogram(
    "actionlog_audit_group_commit_seconds",
    "Time of one audit group commit (chains extended, commit)",
    buckets=LATENCY_BUCKETS,
)
POOL_IN_USE = Gauge(
    "actionlog_db_pool_connections_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "actionlog_db_pool_size", "Connections the pool keeps", multiprocess_mode="livesum"
)
STREAM_QUEUED = Gauge(
    "actionlog_stream_queued_events",
    "Events waiting in a live stream's queue when the last event was offered (the deepest "
    "worker's)",
    multiprocess_mode="max",
)
STREAM_OVERFLOWS = Counter(
    "actionlog_stream_overflows",
    "Live streams disconnected because their client fell a full queue behind",
)
RETENTION_FAILURES = Counter(
    "actionlog_retention_failures",
    "Scheduled retention runs, or one tenant's prune within a run, that failed",
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)


def render(pool_status: Callable[[], tuple[int, int]] | None = None) -> tuple[bytes, str]:
    """The metrics of every worker in Prometheus text format, and its content type."""
    if pool_status is not None:
        in_use, size = pool_status()
        POOL_IN_USE.set(in_use)
        POOL_SIZE.set(size)
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
