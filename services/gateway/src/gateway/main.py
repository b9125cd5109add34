"""Composition root: upstream clients and circuits, token verifier, Redis with the rate limits
and the shared response cache around the chassis app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_app
from chassis.clients import http_client
from chassis.health import Check, redis_check
from chassis.redis import redis_client
from chassis.service_tokens import ServiceTokens
from chassis.tokens import jwks_verifier
from gateway.bff import HOME_PARTS
from gateway.cors import install_cors
from gateway.edge_cache import RESULTS, EdgeCache
from gateway.metrics import initialise_metrics
from gateway.public_api import PublicApi, public_api_router
from gateway.rate_limit import POLICIES, RateLimiter, RatePolicies
from gateway.response_cache import OPERATIONS, ResponseCache
from gateway.router import bff_router, mount_proxy_routes
from gateway.routes import upstream_names
from gateway.settings import GatewaySettings
from gateway.upstream_calls import OUTCOMES
from gateway.upstreams import close_upstreams, open_upstreams


def build_app(settings: GatewaySettings) -> FastAPI:
    initialise_metrics(
        upstreams=upstream_names(),
        outcomes=OUTCOMES,
        policies=POLICIES,
        bff_parts=[part.name for part in HOME_PARTS],
        cache_results=RESULTS,
        cache_operations=OPERATIONS,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jwks_client = http_client(
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.jwks_timeout_seconds,
            max_connections=10,
            max_keepalive=2,
        )
        app.state.verifier = jwks_verifier(
            settings, jwks_client, min_refresh_interval=settings.jwks_min_refresh_seconds
        )
        app.state.redis = redis_client(settings)
        app.state.rate_limiter = RateLimiter(
            app.state.redis, timeout=settings.redis_timeout_seconds
        )
        app.state.rate_policies = RatePolicies(
            default=settings.rate_limit_default,
            login=settings.rate_limit_login,
            key_prefix=settings.redis_key_prefix,
        )
        app.state.service_tokens = tokens = ServiceTokens.from_settings(settings)
        app.state.upstreams = open_upstreams(settings, tokens)
        app.state.public_api = PublicApi()
        app.state.edge_cache = cache = (
            EdgeCache(
                ResponseCache(
                    app.state.redis,
                    prefix=settings.redis_key_prefix,
                    timeout=settings.redis_timeout_seconds,
                    settle_seconds=settings.cache_purge_settle_seconds,
                )
            )
            if settings.cache_enabled
            else None
        )
        try:
            yield
        finally:
            if cache is not None:
                await cache.aclose()  # revalidations in hand, before their clients close
            await close_upstreams(app.state.upstreams)
            await tokens.aclose()
            await app.state.redis.aclose()
            await jwks_client.aclose()

    def checks(app: FastAPI) -> Sequence[Check]:
        # Upstream health is each service's own readiness, not the gateway's. Redis holds the
        # rate limits, which fail open: without it the gateway still serves.
        return [redis_check(app.state.redis, critical=False)]

    # `/openapi.json` is the public API's document, assembled from the services' (public_api).
    app = create_app(
        settings=settings,
        routers=[bff_router(), public_api_router()],
        checks=checks,
        lifespan=lifespan,
        openapi_url=None,
    )
    mount_proxy_routes(app)
    # `/v1/auth` is not `/v1/auth/...`: an unknown path is a 404 here, not a redirect to a route.
    app.router.redirect_slashes = False
    # Last, so it is the outermost middleware: preflights never reach the rest, and every answer
    # (the chassis's own 503 and 413 included) carries the CORS headers (gateway.cors).
    install_cors(
        app,
        origins=settings.cors_allowed_origins,
        allow_credentials=settings.cors_allow_credentials,
        max_age_seconds=settings.cors_max_age_seconds,
    )
    return app
