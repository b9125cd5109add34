"""`Annotated` dependency aliases of the catalog's routes; the resources live on `app.state`."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from catalog.cache import ProductCache
from catalog.settings import CatalogSettings
from chassis.db import UnitOfWork


async def _unit_of_work(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.sessions)


async def _cache(request: Request) -> ProductCache:
    return cast(ProductCache, request.app.state.cache)


async def _settings(request: Request) -> CatalogSettings:
    return cast(CatalogSettings, request.app.state.settings)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(_unit_of_work)]
CacheDep = Annotated[ProductCache, Depends(_cache)]
SettingsDep = Annotated[CatalogSettings, Depends(_settings)]
