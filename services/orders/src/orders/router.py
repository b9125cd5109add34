"""HTTP routes of `/v1/orders`: parse, authenticate, call a use case, shape the response.

`internal_router` is for the worker only, never routed by the gateway: it reads every order (a
customer's, or all of them created in a time range) in keyset pages, for exports and for the
reconciliation with catalog's reservations, with its service token (`chassis.service_callers`).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import Response
from pydantic import AwareDatetime

from chassis.pagination import capped_limit
from chassis.service_callers import ServiceCallers
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
from orders.repository import OrderBy, Selection
from orders.schemas import InternalOrderPage, OrderOut, OrderPage, PlaceOrder

DEFAULT_PAGE_SIZE = 20
# The worker's pages: large (an export walks 100,000 orders and more), bounded, never capped.
INTERNAL_DEFAULT_PAGE_SIZE = 500
INTERNAL_MAX_PAGE_SIZE = 1000

router = APIRouter(prefix="/v1/orders", tags=["orders"])
# Out of the public document: the gateway's is assembled from the services' own.
internal_router = APIRouter(
    prefix="/internal/v1/orders",
    dependencies=[ServiceCallers("worker")],
    include_in_schema=False,
)


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


@internal_router.get("")
async def read_orders(
    uow: UnitOfWorkDep,
    *,
    user_id: uuid.UUID | None = None,
    created_since: AwareDatetime | None = None,
    created_until: AwareDatetime | None = None,
    order_by: OrderBy = "created",
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=INTERNAL_MAX_PAGE_SIZE)] = INTERNAL_DEFAULT_PAGE_SIZE,
) -> InternalOrderPage:
    """Orders with their lines, oldest first by (created_at, id) (`order_by=created`) or by id
    (`order_by=id`); a customer's only with `user_id`, created in [`created_since`,
    `created_until`) when given. `after` is the `next_cursor` of the previous page."""
    selection = Selection(user_id=user_id, created_since=created_since, created_until=created_until)
    return await service.read_orders(
        uow=uow, selection=selection, order_by=order_by, limit=limit, after=after
    )
