"""`Annotated` dependency aliases of the worker's routes; the resources live on `app.state`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, cast

from fastapi import Depends, Request

from chassis.db import UnitOfWork
from chassis.storage import ObjectStore
from worker.settings import WorkerSettings


async def _unit_of_work(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.sessions)


async def _settings(request: Request) -> WorkerSettings:
    return cast(WorkerSettings, request.app.state.settings)


async def _wake_dispatcher(request: Request) -> Callable[[], None]:
    return cast(Callable[[], None], request.app.state.dispatcher.loop.wake)


async def _object_store(request: Request) -> ObjectStore:
    return cast(ObjectStore, request.app.state.object_store)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(_unit_of_work)]
SettingsDep = Annotated[WorkerSettings, Depends(_settings)]
# Wakes the webhook dispatcher: for a use case that makes deliveries due (after its commit).
WakeDispatcherDep = Annotated[Callable[[], None], Depends(_wake_dispatcher)]
# The bucket exports and reconciliation reports are written to.
ObjectStoreDep = Annotated[ObjectStore, Depends(_object_store)]
