"""Open-loop order load: orders arrive at a fixed rate whatever the fleet answers, as customers
do (a closed loop slows down with the server and hides its queueing).

    python -m bench.loadgen < plan.json > results.json

The plan names the gateway, the customers' tokens, the products, the rate and the duration. Each
order is sent at its scheduled instant; the lag between schedule and send is recorded, so the
report can show the generator kept its schedule (a generator that falls behind offers less load
than it claims). One process, one event loop (uvloop), one connection pool.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from typing import Any

import aiohttp
import uvloop


async def run(plan: dict[str, Any]) -> list[list[Any]]:
    rate: float = plan["rate"]
    count = round(rate * plan["seconds"])
    tokens: list[str] = plan["tokens"]
    products: list[str] = plan["products"]
    chooser = random.Random(plan.get("seed", 1))
    bodies = []
    for _ in range(count):
        lines = chooser.sample(products, k=chooser.choice((1, 1, 2)))
        bodies.append({"items": [{"product_id": p, "quantity": 1} for p in lines]})
    results: list[list[Any]] = [[] for _ in range(count)]
    timeout = aiohttp.ClientTimeout(total=plan.get("timeout", 30))
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        url = f"{plan['gateway']}/v1/orders"
        start = time.perf_counter() + 0.2

        async def place(i: int) -> None:
            due = start + i / rate
            await asyncio.sleep(due - time.perf_counter())
            sent = time.perf_counter()
            headers = {
                "Authorization": f"Bearer {tokens[i % len(tokens)]}",
                "Idempotency-Key": uuid.uuid4().hex,
            }
            status: int | str
            order_id = retry_after = None
            try:
                async with session.post(url, json=bodies[i], headers=headers) as response:
                    status = response.status
                    body = await response.read()
                    retry_after = response.headers.get("Retry-After")
                    if status == 202:
                        order_id = json.loads(body)["id"]
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            done = time.perf_counter()
            results[i] = [
                round(due - start, 4),
                round((sent - due) * 1000, 3),
                round((done - sent) * 1000, 3),
                status,
                order_id,
                retry_after,
            ]

        await asyncio.gather(*(place(i) for i in range(count)))
    return results


def main() -> None:
    plan = json.load(sys.stdin)
    results = uvloop.run(run(plan))
    json.dump({"results": results, "cpu_seconds": time.process_time()}, sys.stdout)


if __name__ == "__main__":
    main()
