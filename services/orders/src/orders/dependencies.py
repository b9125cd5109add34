"""`Annotated` dependency aliases of the orders routes; the resources live on `app.state`."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

from fastapi import Depends, Header, Request

from chassis.db import UnitOfWork
from chassis.security import CurrentPrincipal
from orders.admission import OrderAdmission
from orders.exceptions import NotACustomerError
from orders.idempotency import HEADER, checked_key
from orders.prices import PriceList
from orders.settings import OrdersSettings


async def _unit_of_work(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.sessions)


async def _prices(request: Request) -> PriceList:
    return cast(PriceList, request.app.state.prices)


async def _admitted(request: Request) -> None:
    """New orders pass admission control first: a refused one costs no other work."""
    admission: OrderAdmission = request.app.state.admission
    admission.admit()


async def _settings(request: Request) -> OrdersSettings:
    return cast(OrdersSettings, request.app.state.settings)


async def _customer(principal: CurrentPrincipal) -> uuid.UUID:
    """The caller's user id (the token's subject)."""
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        raise NotACustomerError("The token's subject is not a user id.") from None


KEY_DESCRIPTION = (
    "Required: 1 to 200 printable ASCII characters, e.g. a UUID. A retry with the same key and "
    "body gets the first response back (`Idempotent-Replayed: true`) for "
    "`IDEMPOTENCY_KEY_TTL_HOURS` (24 by default); after that the key is a new request."
)


async def _idempotency_key(
    value: Annotated[
        str | None, Header(alias=HEADER, include_in_schema=True, description=KEY_DESCRIPTION)
    ] = None,
) -> str:
    # Checked here rather than declared required, so a missing key is a 400 (not a 422) and is
    # reported before the body is looked at.
    return checked_key(value)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(_unit_of_work)]
PricesDep = Annotated[PriceList, Depends(_prices)]
SettingsDep = Annotated[OrdersSettings, Depends(_settings)]
CustomerDep = Annotated[uuid.UUID, Depends(_customer)]
IdempotencyKeyDep = Annotated[str, Depends(_idempotency_key)]
Admitted = Depends(_admitted)
