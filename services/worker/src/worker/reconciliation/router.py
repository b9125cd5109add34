"""HTTP routes of `/v1/admin/reconciliations`: admins read the runs and start one now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from chassis.pagination import capped_limit
from chassis.security import AdminPrincipal
from worker.dependencies import ObjectStoreDep, SettingsDep, UnitOfWorkDep
from worker.reconciliation import service
from worker.reconciliation.repository import ReconciliationRepository
from worker.reconciliation.schemas import ReconciliationList

MAX_RUNS = 100

router = APIRouter(prefix="/v1/admin/reconciliations", tags=["admin"])


@router.get("")
async def list_reconciliations(
    _: AdminPrincipal,
    uow: UnitOfWorkDep,
    store: ObjectStoreDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1)] = 10,
) -> ReconciliationList:
    """The latest runs, newest first (at most 100), each with its drift by kind and a fresh
    link to its report."""
    async with uow:
        runs = await uow.repository(ReconciliationRepository).latest(capped_limit(limit, MAX_RUNS))
    ttl = settings.s3_presign_ttl_seconds
    return ReconciliationList(
        items=[await service.describe(run, store=store, ttl_seconds=ttl) for run in runs]
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def start_reconciliation(
    principal: AdminPrincipal,
    uow: UnitOfWorkDep,
    store: ObjectStoreDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Start a run now, beside the schedule's; `pending` until a replica has compared."""
    run = await service.start_now(
        uow, principal, settle_seconds=settings.reconciliation_settle_seconds
    )
    described = await service.describe(
        run, store=store, ttl_seconds=settings.s3_presign_ttl_seconds
    )
    return JSONResponse(described.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
