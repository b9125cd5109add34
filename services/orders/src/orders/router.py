"""HTTP routes of `/v1/orders`: parse, authenticate, call a use case, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import Response

from chassis.pagination import capped_limit
from orders import service
from orders.dependencies import (
    Admitted,
    CustomerDep,
    IdempotencyKeyDep,
    PricesDep,
    SettingsDep,
    UnitOfWorkDep,
)
from orders.idempotency import REPLAYED_HEADER
from orders.schemas import OrderOut, OrderPage, PlaceOrder

DEFAULT_PAGE_SIZE = 20

router = APIRouter(prefix="/v1/orders", tags=["orders"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderOut,
    dependencies=[Admitted],
    responses={
        202: {
            "description": "The order, `pending` until the saga decides it.",
            "links": {
                "GetOrder": {
                    "operationId": "get_order_v1_orders__order_id__get",
                    "parameters": {"order_id": "$response.body#/id"},
                },
                "CancelOrder": {
                    "operationId": "cancel_order_v1_orders__order_id__cancel_post",
                    "parameters": {"order_id": "$response.body#/id"},
                },
            },
        },
        409: {"description": "Another request with this Idempotency-Key is still running."},
        503: {"description": "Not admitted now (or prices unavailable): see Retry-After"},
    },
)
async def place_order(
    user_id: CustomerDep,
    key: IdempotencyKeyDep,
    order_in: PlaceOrder,
    *,
    uow: UnitOfWorkDep,
    prices: PricesDep,
    settings: SettingsDep,
) -> Response:
    """Accepted as `pending`: stock is reserved asynchronously (poll the order for its fate).
    A retry with the same `Idempotency-Key` gets this response back for
    `IDEMPOTENCY_KEY_TTL_HOURS` (24 by default); after that the key starts a new order."""
    placed = await service.place_order(
        uow=uow,
        prices=prices,
        user_id=user_id,
        key=key,
        key_ttl=settings.idempotency_key_ttl,
        order_in=order_in,
    )
    headers = {"Location": f"{router.prefix}/{placed.order_id}"}
    if placed.replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(
        placed.body, status_code=placed.status, headers=headers, media_type="application/json"
    )


@router.get("")
async def list_orders(
    user_id: CustomerDep,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> OrderPage:
    """The caller's orders, newest first; a `limit` above the maximum is capped, not refused."""
    capped = capped_limit(limit, settings.orders_max_page_size)
    return await service.list_orders(uow=uow, user_id=user_id, limit=capped, cursor=cursor)


@router.get("/{order_id}")
async def get_order(order_id: uuid.UUID, user_id: CustomerDep, uow: UnitOfWorkDep) -> OrderOut:
    return await service.get_order(uow=uow, user_id=user_id, order_id=order_id)


@router.post(
    "/{order_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "The order can no longer be cancelled."}},
)
async def cancel_order(order_id: uuid.UUID, user_id: CustomerDep, uow: UnitOfWorkDep) -> OrderOut:
    """Cancelled at once; catalog gives the stock back asynchronously."""
    return await service.cancel_order(uow=uow, user_id=user_id, order_id=order_id)
