"""Messaging metrics: relay lag and backlog, consumer outcomes, dead-letter depth."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published to the broker.")
OUTBOX_LAG = Gauge(
    "outbox_lag_seconds", "Age of the oldest unpublished outbox row (0 when all are published)."
)
OUTBOX_PUBLISHED = Counter(
    "outbox_published_total", "Events published (and confirmed by the broker).", ["event_type"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Consumed messages by event type and outcome (processed, duplicate, retried, dead_lettered).",
    ["event_type", "outcome"],
)
EVENT_HANDLING = Histogram(
    "event_handling_duration_seconds",
    "Time to handle one consumed event.",
    ["event_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_IN_FLIGHT = Gauge(
    "consumer_messages_in_flight", "Deliveries being handled right now (prefetched, not yet acked)."
)
CONSUMER_PREFETCH = Gauge(
    "consumer_prefetch_limit", "Most unacknowledged deliveries the consumer accepts at once."
)
DLQ_DEPTH = Gauge("dlq_depth", "Messages waiting in this service's dead-letter queue.")
COMMAND_QUEUE_DEPTH = Gauge(
    "command_queue_depth", "Commands waiting in this service's command queue (ready, not in hand)."
)
