"""Composition root: wires Postgres, the broker, SMTP, the webhook client, object storage, the
orders and catalog readers and token verification into the chassis app.

Start: engine, bucket, broker connection, the relay of the commands the worker sends itself, the
background loops (mail sender, webhook dispatcher, retention purge, export deadline,
reconciliation schedule), then the event and command consumers (the loops are ready before the
first message wakes them). Stop, in the reverse direction of the work: the consumers first (no
new rows are staged), then the loops finish the sends (and the batch) in hand within the grace
period, then the clients and the engine close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chassis.app import create_app
from chassis.audit import audit_router
from chassis.db import database
from chassis.health import Check, postgres_check
from chassis.messaging.handlers import Handlers
from chassis.messaging.runtime import Messaging
from chassis.storage import object_store
from chassis.tokens import token_verification
from contracts.commands import GenerateExportV1, RunReconciliationV1
from worker.exports.generator import ExportDeadline, ExportGenerator
from worker.exports.router import router as exports_router
from worker.handlers import WorkerHandlers
from worker.mail.sender import MailSender
from worker.models import audit, inbox, outbox
from worker.reconciliation.router import router as reconciliations_router
from worker.reconciliation.service import Reconciler, ReconciliationSchedule, show_last_run
from worker.retention import purger
from worker.settings import WorkerSettings
from worker.sources import sources
from worker.webhooks.client import webhook_client
from worker.webhooks.dispatcher import Dispatcher
from worker.webhooks.router import router as webhooks_router

SERVICE = "worker"
# The commands the worker sends (to itself: its command queue).
SENDS = (GenerateExportV1, RunReconciliationV1)


def build_app(settings: WorkerSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loops = app.state.loops
        async with (
            database(app, settings) as db,
            token_verification(app, settings),
            object_store(settings) as store,
            sources(settings) as (orders, reservations),
        ):
            app.state.object_store = store
            delivery_client = webhook_client(settings)
            app.state.messaging = messaging = Messaging(settings, service=SERVICE, loops=loops)
            app.state.mail_sender = sender = MailSender(sessions=db.sessions, settings=settings)
            app.state.dispatcher = dispatcher = Dispatcher(
                sessions=db.sessions, settings=settings, client=delivery_client
            )
            try:
                if settings.s3_create_bucket:
                    await store.ensure_bucket()
                await show_last_run(db.sessions)
                await messaging.connect()
                await messaging.start_relay(outbox, sends=SENDS)
                loops.add(sender.loop)
                loops.add(dispatcher.loop)
                loops.add(
                    purger(db.engine, settings, store).loop(
                        every_seconds=settings.retention_scan_seconds
                    )
                )
                loops.add(
                    ExportDeadline(
                        db.sessions,
                        deadline_seconds=settings.export_deadline_seconds,
                        every_seconds=settings.export_deadline_scan_seconds,
                    ).loop
                )
                loops.add(
                    ReconciliationSchedule(
                        db.sessions,
                        every_seconds=settings.reconciliation_every_seconds,
                        check_seconds=settings.reconciliation_check_seconds,
                        settle_seconds=settings.reconciliation_settle_seconds,
                    ).loop
                )
                handlers = WorkerHandlers(
                    wake_mail=sender.loop.wake, wake_webhooks=dispatcher.loop.wake
                )
                await messaging.start_consumer(inbox, db.sessions, handlers.registry)
                exports = ExportGenerator(
                    orders=orders,
                    store=store,
                    wake_mail=sender.loop.wake,
                    link_ttl_seconds=settings.s3_presign_ttl_seconds,
                )
                reconciler = Reconciler(orders=orders, reservations=reservations, store=store)
                commands = (
                    Handlers.for_commands()
                    .add(GenerateExportV1, exports.generate)
                    .add(RunReconciliationV1, reconciler.run)
                )
                await messaging.start_command_consumer(inbox, db.sessions, commands)
                yield
            finally:
                grace = settings.shutdown_grace_seconds
                await messaging.stop(grace)
                await loops.stop(grace)
                await delivery_client.aclose()

    def checks(app: FastAPI) -> Sequence[Check]:
        return [
            postgres_check(app.state.engine),
            app.state.messaging.check(),
            # Exports and reports need the bucket; e-mails and webhooks do not: without it the
            # worker is degraded, not unready.
            app.state.object_store.check(critical=False),
        ]

    return create_app(
        settings=settings,
        routers=[webhooks_router, exports_router, reconciliations_router, audit_router(audit)],
        checks=checks,
        lifespan=lifespan,
    )
