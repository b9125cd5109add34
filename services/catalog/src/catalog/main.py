"""Composition root: wires Postgres, the Redis cache and token verification into the chassis app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from catalog.cache import ProductCache, redis_client
from catalog.router import router
from catalog.settings import CatalogSettings
from chassis.app import create_app
from chassis.clients import http_client
from chassis.db import create_engine, session_factory
from chassis.health import Check, postgres_check, redis_check
from chassis.tokens import JwksVerifier


def build_app(settings: CatalogSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        redis = redis_client(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)
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
        app.state.verifier = JwksVerifier(
            jwks_url=settings.auth_jwks_url,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            client=jwks_client,
            cache_seconds=settings.jwks_cache_seconds,
        )
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
