from __future__ import annotations

from chassis.settings import WithBroker, WithDatabase, WithTokenVerification


class OrdersSettings(WithDatabase, WithBroker, WithTokenVerification):
    service_name: str = "orders"
    port: int = 8003
    database_url: str = "postgresql+asyncpg://fleet_orders:fleet_orders@127.0.0.1:5432/fleet"
