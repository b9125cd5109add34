"""Composition root: wires Postgres, the broker, SMTP, the webhook client and token
verification into the chassis app.

Start: engine, broker connection, the background loops (mail sender, webhook dispatcher,
retention purge), then the consumer (the loops are ready before the first event wakes them).
Stop, in the reverse direction of the work: the consumer first (no new rows are staged), then the
loops finish the sends (and the purge batch) in hand within the grace period, then the clients
and the engine close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_app
from chassis.clients import http_client
from chassis.db import engine_for, session_factory
from chassis.health import Check, postgres_check
from chassis.messaging.runtime import Messaging
from chassis.tokens import jwks_verifier
from worker.handlers import WorkerHandlers
from worker.mail.sender import MailSender
from worker.models import inbox
from worker.retention import purger
from worker.settings import WorkerSettings
from worker.webhooks.client import webhook_client
from worker.webhooks.dispatcher import Dispatcher
from worker.webhooks.router import router as webhooks_router

SERVICE = "worker"


def build_app(settings: WorkerSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_for(settings)
        sessions = session_factory(engine)
        jwks_client = http_client(connect_timeout=1.0, read_timeout=2.0)
        delivery_client = webhook_client(settings)
        loops = app.state.loops
        messaging = Messaging(settings, service=SERVICE, loops=loops)
        sender = MailSender(sessions=sessions, settings=settings)
        dispatcher = Dispatcher(sessions=sessions, settings=settings, client=delivery_client)
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.messaging = messaging
        app.state.verifier = jwks_verifier(settings, jwks_client)
        app.state.mail_sender = sender
        app.state.dispatcher = dispatcher

        try:
            await messaging.connect()
            loops.add(sender.loop)
            loops.add(dispatcher.loop)
            loops.add(purger(engine, settings).loop(every_seconds=settings.retention_scan_seconds))
            handlers = WorkerHandlers(
                wake_mail=sender.loop.wake, wake_webhooks=dispatcher.loop.wake
            )
            await messaging.start_consumer(inbox, sessions, handlers.registry)
            yield
        finally:
            grace = settings.shutdown_grace_seconds
            await messaging.stop(grace)
            await loops.stop(grace)
            await delivery_client.aclose()
            await jwks_client.aclose()
            await engine.dispose()

    def checks(app: FastAPI) -> Sequence[Check]:
        return [postgres_check(app.state.engine), app.state.messaging.check()]

    return create_app(
        settings=settings, routers=[webhooks_router], checks=checks, lifespan=lifespan
    )
