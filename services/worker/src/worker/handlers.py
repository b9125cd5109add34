"""Handlers of the events the worker consumes: the e-mails and webhook deliveries they owe.

Each runs in the consumer's transaction, after the event id was recorded in the inbox: the
notification row (one per event, `event_id` unique) and one delivery row per interested
subscription commit together with it, so a redelivered event owes nothing new. Sending happens
later, in the mail sender and the webhook dispatcher, which the commit wakes up.

Order events carry only the user id; the address comes from the worker's own read model, fed by
`user.registered`. An order event for a user not known yet raises :class:`UnknownUserError`, which
the consumer retries (the registration may still be on its way) and dead-letters after its
budget (`python -m worker dlq replay` once the cause is fixed).

A compensation `order.cancelled` (`reason_code` "compensation": orders giving back stock that
arrived for an order already rejected or cancelled) is not mailed: the customer already got the
rejection or cancellation mail of that order. It is still delivered to webhook subscribers, like
every event of a subscribed type: its reason code tells them what it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.messaging.handlers import Handlers
from contracts.events import (
    CloudEvent,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderRejectedV1,
    UserRegisteredV1,
)
from worker.mail import templates
from worker.mail.repository import MailRepository
from worker.mail.templates import Mail
from worker.users import UserRepository
from worker.webhooks.repository import WebhookRepository

log = get_logger(__name__)


class WorkerHandlers:
    """The handlers, bound to the loops that send what they staged (woken once committed)."""

    def __init__(self, *, wake_mail: Callable[[], None], wake_webhooks: Callable[[], None]) -> None:
        self._wake_mail = wake_mail
        self._wake_webhooks = wake_webhooks

    @property
    def registry(self) -> Handlers:
        return (
            Handlers()
            .add(UserRegisteredV1, self.on_user_registered)
            .add(OrderConfirmedV1, self.on_order_confirmed)
            .add(OrderRejectedV1, self.on_order_rejected)
            .add(OrderCancelledV1, self.on_order_cancelled)
        )

    async def on_user_registered(
        self, uow: UnitOfWork, event: CloudEvent, payload: UserRegisteredV1
    ) -> None:
        await uow.repository(UserRepository).remember(user_id=payload.user_id, email=payload.email)
        await self._owe(uow, event, payload.user_id, templates.welcome(payload.email))

    async def on_order_confirmed(
        self, uow: UnitOfWork, event: CloudEvent, payload: OrderConfirmedV1
    ) -> None:
        await self._owe(uow, event, payload.user_id, templates.order_confirmed(payload))

    async def on_order_rejected(
        self, uow: UnitOfWork, event: CloudEvent, payload: OrderRejectedV1
    ) -> None:
        await self._owe(uow, event, payload.user_id, templates.order_rejected(payload))

    async def on_order_cancelled(
        self, uow: UnitOfWork, event: CloudEvent, payload: OrderCancelledV1
    ) -> None:
        if templates.is_compensation(payload):
            log.info("compensation_not_mailed", order_id=str(payload.order_id))
            await self._owe(uow, event, payload.user_id, None)
            return
        await self._owe(uow, event, payload.user_id, templates.order_cancelled(payload))

    async def _owe(
        self, uow: UnitOfWork, event: CloudEvent, user_id: uuid.UUID, message: Mail | None
    ) -> None:
        """Stage the event's e-mail (if any) to the user and its webhook deliveries."""
        if message is not None:
            recipient = await uow.repository(UserRepository).email_of(user_id)
            await uow.repository(MailRepository).stage(
                event_id=event.id, recipient=recipient, mail=message
            )
            uow.after_commit(self._wake_mail)
        deliveries = await uow.repository(WebhookRepository).fan_out(event, user_id=str(user_id))
        if deliveries:
            uow.after_commit(self._wake_webhooks)
        log.info(
            "event_side_effects_staged",
            event_type=event.type,
            email=message.kind if message else None,
            webhooks=deliveries,
        )
