"""HTTP routes of `/v1/products`: parse, authorise, call a use case, shape the response.

The reads are public, the same document for every caller: they say how long every cache may keep
them (`CatalogSettings.products_cache_control`) and carry a strong ETag, and a read whose
`If-None-Match` holds it is answered 304 (`chassis.conditional`). Writes answer `no-store` (the
chassis default).

`internal_router` and `reservations_router` are for other services only, never routed by the
gateway: orders reads the prices of an order's products from `/internal/v1/products/{id}`, the
worker every reservation from `/internal/v1/reservations` (to reconcile them with orders), each
with its service token (`chassis.service_callers`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from catalog import service
from catalog.dependencies import CacheDep, SettingsDep, UnitOfWorkDep
from catalog.schemas import ProductCreate, ProductOut, ProductPage, ProductPatch, ReservationPage
from chassis.conditional import public_read
from chassis.pagination import capped_limit
from chassis.security import AdminPrincipal
from chassis.service_callers import ServiceCallers

DEFAULT_PAGE_SIZE = 20
# The worker's pages of reservations: large, bounded, never capped.
RESERVATIONS_DEFAULT_PAGE_SIZE = 500
RESERVATIONS_MAX_PAGE_SIZE = 1000

router = APIRouter(prefix="/v1/products", tags=["products"])
# Out of the public document: the gateway's is assembled from the services' own.
internal_router = APIRouter(
    prefix="/internal/v1/products",
    dependencies=[ServiceCallers("orders")],
    include_in_schema=False,
)
reservations_router = APIRouter(
    prefix="/internal/v1/reservations",
    dependencies=[ServiceCallers("worker")],
    include_in_schema=False,
)


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "`If-None-Match` holds the current ETag: no body."}
}


@router.get("", response_model=ProductPage, responses=NOT_MODIFIED)
async def list_products(
    request: Request,
    *,
    uow: UnitOfWorkDep,
    cache: CacheDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1)] = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Response:
    """Products oldest first; a `limit` above the maximum page size is capped, not refused."""
    capped = capped_limit(limit, settings.products_max_page_size)
    page = await service.list_products(uow=uow, cache=cache, limit=capped, cursor=cursor)
    return public_read(
        request, page.model_dump_json().encode(), cache_control=settings.products_cache_control
    )


@router.get("/{product_id}", response_model=ProductOut, responses=NOT_MODIFIED)
@internal_router.get("/{product_id}", response_model=ProductOut)
async def get_product(
    product_id: uuid.UUID,
    request: Request,
    uow: UnitOfWorkDep,
    cache: CacheDep,
    settings: SettingsDep,
) -> Response:
    # The document as cached (validated on the way), not parsed and serialised again.
    document = await service.product_document(uow=uow, cache=cache, product_id=product_id)
    return public_read(request, document, cache_control=settings.products_cache_control)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A product with this SKU exists."}},
)
async def create_product(
    product_in: ProductCreate,
    _: AdminPrincipal,
    uow: UnitOfWorkDep,
    cache: CacheDep,
    response: Response,
) -> ProductOut:
    created = await service.create_product(uow=uow, cache=cache, product_in=product_in)
    response.headers["Location"] = f"{router.prefix}/{created.id}"
    return created


@router.patch("/{product_id}")
async def update_product(
    product_id: uuid.UUID,
    patch: ProductPatch,
    _: AdminPrincipal,
    uow: UnitOfWorkDep,
    cache: CacheDep,
) -> ProductOut:
    return await service.update_product(uow=uow, cache=cache, product_id=product_id, patch=patch)


@reservations_router.get("")
async def list_reservations(
    uow: UnitOfWorkDep,
    after: str | None = None,
    limit: Annotated[
        int, Query(ge=1, le=RESERVATIONS_MAX_PAGE_SIZE)
    ] = RESERVATIONS_DEFAULT_PAGE_SIZE,
) -> ReservationPage:
    """Every reservation, released ones too, by (order_id, product_id); `after` is the
    `next_cursor` of the previous page."""
    return await service.list_reservations(uow=uow, limit=limit, after=after)
