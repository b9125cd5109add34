"""HTTP routes of `/v1/webhooks`: parse, authenticate, call a use case, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from chassis.pagination import capped_limit
from chassis.security import CurrentPrincipal
from worker.dependencies import SettingsDep, UnitOfWorkDep
from worker.webhooks import service
from worker.webhooks.schemas import DeliveryList, SubscriptionCreated, SubscriptionIn

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionCreated,
    responses={
        201: {
            "description": "The subscription, with its signing secret (shown only here).",
            "links": {
                "ListDeliveries": {
                    "operationId": (
                        "list_deliveries_v1_webhooks_subscriptions__subscription_id__deliveries_get"
                    ),
                    "parameters": {"subscription_id": "$response.body#/id"},
                }
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
