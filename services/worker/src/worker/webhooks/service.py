"""Use cases of the webhook API: subscribe; list, read, pause, resume, rotate the secret of and
delete one's subscriptions; read a subscription's deliveries and send one again.

Every use case names the caller as the owner: another user's subscription (or a delivery of it)
is not found, never forbidden, so its existence is not revealed. Every change is audited
(`worker.models.audit`) in its own transaction, never with a secret or the URL's path.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.pagination import cursor_key, keyset_page
from chassis.security import ADMIN_ROLE
from chassis.tokens import Principal
from contracts.webhooks import SECRET_PREFIX
from worker.models import audit
from worker.settings import WorkerSettings
from worker.webhooks import destinations
from worker.webhooks.exceptions import (
    DeliveryNotFoundError,
    DeliveryPendingError,
    InvalidWebhookUrlError,
    SubscriptionNotFoundError,
)
from worker.webhooks.repository import WebhookRepository
from worker.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    RotateSecretIn,
    SecretRotated,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
)

SECRET_BYTES = 24

log = get_logger(__name__)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _not_found(subscription_id: uuid.UUID) -> SubscriptionNotFoundError:
    return SubscriptionNotFoundError(f"You have no webhook subscription {subscription_id}.")


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
        await audit.record(
            uow,
            action="worker.webhook_subscription.create",
            target=subscription.id,
            # The host only: a webhook URL's path or query may carry the receiver's own secret.
            details={"host": urlsplit(subscription.url).hostname, "events": subscription.events},
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
            raise _not_found(subscription_id)
        deliveries = await uow.repository(WebhookRepository).recent_deliveries(
            subscription_id, limit=limit
        )
        return DeliveryList(items=[DeliveryOut.model_validate(d) for d in deliveries])


async def list_subscriptions(
    *, uow: UnitOfWork, owner_id: str, limit: int, cursor: str | None
) -> SubscriptionPage:
    """One page of the caller's subscriptions, newest first; `limit` must already be capped."""
    after = cursor_key(cursor)
    async with uow:
        repository = uow.repository(WebhookRepository)
        page = await keyset_page(
            lambda n: repository.subscriptions_of(owner_id, after=after, limit=n), limit=limit
        )
        items = [SubscriptionOut.model_validate(row) for row in page.rows]
        return SubscriptionPage(items=items, next_cursor=page.next_cursor)


async def get_subscription(
    *, uow: UnitOfWork, owner_id: str, subscription_id: uuid.UUID
) -> SubscriptionOut:
    async with uow:
        subscription = await uow.repository(WebhookRepository).subscription_of(
            subscription_id, owner_id
        )
        if subscription is None:
            raise _not_found(subscription_id)
        return SubscriptionOut.model_validate(subscription)


async def delete_subscription(
    *, uow: UnitOfWork, owner_id: str, subscription_id: uuid.UUID
) -> None:
    """Delete it and its delivery log; attempts already in flight finish, none follow."""
    async with uow:
        if not await uow.repository(WebhookRepository).delete_subscription(
            subscription_id, owner_id
        ):
            raise _not_found(subscription_id)
        await audit.record(uow, action="worker.webhook_subscription.delete", target=subscription_id)
        await uow.commit()
    log.info("webhook_subscription_deleted", subscription_id=str(subscription_id))


async def pause_subscription(
    *, uow: UnitOfWork, owner_id: str, subscription_id: uuid.UUID
) -> SubscriptionOut:
    """Hold its deliveries: events go on being recorded as pending deliveries, none is sent
    (beyond attempts already in flight) until it is resumed. Pausing again changes nothing."""
    async with uow:
        subscription = await uow.repository(WebhookRepository).pause(subscription_id, owner_id)
        if subscription is None:
            raise _not_found(subscription_id)
        paused = SubscriptionOut.model_validate(subscription)
        await audit.record(uow, action="worker.webhook_subscription.pause", target=subscription_id)
        await uow.commit()
    log.info("webhook_subscription_paused", subscription_id=str(subscription_id))
    return paused


async def resume_subscription(
    *,
    uow: UnitOfWork,
    owner_id: str,
    subscription_id: uuid.UUID,
    wake_dispatcher: Callable[[], None],
) -> SubscriptionOut:
    """Send what was held while paused, oldest first, and what comes next."""
    async with uow:
        subscription = await uow.repository(WebhookRepository).resume(subscription_id, owner_id)
        if subscription is None:
            raise _not_found(subscription_id)
        resumed = SubscriptionOut.model_validate(subscription)
        uow.after_commit(wake_dispatcher)
        await audit.record(uow, action="worker.webhook_subscription.resume", target=subscription_id)
        await uow.commit()
    log.info("webhook_subscription_resumed", subscription_id=str(subscription_id))
    return resumed


async def rotate_secret(
    *,
    uow: UnitOfWork,
    settings: WorkerSettings,
    owner_id: str,
    subscription_id: uuid.UUID,
    rotation: RotateSecretIn,
) -> SecretRotated:
    """A new signing secret, shown in this answer only; the replaced one goes on signing beside
    it for the overlap window, so the receiver can change over without refusing a delivery."""
    overlap = rotation.overlap_seconds
    if overlap is None:
        overlap_seconds = settings.webhook_secret_overlap_hours * 3600
    else:
        overlap_seconds = float(overlap)
    secret = new_secret()
    async with uow:
        subscription = await uow.repository(WebhookRepository).rotate_secret(
            subscription_id, owner_id, secret=secret, overlap_seconds=overlap_seconds
        )
        if subscription is None:
            raise _not_found(subscription_id)
        expires_at = subscription.previous_secret_expires_at
        await audit.record(
            uow,
            action="worker.webhook_subscription.rotate_secret",
            target=subscription_id,
            details={"overlap_seconds": overlap_seconds},
        )
        await uow.commit()
    log.info(
        "webhook_secret_rotated",
        subscription_id=str(subscription_id),
        overlap_seconds=overlap_seconds,
    )
    return SecretRotated(id=subscription_id, secret=secret, previous_secret_expires_at=expires_at)


async def get_delivery(
    *, uow: UnitOfWork, owner_id: str, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryOut:
    async with uow:
        repository = uow.repository(WebhookRepository)
        if await repository.subscription_of(subscription_id, owner_id) is None:
            raise _not_found(subscription_id)
        delivery = await repository.delivery_of(subscription_id, delivery_id)
        if delivery is None:
            raise DeliveryNotFoundError(f"The subscription has no delivery {delivery_id}.")
        return DeliveryOut.model_validate(delivery)


async def redeliver(
    *,
    uow: UnitOfWork,
    owner_id: str,
    subscription_id: uuid.UUID,
    delivery_id: uuid.UUID,
    wake_dispatcher: Callable[[], None],
) -> DeliveryOut:
    """Send a delivered or failed delivery again: a new series of attempts (the full budget) of
    the same body with the same `webhook-id`, signed with the secrets current when each attempt
    is made. A pending one is refused: its series is still running. A paused subscription's
    redelivery waits for the resume."""
    async with uow:
        repository = uow.repository(WebhookRepository)
        if await repository.subscription_of(subscription_id, owner_id) is None:
            raise _not_found(subscription_id)
        delivery = await repository.redeliver(subscription_id, delivery_id)
        if delivery is None:
            if await repository.delivery_of(subscription_id, delivery_id) is None:
                raise DeliveryNotFoundError(f"The subscription has no delivery {delivery_id}.")
            msg = f"The delivery {delivery_id} is still being attempted; it cannot be restarted."
            raise DeliveryPendingError(msg)
        again = DeliveryOut.model_validate(delivery)
        uow.after_commit(wake_dispatcher)
        await audit.record(
            uow,
            action="worker.webhook_subscription.redeliver",
            target=subscription_id,
            details={"delivery_id": str(delivery_id)},
        )
        await uow.commit()
    log.info(
        "webhook_redelivery_requested",
        subscription_id=str(subscription_id),
        delivery_id=str(delivery_id),
        event_id=str(again.event_id),
    )
    return again
