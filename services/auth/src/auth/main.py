"""Composition root: key ring, token issuer, password hasher, engine, the outbox relay and the
retention purge of published outbox rows around the chassis app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from auth.dependencies import admin
from auth.keyring import KeyRing
from auth.models import audit, outbox
from auth.passwords import Passwords
from auth.retention import purger
from auth.router import router
from auth.service_clients import ServiceClients
from auth.settings import AuthSettings
from auth.tokens import TokenIssuer
from chassis.app import create_app
from chassis.audit import audit_router
from chassis.db import database
from chassis.health import Check, postgres_check
from chassis.logging import get_logger
from chassis.messaging.runtime import Messaging

log = get_logger(__name__)


def token_issuer(settings: AuthSettings) -> TokenIssuer:
    """Raises NoSigningKeyError when the key directory is empty: the service must not start."""
    ring = KeyRing.load(settings.jwt_keys_dir, active_kid=settings.jwt_active_kid)
    return TokenIssuer(
        ring=ring,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
    )


def build_app(settings: AuthSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.issuer = issuer = token_issuer(settings)
        app.state.service_clients = ServiceClients.from_settings(settings)
        log.info("signing_keys_loaded", kids=issuer.ring.kids, active_kid=issuer.ring.active.kid)
        app.state.passwords = await asyncio.to_thread(
            Passwords, concurrency=settings.password_hash_concurrency
        )
        loops = app.state.loops
        async with database(app, settings) as db:
            app.state.messaging = messaging = Messaging(settings, service="auth", loops=loops)
            try:
                await messaging.connect()
                await messaging.start_relay(outbox)
                loops.add(
                    purger(db.engine, settings).loop(every_seconds=settings.retention_scan_seconds)
                )
                yield
            finally:
                await messaging.stop(settings.shutdown_grace_seconds)
                await loops.stop(settings.shutdown_grace_seconds)

    def checks(app: FastAPI) -> Sequence[Check]:
        return [postgres_check(app.state.engine), app.state.messaging.check()]

    return create_app(
        settings=settings,
        routers=[router, audit_router(audit, admin=admin)],
        checks=checks,
        lifespan=lifespan,
    )
