"""Liveness and readiness probes.

`/livez` answers 200 while the event loop runs: it never touches a dependency, so a database outage
does not make Kubernetes restart healthy pods. `/readyz` runs the service's own dependency checks
concurrently, each with a timeout: a failing *critical* check answers 503 (take me out of the load
balancer); a failing non-critical one (a cache the service can live without) is reported as
degraded but keeps the pod in rotation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from chassis.logging import get_logger
from chassis.metrics import DEPENDENCY_UP

if TYPE_CHECKING:  # a service without a database or Redis never loads their clients
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    probe: Callable[[], Awaitable[Any]]
    critical: bool = True


def postgres_check(engine: AsyncEngine) -> Check:
    from sqlalchemy import text  # noqa: PLC0415 - the `db` extra, present wherever an engine is

    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return Check("postgres", probe)


def redis_check(client: Redis, *, critical: bool = True) -> Check:
    async def probe() -> None:
        await client.ping()

    return Check("redis", probe, critical=critical)


async def run_checks(checks: Sequence[Check], timeout: float) -> tuple[bool, dict[str, str]]:
    async def one(check: Check) -> tuple[Check, str]:
        try:
            await asyncio.wait_for(check.probe(), timeout)
        except TimeoutError:
            return check, "timeout"
        except Exception as exc:
            return check, f"error: {type(exc).__name__}"
        return check, "ok"

    results = await asyncio.gather(*(one(c) for c in checks))
    ready = True
    report: dict[str, str] = {}
    for check, outcome in results:
        report[check.name] = outcome
        DEPENDENCY_UP.labels(check.name).set(1 if outcome == "ok" else 0)
        if outcome != "ok":
            log.warning(
                "dependency_unavailable",
                dependency=check.name,
                outcome=outcome,
                critical=check.critical,
            )
            ready = ready and not check.critical
    return ready, report


def health_router(checks: Callable[[], Sequence[Check]], timeout: float) -> APIRouter:
    """`checks` is called per probe so it can read clients created during startup."""
    router = APIRouter(include_in_schema=False)

    @router.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        if getattr(request.app.state, "shutting_down", False):
            return JSONResponse({"status": "shutting_down", "checks": {}}, status_code=503)
        ready, report = await run_checks(checks(), timeout)
        status = (
            "ok"
            if ready and all(v == "ok" for v in report.values())
            else ("degraded" if ready else "unavailable")
        )
        return JSONResponse({"status": status, "checks": report}, status_code=200 if ready else 503)

    return router
