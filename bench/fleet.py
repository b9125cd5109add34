"""The fleet under test: the five services as `make up` runs them (local processes, one each,
logs read by the supervisor), in a database, Redis prefix and broker namespace of their own, on
free ports, with the sample catalog and a few customers."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import free_port
from fleetctl.bootstrap import bootstrap, drop_database
from fleetctl.s3_emulator import EmulatorProcess
from fleetctl.smtp_sink import MailSink, Screen
from fleetctl.stack import SERVICES, Stack
from fleetctl.supervisor import Fleet

ADMIN = {"username": "admin@example.com", "password": "admin-password-change-me"}
PASSWORD = "correct horse battery staple"

# As in production, but the per-caller budget is so large it never refuses: every request still
# pays for its rate-limit check, none is turned away by it (all load comes from one address).
BENCH_SETTINGS = {"RATE_LIMIT_DEFAULT": "1000000/second", "RATE_LIMIT_LOGIN": "1000/second"}


@dataclass
class BenchFleet:
    stack: Stack
    fleet: Fleet
    customers: list[str] = field(default_factory=list)  # access tokens
    products: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return self.stack.url("gateway")

    def url(self, service: str) -> str:
        return self.stack.url(service)

    def pids(self) -> dict[str, int]:
        return {name: svc.process.pid for name, svc in self.fleet.running.items()}


async def _token(session: aiohttp.ClientSession, gateway: str, username: str, password: str) -> str:
    form = {"grant_type": "password", "username": username, "password": password}
    async with session.post(f"{gateway}/v1/auth/token", data=form) as response:
        response.raise_for_status()
        return str((await response.json())["access_token"])


async def _populate(fleet: BenchFleet, *, customers: int, products: int) -> None:
    async with aiohttp.ClientSession() as session:
        admin = {"Authorization": f"Bearer {await _token(session, fleet.gateway, **ADMIN)}"}
        for n in range(products):
            product = {
                "sku": f"BENCH-{n:04d}",
                "name": f"Benchmark product {n}",
                "price_cents": 500 + n,
                "stock": 1_000_000_000,  # never the reason an order is rejected here
            }
            async with session.post(
                f"{fleet.gateway}/v1/products", json=product, headers=admin
            ) as response:
                response.raise_for_status()
                fleet.products.append(str((await response.json())["id"]))

        async def customer() -> str:
            email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
            body = {"email": email, "password": PASSWORD}
            async with session.post(f"{fleet.gateway}/v1/auth/register", json=body) as response:
                response.raise_for_status()
            return await _token(session, fleet.gateway, email, PASSWORD)

        fleet.customers = list(await asyncio.gather(*(customer() for _ in range(customers))))


@contextlib.asynccontextmanager
async def running_fleet(
    *,
    customers: int = 20,
    products: int = 20,
    supervise: bool = False,
    settings: dict[str, str] | None = None,
    screen_mail: Screen | None = None,
    name: str = "bench",
) -> AsyncIterator[BenchFleet]:
    """`supervise`: restart what dies, as `make up` does; `settings` override BENCH_SETTINGS;
    `screen_mail` is the SMTP sink's screen (`fleetctl.smtp_sink.MailSink`)."""
    suffix = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix=f"fleet-{name}-") as state:
        ports = {s.name: free_port() for s in SERVICES}
        stack = Stack.from_env().with_(
            database=f"fleet_{name}_{suffix}",
            redis_key_prefix=f"{name}:{suffix}:",
            amqp_namespace=f"{name}.{suffix}.",
            state_dir=Path(state),
            ports=ports,
            smtp_port=free_port(),
            s3_port=free_port(),
            extra_env={**BENCH_SETTINGS, **(settings or {})},
        )
        sink = MailSink(stack.mail_dir, port=stack.smtp_port, screen=screen_mail).start()
        s3 = EmulatorProcess(port=stack.s3_port, bucket=stack.s3_bucket, emit=lambda _: None)
        await s3.start()
        fleet = Fleet(stack, supervise=supervise)
        try:
            await bootstrap(stack, seed=True)
            await fleet.start()
            await fleet.wait_ready(90)
            bench = BenchFleet(stack, fleet)
            await _populate(bench, customers=customers, products=products)
            yield bench
        finally:
            await fleet.stop()
            await s3.stop()
            sink.stop()
            await drop_database(stack)
