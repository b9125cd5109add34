"""Composition root: wires Postgres, the Redis cache, token verification, the broker (outbox
relay and the order-event consumer) and the retention purge of the outbox and the inbox into the
chassis app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from catalog.cache import ProductCache
from catalog.handlers import CatalogHandlers
from catalog.models import audit, inbox, outbox
from catalog.retention import purger
from catalog.router import internal_router, reservations_router, router
from catalog.settings import CatalogSettings
from chassis.app import create_app
from chassis.audit import audit_router
from chassis.db import database, settle_after_commit
from chassis.health import Check, postgres_check, redis_check
from chassis.messaging.runtime import Messaging
from chassis.redis import redis_client
from chassis.tokens import token_verification

SERVICE = "catalog"


def build_app(settings: CatalogSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loops = app.state.loops
        async with database(app, settings) as db, token_verification(app, settings):
            app.state.redis = redis = redis_client(settings)
            app.state.cache = cache = ProductCache(
                redis,
                prefix=settings.redis_key_prefix,
                ttl_seconds=settings.cache_ttl_seconds,
                cooldown_seconds=settings.cache_cooldown_seconds,
                local_ttl_seconds=settings.cache_local_ttl_seconds,
            )
            app.state.messaging = messaging = Messaging(settings, service=SERVICE, loops=loops)
            try:
                await messaging.connect()
                await messaging.start_relay(outbox)
                loops.add(
                    purger(db.engine, settings).loop(every_seconds=settings.retention_scan_seconds)
                )
                await messaging.start_consumer(inbox, db.sessions, CatalogHandlers(cache).registry)
                yield
            finally:
                # The consumer first: events in hand finish while the database and Redis are open.
                await messaging.stop(settings.shutdown_grace_seconds)
                await loops.stop(settings.shutdown_grace_seconds)
                await settle_after_commit()  # cache invalidations in hand, before Redis closes
                await redis.aclose()

    def checks(app: FastAPI) -> Sequence[Check]:
        # The catalog serves from Postgres when Redis is gone: a cache outage is "degraded".
        return [
            postgres_check(app.state.engine),
            redis_check(app.state.redis, critical=False),
            app.state.messaging.check(),
        ]

    return create_app(
        settings=settings,
        routers=[router, internal_router, reservations_router, audit_router(audit)],
        checks=checks,
        lifespan=lifespan,
    )
