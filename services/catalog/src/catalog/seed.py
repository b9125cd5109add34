"""`python -m catalog seed`: insert the sample catalog, skipping SKUs that already exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from catalog.cache import ProductCache
from catalog.repository import ProductRepository
from catalog.sample_catalog import sample_products
from catalog.settings import CatalogSettings
from chassis.db import UnitOfWork, create_engine, session_factory
from chassis.logging import get_logger
from chassis.redis import redis_client

log = get_logger(__name__)


async def seed_catalog(settings: CatalogSettings) -> int:
    """How many products were inserted (0 when the catalog is already seeded)."""
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        uow = UnitOfWork(session_factory(engine))
        async with uow:
            inserted = await uow.repository(ProductRepository).add_many_if_absent(_in_sku_order())
            await uow.commit()
    finally:
        await engine.dispose()
    if inserted:
        await _forget_cached_pages(settings)
    log.info("catalog_seeded", inserted=inserted)
    return inserted


def _in_sku_order() -> list[dict[str, Any]]:
    """One statement gives every row the same now(); distinct stamps list them by SKU."""
    start = datetime.now(UTC)
    return [
        {**row, "created_at": start + timedelta(microseconds=n)}
        for n, row in enumerate(sample_products())
    ]


async def _forget_cached_pages(settings: CatalogSettings) -> None:
    """New products change every list page; a running service must not serve the old ones."""
    client = redis_client(settings)
    try:
        cache = ProductCache(
            client,
            prefix=settings.redis_key_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            cooldown_seconds=settings.cache_cooldown_seconds,
        )
        await cache.forget_pages()
    finally:
        await client.aclose()
