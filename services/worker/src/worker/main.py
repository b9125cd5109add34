"""Composition root: wires the engine and broker check into the chassis app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_app
from chassis.db import engine_for
from chassis.health import Check, amqp_check, postgres_check
from worker.settings import WorkerSettings


def build_app(settings: WorkerSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine_for(settings)
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
