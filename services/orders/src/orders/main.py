"""Composition root: wires Postgres, the broker, catalog prices (with orders' service token),
token verification, the public routes and the worker's internal read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_app
from chassis.clients import http_client
from chassis.db import database
from chassis.health import Check, postgres_check
from chassis.messaging.runtime import Messaging
from chassis.service_tokens import ServiceAuth, service_tokens
from chassis.tokens import token_verification
from orders.admission import OrderAdmission
from orders.handlers import OrdersHandlers
from orders.models import inbox, outbox
from orders.prices import PriceList
from orders.retention import purger
from orders.router import internal_router, router
from orders.settings import OrdersSettings
from orders.timeouts import timeout_sweeper

SERVICE = "orders"


def build_app(settings: OrdersSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loops = app.state.loops
        async with (
            database(app, settings) as db,
            token_verification(app, settings),
            service_tokens(settings) as tokens,
        ):
            catalog_client = http_client(
                base_url=settings.catalog_url,
                connect_timeout=settings.catalog_timeout_seconds,
                read_timeout=settings.catalog_timeout_seconds,
                auth=ServiceAuth(tokens, "catalog"),
            )
            app.state.prices = PriceList(
                catalog_client,
                timeout=settings.catalog_timeout_seconds,
                retry_after=settings.catalog_retry_after_seconds,
            )
            app.state.admission = admission = OrderAdmission(
                target_seconds=settings.order_admission_target_seconds
            )
            app.state.messaging = messaging = Messaging(settings, service=SERVICE, loops=loops)
            try:
                await messaging.connect()
                await messaging.start_relay(outbox)
                loops.add(
                    purger(db.engine, settings).loop(every_seconds=settings.retention_scan_seconds)
                )
                await messaging.start_consumer(
                    inbox, db.sessions, OrdersHandlers(admission).registry
                )
                loops.add(
                    timeout_sweeper(
                        db.sessions,
                        timeout_seconds=settings.order_confirmation_timeout_seconds,
                        every_seconds=settings.order_timeout_scan_seconds,
                    )
                )
                yield
            finally:
                await messaging.stop(settings.shutdown_grace_seconds)
                await loops.stop(settings.shutdown_grace_seconds)
                await catalog_client.aclose()

    def checks(app: FastAPI) -> Sequence[Check]:
        return [postgres_check(app.state.engine), app.state.messaging.check()]

    return create_app(
        settings=settings, routers=[router, internal_router], checks=checks, lifespan=lifespan
    )
