"""The ceilings the fleet is measured against, taken in the same run on the same machine: a bare
FastAPI endpoint, Postgres committing an order-shaped transaction, RabbitMQ confirming
publishes to a quorum queue."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import asyncpg
import httpx

from bench.common import HttpLoad, free_port, wrk

BENCH_DIR = Path(__file__).resolve().parent

# One order as the fleet writes it: the order, its line, its event, one commit (pgbench script).
ORDER_SHAPED = """
\\set n random(1, 1000000000)
BEGIN;
INSERT INTO {schema}.orders (id, user_id, status, total_cents, currency)
  VALUES (gen_random_uuid(), gen_random_uuid(), 'pending', :n, 'EUR');
INSERT INTO {schema}.order_items (order_id, product_id, quantity, unit_price_cents)
  VALUES (gen_random_uuid(), gen_random_uuid(), 1, :n);
INSERT INTO {schema}.outbox (event_id, event_type, subject, body)
  VALUES (gen_random_uuid(), 'order.placed.v1', :n::text, '{{"data": {{"total_cents": 1}}}}');
COMMIT;
"""
TABLES = """
CREATE TABLE {schema}.orders (id uuid PRIMARY KEY, user_id uuid NOT NULL, status text NOT NULL,
  total_cents bigint NOT NULL, currency text NOT NULL, created_at timestamptz DEFAULT now());
CREATE TABLE {schema}.order_items (order_id uuid, product_id uuid, quantity int,
  unit_price_cents bigint, PRIMARY KEY (order_id, product_id));
CREATE TABLE {schema}.outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id uuid UNIQUE NOT NULL, event_type text NOT NULL, subject text, body jsonb NOT NULL,
  created_at timestamptz DEFAULT now(), published_at timestamptz);
"""


@contextlib.contextmanager
def bare_fastapi() -> Iterator[str]:
    """The bare endpoint's base URL while it runs."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR.parent)]
    command += ["bench.bare_app:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning", "--loop", "uvloop"]
    process = subprocess.Popen([*command, "--http", "httptools"], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/products/x", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                msg = "the bare FastAPI endpoint did not start"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def bare_endpoint(*, seconds: float, connections: tuple[int, ...]) -> list[HttpLoad]:
    with bare_fastapi() as url:
        target = f"{url}/v1/products/{uuid.uuid4()}"
        wrk("warm-up", target, connections=4, seconds=1)
        return [wrk("bare FastAPI", target, connections=c, seconds=seconds) for c in connections]


async def postgres_commit_rate(admin_dsn: str, database: str, *, seconds: float) -> float:
    """Transactions per second of `ORDER_SHAPED` from 8 pgbench clients."""
    binary = shutil.which("pgbench")
    if binary is None:
        msg = "pgbench is needed (Debian: postgresql-client or postgresql)"
        raise RuntimeError(msg)
    schema = f"bench_pg_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(TABLES.format(schema=schema))
        with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
            script.write(ORDER_SHAPED.format(schema=schema))
            script.flush()
            dsn = re.sub(r"/[^/]*$", f"/{database}", admin_dsn)
            out = await asyncio.to_thread(
                subprocess.run,
                [
                    binary,
                    "-n",
                    "-c",
                    "8",
                    "-j",
                    "2",
                    "-T",
                    str(round(seconds)),
                    "-f",
                    script.name,
                    dsn,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        match = re.search(r"tps = ([\d.]+)", out.stdout)
        if match is None:
            msg = f"unexpected pgbench output:\n{out.stdout}\n{out.stderr}"
            raise RuntimeError(msg)
        return float(match.group(1))
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


async def rabbitmq_publish_rate(
    amqp_url: str, *, seconds: float, in_flight: int = 200, size: int = 1024
) -> float:
    """Messages per second published with confirms to a quorum queue, `in_flight` at a time."""
    connection = await aio_pika.connect_robust(amqp_url)
    name = f"bench.publish.{uuid.uuid4().hex[:8]}"
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum", "x-expires": 600_000}
        )
        body = b"x" * size
        confirmed = 0
        stop = time.monotonic() + seconds

        async def publisher() -> None:
            nonlocal confirmed
            while time.monotonic() < stop:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=name,
                )
                confirmed += 1

        started = time.monotonic()
        await asyncio.gather(*(publisher() for _ in range(in_flight)))
        rate = confirmed / (time.monotonic() - started)
        await queue.delete(if_unused=False, if_empty=False)
        return rate
    finally:
        await connection.close()


def _echo(server: socket.socket, count: int) -> None:
    peer, _ = server.accept()
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(count):
        peer.recv(256)
        peer.sendall(b"y" * 64)
    peer.close()


def round_trip(count: int = 20_000) -> dict[str, float]:
    """One loopback TCP round trip between two processes (a query and its answer, in
    miniature): its wall time, and the CPU the asking side spends on it. Every database
    statement, broker frame and HTTP hop of an order pays at least this."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    echo = multiprocessing.get_context("fork").Process(target=_echo, args=(server, count))
    echo.start()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        client.sendall(b"x" * 128)
        client.recv(256)
    wall_us = (time.perf_counter() - began) / count * 1e6
    cpu_us = (time.process_time() - cpu) / count * 1e6
    client.close()
    echo.join(10)
    server.close()
    return {"wall_us": round(wall_us, 1), "cpu_us": round(cpu_us, 1)}
