"""Use cases of the webhook API: subscribe, and read a subscription's recent deliveries."""

from __future__ import annotations

import base64
import secrets
import uuid

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.security import ADMIN_ROLE
from chassis.tokens import Principal
from contracts.webhooks import SECRET_PREFIX
from worker.settings import WorkerSettings
from worker.webhooks import destinations
from worker.webhooks.exceptions import InvalidWebhookUrlError, SubscriptionNotFoundError
from worker.webhooks.repository import WebhookRepository
from worker.webhooks.schemas import DeliveryList, DeliveryOut, SubscriptionCreated, SubscriptionIn

SECRET_BYTES = 24

log = get_logger(__name__)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


async def create_subscription(
    *,
    uow: UnitOfWork,
    settings: WorkerSettings,
    principal: Principal,
    subscription_in: SubscriptionIn,
) -> SubscriptionCreated:
    """Subscribe the caller to events about themselves (an admin: about every user)."""
    try:
        await destinations.check(
            subscription_in.url,
            allow_private=settings.webhooks_allow_private,
            timeout=settings.webhook_timeout_seconds,
        )
    except destinations.DestinationRefusedError as exc:
        raise InvalidWebhookUrlError(str(exc)) from None
    secret = new_secret()
    async with uow:
        subscription = await uow.repository(WebhookRepository).add_subscription(
            owner_id=principal.subject,
            all_users=principal.has_role(ADMIN_ROLE),
            url=subscription_in.url,
            events=subscription_in.events,
            secret=secret,
        )
        await uow.commit()
    log.info(
        "webhook_subscribed",
        subscription_id=str(subscription.id),
        events=subscription.events,
        all_users=subscription.all_users,
    )
    return SubscriptionCreated(
        id=subscription.id, url=subscription.url, events=subscription.events, secret=secret
    )


async def list_deliveries(
    *, uow: UnitOfWork, owner_id: str, subscription_id: uuid.UUID, limit: int
) -> DeliveryList:
    """The subscription's most recent deliveries, newest first."""
    async with uow:
        subscription = await uow.repository(WebhookRepository).subscription_of(
            subscription_id, owner_id
        )
        if subscription is None:
            raise SubscriptionNotFoundError(f"You have no webhook subscription {subscription_id}.")
        deliveries = await uow.repository(WebhookRepository).recent_deliveries(
            subscription_id, limit=limit
        )
        return DeliveryList(items=[DeliveryOut.model_validate(d) for d in deliveries])
