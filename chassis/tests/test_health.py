"""/livez never looks at dependencies; /readyz is 503 only when a critical one is down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from chassis.health import Check


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionRefusedError


async def _hang() -> None:
    await asyncio.sleep(30)


async def _get(app: FastAPI, path: str) -> httpx.Response:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        return await http.get(path)


async def test_ready_when_every_dependency_answers(sample_app: Callable[..., FastAPI]) -> None:
    response = await _get(sample_app([Check("postgres", _ok), Check("redis", _ok)]), "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_critical_dependency_down_makes_readyz_503_but_not_livez(
    sample_app: Callable[..., FastAPI],
) -> None:
    app = sample_app([Check("postgres", _down)])
    ready = await _get(app, "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["postgres"].startswith("error")
    assert (await _get(app, "/livez")).status_code == 200


async def test_non_critical_dependency_down_reports_degraded_but_stays_ready(
    sample_app: Callable[..., FastAPI],
) -> None:
    app = sample_app([Check("postgres", _ok), Check("redis", _down, critical=False)])
    response = await _get(app, "/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


async def test_hanging_dependency_times_out_quickly(sample_app: Callable[..., FastAPI]) -> None:
    app = sample_app([Check("rabbitmq", _hang)], readiness_timeout_seconds=0.2)
    response = await asyncio.wait_for(_get(app, "/readyz"), 5)
    assert response.status_code == 503
    assert response.json()["checks"]["rabbitmq"] == "timeout"
