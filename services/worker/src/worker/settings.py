from __future__ import annotations

from chassis.settings import WithBroker, WithDatabase, WithTokenVerification


class WorkerSettings(WithDatabase, WithBroker, WithTokenVerification):
    service_name: str = "worker"
    port: int = 8004
    database_url: str = "postgresql+asyncpg://fleet_worker:fleet_worker@127.0.0.1:5432/fleet"
