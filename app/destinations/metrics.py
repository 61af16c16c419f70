"""Prometheus metrics of delivery (served by GET /metrics with the others).

Counters are labelled by destination type only; the lag gauges by destination id, a random id
that names no tenant, set by the worker that holds the destination's lease.
"""

import contextlib

from prometheus_client import Counter, Gauge

DELIVERED = Counter(
    "actionlog_destination_records_delivered", "Records delivered to destinations", ["type"]
)
FAILED = Counter(
    "actionlog_destination_batches_failed", "Batches a destination did not accept", ["type"]
)
LAG_EVENTS = Gauge(
    "actionlog_destination_lag_events",
    "Stream events not yet delivered to a destination",
    ["destination"],
    multiprocess_mode="livemax",
)
LAG_SECONDS = Gauge(
    "actionlog_destination_lag_seconds",
    "Age of the oldest record not yet delivered to a destination",
    ["destination"],
    multiprocess_mode="livemax",
)


def forget(destination: str) -> None:
    """Drop a destination's gauges (its lease went elsewhere, or it was deleted)."""
    for gauge in (LAG_EVENTS, LAG_SECONDS):
        with contextlib.suppress(KeyError):
            gauge.remove(destination)
