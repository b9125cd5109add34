"""The worker's own metrics: e-mails and webhook deliveries by outcome, exports, reconciliations."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from chassis.metrics import initialise_labels
from worker.mail.templates import KINDS

EMAILS = Counter(
    "worker_emails_total",
    "E-mail send attempts by kind and outcome (sent, retried, failed).",
    ["kind", "outcome"],
)
initialise_labels(EMAILS, kind=KINDS, outcome=("sent", "retried", "failed"))
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retried, failed).",
    ["outcome"],
)
initialise_labels(WEBHOOK_DELIVERIES, outcome=("delivered", "retried", "failed"))
WEBHOOK_DURATION = Histogram(
    "webhook_delivery_duration_seconds",
    "Time of one webhook delivery attempt (until the answer, an error or the timeout).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EXPORTS = Counter(
    "exports_total",
    "Exports finished, by format and outcome (ready, failed).",
    ["format", "outcome"],
)
initialise_labels(EXPORTS, format=("csv", "jsonl"), outcome=("ready", "failed"))
EXPORT_READY = Histogram(
    "export_ready_seconds",
    "Time from an export's request to its file being ready (what the export SLO measures).",
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
RECONCILIATION_MISMATCHES = Gauge(
    "reconciliation_mismatches",
    "Drift the last completed reconciliation found between orders and catalog, by kind.",
    ["kind"],
)
RECONCILIATION_RUNS = Counter(
    "reconciliation_runs_total",
    "Reconciliation runs by outcome (completed, failed).",
    ["outcome"],
)
initialise_labels(RECONCILIATION_RUNS, outcome=("completed", "failed"))
RECONCILIATION_LAST_COMPLETED = Gauge(
    "reconciliation_last_completed_timestamp_seconds",
    "When the last reconciliation completed (Unix time; 0 before the first since start).",
)
