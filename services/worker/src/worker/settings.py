"""Configuration of the worker, read from the environment."""

from __future__ import annotations

from pydantic import Field, field_validator

from chassis.messaging.runtime import BrokerSettings
from chassis.settings import (
    WithAudit,
    WithObjectStorage,
    WithServiceIdentity,
    WithTokenVerification,
)
from worker.mail.smtp import SmtpServer


class WorkerSettings(
    BrokerSettings, WithAudit, WithTokenVerification, WithServiceIdentity, WithObjectStorage
):
    service_name: str = "worker"
    port: int = 8004
    database_url: str = "postgresql+asyncpg://fleet_worker:fleet_worker@127.0.0.1:5432/fleet"

    # Where orders and reservations are read (`worker.sources`: the services' own ports, not the
    # gateway; their internal routes, with the worker's service token), and the bound on each
    # page read from each.
    orders_url: str = "http://127.0.0.1:8003"
    orders_timeout_seconds: float = Field(default=10.0, gt=0)
    catalog_url: str = "http://127.0.0.1:8002"
    catalog_timeout_seconds: float = Field(default=10.0, gt=0)

    # E-mail: `smtp://[user:password@]host:port` (STARTTLS when offered) or `smtps://` (TLS).
    smtp_url: str = "smtp://127.0.0.1:1025"
    smtp_from: str = "Fleet <no-reply@fleet.local>"
    smtp_timeout_seconds: float = Field(default=5.0, gt=0)
    # A mail still unsent after this many attempts is marked failed.
    email_max_attempts: int = Field(default=6, ge=1)
    email_backoff_base_seconds: float = Field(default=2.0, gt=0)
    email_backoff_cap_seconds: float = Field(default=300.0, gt=0)

    # Webhooks (Standard Webhooks signatures, retried with full-jitter exponential backoff).
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_base_seconds: float = Field(default=1.0, gt=0)
    webhook_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    # Allow subscriber URLs on private, loopback or link-local addresses (local development).
    webhooks_allow_private: bool = False
    # Deliveries in flight at once: in total, and towards one subscription (the bulkhead).
    webhook_concurrency: int = Field(default=32, ge=1)
    webhook_per_subscription_concurrency: int = Field(default=2, ge=1)
    # After a secret rotation the replaced secret goes on signing beside the new one this long
    # (unless the rotation asks for another window), so receivers can change over without a gap.
    webhook_secret_overlap_hours: float = Field(default=24.0, gt=0, le=7 * 24)

    # How often the mail sender and the webhook dispatcher look for due work when nothing woke
    # them (a consumed event wakes them at once; another replica's retries are found this way).
    worker_poll_seconds: float = Field(default=1.0, gt=0)

    # E-mails and webhook deliveries in a final state (sent, delivered, failed) are deleted this
    # many days after they were created, every `RETENTION_SCAN_SECONDS`; pending ones (waiting
    # or in flight) never are. A subscription's delivery log reaches back this far.
    delivery_retention_days: int = Field(default=30, ge=1)

    # Exports (`POST /v1/orders/exports`): one still pending this long after it was asked for
    # is failed with the reason (its command was dead-lettered or keeps failing), checked every
    # `EXPORT_DEADLINE_SCAN_SECONDS`.
    export_deadline_seconds: float = Field(default=1800.0, gt=0)
    export_deadline_scan_seconds: float = Field(default=60.0, gt=0)
    # A finished export (its row and its file) is deleted this many days after it was asked
    # for: its requester asks for a new one after that.
    export_retention_days: int = Field(default=7, ge=1)

    # Reconciliation of orders against catalog: sent every `RECONCILIATION_EVERY_SECONDS` by
    # one replica (each looks every `RECONCILIATION_CHECK_SECONDS` whether the period is due);
    # orders changed within `RECONCILIATION_SETTLE_SECONDS` of a run are still in flight and
    # left out of it.
    reconciliation_every_seconds: float = Field(default=3600.0, gt=0)
    reconciliation_check_seconds: float = Field(default=30.0, gt=0)
    reconciliation_settle_seconds: int = Field(default=60, ge=0)
    # A finished run (its row and its report) is deleted this many days after it started.
    reconciliation_retention_days: int = Field(default=90, ge=1)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_readable(cls, value: str) -> str:
        SmtpServer.from_url(value)  # refuse a malformed URL at start, not at the first mail
        return value
