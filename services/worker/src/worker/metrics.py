"""The worker's own metrics: e-mails and webhook deliveries by outcome."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
