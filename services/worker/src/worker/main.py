"""Composition root: wires the engine and broker check into the chassis app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_app
from chassis.db import create_engine
from chassis.health import Check, amqp_check, postgres_check
from worker.settings import WorkerSettings


def build_app(settings: WorkerSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        try:
            yield
        finally:
            await app.state.engine.dispose()

    def checks(app: FastAPI) -> Sequence[Check]:
        return [
            postgres_check(app.state.engine),
            amqp_check(settings.amqp_url, timeout=settings.readiness_timeout_seconds),
        ]

    return create_app(settings=settings, routers=[], checks=checks, lifespan=lifespan)
