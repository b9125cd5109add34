"""Configuration of the orders service, read from the environment."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from chassis.messaging.runtime import BrokerSettings
from chassis.settings import WithServiceIdentity, WithTokenVerification


class OrdersSettings(BrokerSettings, WithTokenVerification, WithServiceIdentity):
    service_name: str = "orders"
    port: int = 8003
    database_url: str = "postgresql+asyncpg://fleet_orders:fleet_orders@127.0.0.1:5432/fleet"
    # Where prices are read when an order is placed (the catalog's own port, not the gateway;
    # its internal route, with orders' service token).
    catalog_url: str = "http://127.0.0.1:8002"
    # Bound on the whole price lookup of one order (all items, fetched concurrently).
    catalog_timeout_seconds: float = Field(default=2.0, gt=0)
    # The answer a client gets while catalog is unreachable: 503 with this `Retry-After`.
    catalog_retry_after_seconds: int = Field(default=2, ge=1)
    # A pending order without an answer from catalog this long after placing is rejected.
    order_confirmation_timeout_seconds: float = Field(default=30.0, gt=0)
    # Admission control: while recent orders take longer than this from placed to decided, a
    # shrinking share of new orders is refused (503 + Retry-After); 0 admits every order.
    order_admission_target_seconds: float = Field(default=0.1, ge=0)
    # How often the sweeper looks for pending orders past their confirmation timeout.
    order_timeout_scan_seconds: float = Field(default=5.0, gt=0)
    # `limit` above this is capped, not refused.
    orders_max_page_size: int = Field(default=100, ge=1, le=1000)
    # How long an Idempotency-Key is remembered. Within it, a retry with the same key gets the
    # first response back; after it, the same key is a new request (a new order), as with
    # Stripe's 24 hours. Expired keys are purged every `RETENTION_SCAN_SECONDS`.
    idempotency_key_ttl_hours: int = Field(default=24, ge=1)

    @property
    def idempotency_key_ttl(self) -> timedelta:
        return timedelta(hours=self.idempotency_key_ttl_hours)
