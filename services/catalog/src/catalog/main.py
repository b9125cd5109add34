"""Composition root: wires Postgres, the Redis cache and token verification into the chassis app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from catalog.cache import ProductCache
from catalog.router import router
from catalog.settings import CatalogSettings
from chassis.app import create_app
from chassis.clients import http_client
from chassis.db import engine_for, session_factory
from chassis.health import Check, postgres_check, redis_check
from chassis.redis import redis_client
from chassis.tokens import jwks_verifier


def build_app(settings: CatalogSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_for(settings)
        redis = redis_client(settings)
        jwks_client = http_client(connect_timeout=1.0, read_timeout=2.0)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.redis = redis
        app.state.cache = ProductCache(
            redis,
            prefix=settings.redis_key_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            cooldown_seconds=settings.cache_cooldown_seconds,
        )
        app.state.verifier = jwks_verifier(settings, jwks_client)
        try:
            yield
        finally:
            await jwks_client.aclose()
            await redis.aclose()
            await engine.dispose()

    def checks(app: FastAPI) -> Sequence[Check]:
        # The catalog serves from Postgres when Redis is gone: a cache outage is "degraded".
        return [postgres_check(app.state.engine), redis_check(app.state.redis, critical=False)]

    return create_app(settings=settings, routers=[router], checks=checks, lifespan=lifespan)
