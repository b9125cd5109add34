"""Composition root: wires Postgres, the Redis cache, token verification, the broker (outbox
relay and the order-event consumer) and the retention purge of the outbox and the inbox into the
chassis app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from catalog.cache import ProductCache
from catalog.handlers import CatalogHandlers
from catalog.models import inbox, outbox
from catalog.router import router
from catalog.settings import CatalogSettings
from chassis.app import create_app
from chassis.clients import http_client
from chassis.db import engine_for, session_factory, settle_after_commit
from chassis.health import Check, postgres_check, redis_check
from chassis.messaging.retention import service_purger
from chassis.messaging.runtime import Messaging
from chassis.redis import redis_client
from chassis.tokens import jwks_verifier

SERVICE = "catalog"


def build_app(settings: CatalogSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_for(settings)
        sessions = session_factory(engine)
        redis = redis_client(settings)
        jwks_client = http_client(connect_timeout=1.0, read_timeout=2.0)
        cache = ProductCache(
            redis,
            prefix=settings.redis_key_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            cooldown_seconds=settings.cache_cooldown_seconds,
            local_ttl_seconds=settings.cache_local_ttl_seconds,
        )
        loops = app.state.loops
        messaging = Messaging(settings, service=SERVICE, loops=loops)
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.redis = redis
        app.state.cache = cache
        app.state.verifier = jwks_verifier(settings, jwks_client)
        app.state.messaging = messaging
        retention = service_purger(engine, settings, outbox=outbox, inbox=inbox)
        try:
            await messaging.connect()
            await messaging.start_relay(outbox)
            loops.add(retention.loop(every_seconds=settings.retention_scan_seconds))
            await messaging.start_consumer(inbox, sessions, CatalogHandlers(cache).registry)
            yield
        finally:
            # The consumer first: events in hand finish while the database and Redis are open.
            await messaging.stop(settings.shutdown_grace_seconds)
            await loops.stop(settings.shutdown_grace_seconds)
            await settle_after_commit()  # cache invalidations in hand, before Redis closes
            await jwks_client.aclose()
            await redis.aclose()
            await engine.dispose()

    def checks(app: FastAPI) -> Sequence[Check]:
        # The catalog serves from Postgres when Redis is gone: a cache outage is "degraded".
        return [
            postgres_check(app.state.engine),
            redis_check(app.state.redis, critical=False),
            app.state.messaging.check(),
        ]

    return create_app(settings=settings, routers=[router], checks=checks, lifespan=lifespan)
