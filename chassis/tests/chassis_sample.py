"""A minimal chassis service used by the tests: run in-process or as `python sample_app.py`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict

from chassis.app import create_app, serve
from chassis.health import Check
from chassis.logging import get_logger
from chassis.problems import NotFoundError
from chassis.settings import ServiceSettings

log = get_logger(__name__)
router = APIRouter()


class Widget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int


@router.post("/widgets", status_code=201)
async def create_widget(widget: Widget) -> Widget:
    return widget


@router.get("/widgets/{widget_id}")
async def get_widget(widget_id: int) -> Widget:
    raise NotFoundError(f"Widget {widget_id} does not exist.")


@router.get("/crash")
async def crash() -> None:
    msg = "secret internal detail"
    raise RuntimeError(msg)


@router.get("/slow")
async def slow(seconds: float = 1.0) -> dict[str, float]:
    log.info("slow_request_started", seconds=seconds)  # tests wait for it: the request is in flight
    await asyncio.sleep(seconds)
    return {"slept": seconds}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(settings: ServiceSettings, checks: Sequence[Check] = ()) -> FastAPI:
    return create_app(settings=settings, routers=[router], checks=lambda _: checks)


if __name__ == "__main__":
    config = ServiceSettings(service_name="sample")
    serve(build(config), config)
