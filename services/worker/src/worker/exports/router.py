"""HTTP routes of `/v1/orders/exports` (the gateway sends them to the worker, not to orders)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from chassis.security import CurrentPrincipal
from worker.dependencies import ObjectStoreDep, SettingsDep, UnitOfWorkDep
from worker.exports import service
from worker.exports.schemas import ExportIn, ExportOut

router = APIRouter(prefix="/v1/orders/exports", tags=["exports"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportOut,
    responses={
        202: {
            "description": "The export, `pending`: poll its `Location` until it is `ready` "
            "(its requester is also e-mailed).",
            "links": {
                "GetExport": {
                    "operationId": "get_export_v1_orders_exports__export_id__get",
                    "parameters": {"export_id": "$response.body#/id"},
                }
            },
        }
    },
)
async def request_export(
    export_in: ExportIn, principal: CurrentPrincipal, uow: UnitOfWorkDep
) -> JSONResponse:
    """The caller's order history (`scope` `mine`), or every order in the time range (`all`,
    admins only), as CSV or JSON Lines, written in the background."""
    created = await service.request_export(uow=uow, principal=principal, export_in=export_in)
    return JSONResponse(
        created.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"{router.prefix}/{created.id}"},
    )


@router.get("/{export_id}")
async def get_export(
    export_id: uuid.UUID,
    principal: CurrentPrincipal,
    uow: UnitOfWorkDep,
    store: ObjectStoreDep,
    settings: SettingsDep,
) -> ExportOut:
    """One of the caller's exports; once `ready`, with a fresh presigned `download_url`."""
    return await service.read_export(
        uow=uow,
        principal=principal,
        export_id=export_id,
        store=store,
        ttl_seconds=settings.s3_presign_ttl_seconds,
    )
