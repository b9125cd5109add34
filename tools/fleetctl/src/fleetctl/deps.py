"""Is each local dependency reachable? Answer with what to run when one is not."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aio_pika
import asyncpg
from redis.asyncio import Redis

from fleetctl.stack import Stack

START_COMMANDS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no",
    "RabbitMQ": "rabbitmq-server -detached",
}


@dataclass(frozen=True, slots=True)
class Unreachable:
    name: str
    where: str
    error: str

    def advice(self) -> str:
        return (
            f"{self.name} is not reachable at {self.where} ({self.error}).\n"
            f"  Start it with: {START_COMMANDS[self.name]}"
        )


async def _postgres(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.maintenance_dsn, timeout=3)
    await conn.close()


async def _redis(stack: Stack) -> None:
    client = Redis.from_url(stack.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _rabbitmq(stack: Stack) -> None:
    connection = await aio_pika.connect(stack.amqp_url, timeout=3)
    await connection.close()


async def unreachable(stack: Stack) -> list[Unreachable]:
    probes = {
        "PostgreSQL": (_postgres(stack), f"{stack.pg_host}:{stack.pg_port}"),
        "Redis": (_redis(stack), stack.redis_url),
        "RabbitMQ": (_rabbitmq(stack), stack.amqp_url.rsplit("@", 1)[-1]),
    }
    results = await asyncio.gather(*(p for p, _ in probes.values()), return_exceptions=True)
    return [
        Unreachable(name, where, f"{type(r).__name__}: {r}".strip(": "))
        for (name, (_, where)), r in zip(probes.items(), results, strict=True)
        if isinstance(r, BaseException)
    ]
