"""HTTP routes of `/v1/webhooks`: parse, authenticate, call a use case, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status
from fastapi.responses import JSONResponse

from chassis.pagination import capped_limit
from chassis.security import CurrentPrincipal
from worker.dependencies import SettingsDep, UnitOfWorkDep, WakeDispatcherDep
from worker.webhooks import service
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

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# FastAPI's operation ids of what reads a created subscription (its links). Only its delivery
# log: each further link widens the public API fuzzer's stateful walk through the gateway, whose
# bounded budget must still reach the order chain.
_LINKED = {
    "ListDeliveries": (
        "list_deliveries_v1_webhooks_subscriptions__subscription_id__deliveries_get"
    ),
}


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionCreated,
    responses={
        201: {
            "description": "The subscription, with its signing secret (shown only here).",
            "links": {
                name: {
                    "operationId": operation_id,
                    "parameters": {"subscription_id": "$response.body#/id"},
                }
                for name, operation_id in _LINKED.items()
            },
        }
    },
)
async def create_subscription(
    subscription_in: SubscriptionIn,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
) -> JSONResponse:
    """The secret is in this response only: deliveries are signed with it."""
    created = await service.create_subscription(
        uow=uow, settings=settings, principal=principal, subscription_in=subscription_in
    )
    return JSONResponse(
        created.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"{router.prefix}/subscriptions/{created.id}"},
    )


@router.get("/subscriptions/{subscription_id}/deliveries")
async def list_deliveries(
    subscription_id: uuid.UUID,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE_SIZE,
) -> DeliveryList:
    """The most recent deliveries, newest first; a `limit` above the maximum is capped."""
    return await service.list_deliveries(
        uow=uow,
        owner_id=principal.subject,
        subscription_id=subscription_id,
        limit=capped_limit(limit, MAX_PAGE_SIZE),
    )


@router.get("/subscriptions")
async def list_subscriptions(
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> SubscriptionPage:
    """The caller's subscriptions, newest first, in cursor pages (pass `next_cursor` back as
    `cursor`); a `limit` above the maximum is capped. Secrets are never shown."""
    return await service.list_subscriptions(
        uow=uow,
        owner_id=principal.subject,
        limit=capped_limit(limit, MAX_PAGE_SIZE),
        cursor=cursor,
    )


@router.get("/subscriptions/{subscription_id}")
async def get_subscription(
    subscription_id: uuid.UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep
) -> SubscriptionOut:
    return await service.get_subscription(
        uow=uow, owner_id=principal.subject, subscription_id=subscription_id
    )


@router.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_subscription(
    subscription_id: uuid.UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep
) -> Response:
    """The subscription and its delivery log are gone; nothing more is sent to its URL."""
    await service.delete_subscription(
        uow=uow, owner_id=principal.subject, subscription_id=subscription_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/subscriptions/{subscription_id}/pause")
async def pause_subscription(
    subscription_id: uuid.UUID, principal: CurrentPrincipal, uow: UnitOfWorkDep
) -> SubscriptionOut:
    """Deliveries are held, not sent, until the subscription is resumed: events that happen
    meanwhile are recorded (`pending` in its delivery log) and sent on resume, none is lost.
    Attempts already in flight finish. Pausing a paused subscription changes nothing."""
    return await service.pause_subscription(
        uow=uow, owner_id=principal.subject, subscription_id=subscription_id
    )


@router.post("/subscriptions/{subscription_id}/resume")
async def resume_subscription(
    subscription_id: uuid.UUID,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    wake_dispatcher: WakeDispatcherDep,
) -> SubscriptionOut:
    """Deliveries held while paused are sent at once, oldest first, then new ones as usual."""
    return await service.resume_subscription(
        uow=uow,
        owner_id=principal.subject,
        subscription_id=subscription_id,
        wake_dispatcher=wake_dispatcher,
    )


@router.post("/subscriptions/{subscription_id}/rotate-secret")
async def rotate_secret(
    subscription_id: uuid.UUID,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    rotation: Annotated[RotateSecretIn | None, Body()] = None,
) -> SecretRotated:
    """A new signing secret, shown in this answer only. Until `previous_secret_expires_at`
    (`overlap_seconds` from now; `WEBHOOK_SECRET_OVERLAP_HOURS`, 24 by default, without a body)
    every delivery carries two signatures, `v1,<new> v1,<previous>`, so a receiver verifying
    with either secret accepts it; after that only the new secret signs. Rotating again within
    the window ends the older secret's at once."""
    return await service.rotate_secret(
        uow=uow,
        settings=settings,
        owner_id=principal.subject,
        subscription_id=subscription_id,
        rotation=rotation or RotateSecretIn(),
    )


@router.get("/subscriptions/{subscription_id}/deliveries/{delivery_id}")
async def get_delivery(
    subscription_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
) -> DeliveryOut:
    return await service.get_delivery(
        uow=uow,
        owner_id=principal.subject,
        subscription_id=subscription_id,
        delivery_id=delivery_id,
    )


@router.post(
    "/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "The delivery is still pending: its attempts go on."}},
)
async def redeliver(
    subscription_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    wake_dispatcher: WakeDispatcherDep,
) -> DeliveryOut:
    """A delivered or failed delivery is sent again: a new series of attempts (the full retry
    budget) of the same body with the same `webhook-id`, so a receiver that saw it already can
    drop the copy. Accepted as `pending`; read the delivery for its outcome."""
    return await service.redeliver(
        uow=uow,
        owner_id=principal.subject,
        subscription_id=subscription_id,
        delivery_id=delivery_id,
        wake_dispatcher=wake_dispatcher,
    )
