"""Configuration of the catalog service, read from the environment."""

from __future__ import annotations

from pydantic import Field

from chassis.messaging.runtime import BrokerSettings
from chassis.settings import WithAudit, WithRedis, WithTokenVerification


class CatalogSettings(BrokerSettings, WithAudit, WithRedis, WithTokenVerification):
    service_name: str = "catalog"
    port: int = 8002
    database_url: str = "postgresql+asyncpg://fleet_catalog:fleet_catalog@127.0.0.1:5432/fleet"
    # How long a cached product or list page may be served before it is read again.
    cache_ttl_seconds: int = Field(default=60, ge=1)
    # After a Redis error the cache is skipped for this long, so a dead Redis costs one timeout
    # per cooldown instead of one per request.
    cache_cooldown_seconds: float = Field(default=5.0, ge=0)
    # Product documents kept in each process's memory in front of Redis (0: off). A write on
    # another replica reaches this one's copies only when they expire.
    cache_local_ttl_seconds: float = Field(default=1.0, ge=0)
    # `limit` above this is capped, not refused.
    products_max_page_size: int = Field(default=100, ge=1, le=1000)

    # `Cache-Control` of the public product reads (the list and each product). Browsers keep
    # them `max_age` seconds (nothing can purge a browser, so it is short); shared caches (the
    # gateway, which purges its copy when a product is written through it) `shared_max_age`;
    # either may serve a copy up to `stale_while_revalidate` seconds past that while it fetches
    # a fresh one.
    products_max_age_seconds: int = Field(default=5, ge=0)
    products_shared_max_age_seconds: int = Field(default=30, ge=0)
    products_stale_while_revalidate_seconds: int = Field(default=30, ge=0)

    @property
    def products_cache_control(self) -> str:
        return (
            f"public, max-age={self.products_max_age_seconds}, "
            f"s-maxage={self.products_shared_max_age_seconds}, "
            f"stale-while-revalidate={self.products_stale_while_revalidate_seconds}"
        )
