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
from chassis.audit import audit_router
from chassis.db import database
from chassis.health import Check, postgres_check
from chassis.messaging.runtime import Messaging
from chassis.tokens import token_verification
from worker.handlers import WorkerHandlers
from worker.mail.sender import MailSender
from worker.models import audit, inbox
from worker.retention import purger
from worker.settings import WorkerSettings
from worker.webhooks.client import webhook_client
from worker.webhooks.dispatcher import Dispatcher
from worker.webhooks.router import router as webhooks_router

SERVICE = "worker"


def build_app(settings: WorkerSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loops = app.state.loops
        async with database(app, settings) as db, token_verification(app, settings):
            delivery_client = webhook_client(settings)
            app.state.messaging = messaging = Messaging(settings, service=SERVICE, loops=loops)
            app.state.mail_sender = sender = MailSender(sessions=db.sessions, settings=settings)
            app.state.dispatcher = dispatcher = Dispatcher(
                sessions=db.sessions, settings=settings, client=delivery_client
            )
            try:
                await messaging.connect()
                loops.add(sender.loop)
                loops.add(dispatcher.loop)
                loops.add(
                    purger(db.engine, settings).loop(every_seconds=settings.retention_scan_seconds)
                )
                handlers = WorkerHandlers(
                    wake_mail=sender.loop.wake, wake_webhooks=dispatcher.loop.wake
                )
                await messaging.start_consumer(inbox, db.sessions, handlers.registry)
                yield
            finally:
                grace = settings.shutdown_grace_seconds
                await messaging.stop(grace)
                await loops.stop(grace)
                await delivery_client.aclose()

    def checks(app: FastAPI) -> Sequence[Check]:
        return [postgres_check(app.state.engine), app.state.messaging.check()]

    return create_app(
        settings=settings,
        routers=[webhooks_router, audit_router(audit)],
        checks=checks,
        lifespan=lifespan,
    )
