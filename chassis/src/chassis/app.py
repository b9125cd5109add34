"""Composition helpers: build a FastAPI app with the chassis around it, and serve it gracefully."""

from __future__ import annotations

import asyncio
import math
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI

from chassis.health import Check, health_router
from chassis.http import RequestContextMiddleware
from chassis.logging import configure_logging, get_logger
from chassis.loops import Loops
from chassis.metrics import router as metrics_router
from chassis.openapi import install_documented_problems
from chassis.problems import install_problem_handlers
from chassis.settings import ServiceSettings
from chassis.telemetry import configure_tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

log = get_logger(__name__)


@asynccontextmanager
async def _no_resources(_: FastAPI) -> AsyncIterator[None]:
    yield


def create_app(
    *,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    checks: Callable[[FastAPI], Sequence[Check]],
    lifespan: Lifespan = _no_resources,
    title: str | None = None,
    openapi_url: str | None = "/openapi.json",
) -> FastAPI:
    """The app of one service: its routers plus probes, metrics, problems and request context.

    `lifespan` opens the service's resources (engine, Redis, HTTP clients) on `app.state` and
    closes them on exit; `checks(app)` lists the dependencies `/readyz` must find reachable.
    The lifespan adds the service's background loops to `app.state.loops` (`chassis.loops`):
    `/readyz` checks them too, and any the lifespan left running are stopped after it.
    """
    configure_logging(
        service=settings.service_name, version=settings.service_version, level=settings.log_level
    )
    configure_tracing(service=settings.service_name, version=settings.service_version)

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        app.state.shutting_down = False
        try:
            async with lifespan(app):
                log.info("service_started", port=settings.port, env=settings.fleet_env.value)
                notify_ready()
                yield
                app.state.shutting_down = True
                log.info("service_stopping")
        finally:
            await app.state.loops.stop()
        log.info("service_stopped")

    app = FastAPI(
        title=title or f"fleet-{settings.service_name}",
        version=settings.service_version,
        lifespan=run,
        openapi_url=openapi_url,
        # The chassis middleware owns traces and metrics (one server span, Prometheus RED
        # metrics); FastAPI's native telemetry would add a second span and OTel metrics per
        # request for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        max_in_flight=settings.max_in_flight_requests,
    )
    app.state.loops = Loops()

    def readiness() -> Sequence[Check]:
        return [*checks(app), *app.state.loops.checks()]

    app.include_router(health_router(readiness, settings.readiness_timeout_seconds))
    app.include_router(metrics_router)
    for router in routers:
        app.include_router(router)
    install_documented_problems(app)
    return app


def notify_ready() -> None:
    """Tell a supervisor the service is up, by systemd's notify protocol (`READY=1` sent to the
    datagram socket `NOTIFY_SOCKET` names): a rolling restart waits for it before draining the
    process it replaces. The protocol is one datagram, so no library is pulled in for it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # Linux abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.sendto(b"READY=1", address)
    except OSError as exc:  # a supervisor gone away must not stop the service
        log.warning("notify_failed", error=str(exc))


def _inherited_listener(fd: int) -> socket.socket:
    """The listening socket a supervisor bound and handed down (`LISTEN_FD`): a new process of
    the service accepts from the same socket as the one it replaces, so no connection is
    refused or lost while they overlap."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


# How long connections accepted before SIGTERM get to send their request (see `shutdown`).
ACCEPTED_REQUEST_GRACE_SECONDS = 0.5


class _GracefulServer(uvicorn.Server):
    """Flags the app as shutting down the moment SIGTERM/SIGINT arrives, so /readyz says 503
    while in-flight requests are being finished, and exits 0 after a graceful drain (uvicorn
    would re-raise the signal, making every orderly rollout look like a crash)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._app.state.shutting_down = True
        log.info("shutdown_signal", signal=sig)
        super().handle_exit(sig, frame)
        self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting first, then let the connections accepted just before send their
        request, then uvicorn's drain. uvicorn closes every connection without a request in
        progress at once: one accepted a moment earlier, whose request was not read yet, would
        be closed unanswered (the client sees "server disconnected"), where a process taking
        over the same socket (a rolling restart) would have answered it."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await asyncio.sleep(ACCEPTED_REQUEST_GRACE_SECONDS)
        await super().shutdown(sockets)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run until SIGTERM/SIGINT: stop accepting, finish in-flight requests within the grace
    period, then run the lifespan exit (close pools)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        # The peer address is the TCP peer's: uvicorn would otherwise replace it with the
        # X-Forwarded-For a local peer (127.0.0.1: a sidecar, or any local client) sends, letting a
        # client pick its own rate-limit budget. The gateway reads X-Forwarded-For itself, trusting
        # only TRUSTED_PROXIES.
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
        timeout_keep_alive=5,
        loop="uvloop",
        http="httptools",
    )
    sockets = None if settings.listen_fd is None else [_inherited_listener(settings.listen_fd)]
    _GracefulServer(config, app).run(sockets=sockets)
