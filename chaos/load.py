"""Steady open-loop traffic through the gateway, from clients that behave as the API asks.

Orders arrive at a fixed rate whatever the fleet answers (a closed loop would slow down with the
fleet and hide an outage). Every order carries an `Idempotency-Key`, so a client may send it
again until it has an answer:

- a refusal with `Retry-After` (503 shedding or circuit open, 429) is retried after that delay:
  it is the API saying "not now", not a failure;
- a kept-alive connection the server closed just as a request went out (no answer at all) is
  retried at once when the request is safe to repeat (a GET, or a keyed POST), as HTTP allows;
- with `retry_failures` (a client riding out faults: `make chaos`), a transport error, a 5xx or
  a 409 "key in flight" is retried too, with jittered backoff: the key makes the retry safe;
  without it (a rolling restart must cause none), such an answer is a failed request.

Reads ride along (the product list, and the last order placed), retried the same way, as GETs are
safe to repeat. Each request's journey is recorded: attempts, the statuses seen, the final answer.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

# Give up on one request after this long: it is then a failure whatever the reason.
REQUEST_DEADLINE_SECONDS = 60.0


@dataclass
class Journey:
    """One logical request: every attempt until a final answer or the deadline."""

    kind: str  # "order" or "read"
    key: str
    statuses: list[int | str] = field(default_factory=list)
    final: int | str | None = None
    order_id: str | None = None
    failed: bool = False

    @property
    def retried(self) -> bool:
        return len(self.statuses) > 1


@dataclass
class LoadReport:
    journeys: list[Journey]
    seconds: float
    # p99 of how late requests were sent against their schedule (the generator kept up or not).
    schedule_lag_p99: float

    @property
    def orders(self) -> list[Journey]:
        return [j for j in self.journeys if j.kind == "order"]

    @property
    def accepted(self) -> dict[str, str]:
        """Idempotency key -> order id of every order the fleet accepted (202)."""
        return {j.key: j.order_id for j in self.orders if j.order_id is not None}

    @property
    def failures(self) -> list[Journey]:
        return [j for j in self.journeys if j.failed]

    def attempts_by_status(self) -> Counter[str]:
        return Counter(str(s) for j in self.journeys for s in j.statuses)

    def summary(self) -> dict[str, Any]:
        return {
            "orders": len(self.orders),
            "accepted": len(self.accepted),
            "reads": len(self.journeys) - len(self.orders),
            "failed": len(self.failures),
            "retried": sum(j.retried for j in self.journeys),
            "attempts_by_status": dict(sorted(self.attempts_by_status().items())),
            "schedule_lag_p99_ms": round(self.schedule_lag_p99 * 1000, 1),
        }


class SteadyLoad:
    def __init__(
        self,
        gateway: str,
        *,
        tokens: list[str],
        products: list[str],
        orders_per_second: float,
        reads_per_order: int = 1,
        retry_failures: bool = False,
        seed: int = 1,
    ) -> None:
        self.gateway = gateway
        self.tokens = tokens
        self.products = products
        self.rate = orders_per_second
        self.reads_per_order = reads_per_order
        self.retry_failures = retry_failures
        self.random = random.Random(seed)
        self.journeys: list[Journey] = []
        self.lags: list[float] = []
        self._last_order: tuple[str, str] | None = None  # (token, order id)
        self._session: aiohttp.ClientSession | None = None
        self._answered = asyncio.Condition()
        self.answered = 0  # requests that reached their final answer

    async def wait_answered(self, count: int, timeout: float) -> None:
        """Wait until `count` requests have their final answer."""
        async with self._answered:
            await asyncio.wait_for(self._answered.wait_for(lambda: self.answered >= count), timeout)

    async def run(self, stop: asyncio.Event, *, max_orders: int | None = None) -> LoadReport:
        """Send orders on schedule until `stop` is set (or `max_orders` were sent), then wait for
        every request in flight to reach its final answer."""
        timeout = aiohttp.ClientTimeout(total=15)
        connector = aiohttp.TCPConnector(limit=0)
        tasks: set[asyncio.Task[Any]] = set()
        begin = time.monotonic()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self._session = session
            sent = 0
            while not stop.is_set() and (max_orders is None or sent < max_orders):
                due = begin + sent / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
                self.lags.append(max(0.0, time.monotonic() - due))
                tasks.add(asyncio.create_task(self._order(session, sent)))
                for _ in range(self.reads_per_order):
                    tasks.add(asyncio.create_task(self._read(session)))
                sent += 1
            if tasks:
                await asyncio.wait(tasks)
            self._session = None
        lags = sorted(self.lags) or [0.0]
        return LoadReport(
            self.journeys, time.monotonic() - begin, lags[min(len(lags) - 1, len(lags) * 99 // 100)]
        )

    async def probe(self) -> Journey:
        """One more order, off the schedule (while `run` is running): its journey."""
        assert self._session is not None, "probe() needs the load running"
        return await self._order(self._session, self.random.randrange(len(self.tokens)))

    async def _order(self, session: aiohttp.ClientSession, n: int) -> Journey:
        token = self.tokens[n % len(self.tokens)]
        lines = self.random.sample(self.products, k=self.random.choice((1, 1, 2)))
        body = {"items": [{"product_id": p, "quantity": 1} for p in lines]}
        journey = Journey("order", uuid.uuid4().hex)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": journey.key}
        answer = await self._send(
            session, journey, "POST", "/v1/orders", headers=headers, body=body
        )
        if answer is not None and journey.final == 202:
            journey.order_id = str(answer["id"])
            self._last_order = (token, journey.order_id)
        return journey

    async def _read(self, session: aiohttp.ClientSession) -> None:
        journey = Journey("read", uuid.uuid4().hex)
        if self._last_order is not None and self.random.random() < 0.5:
            token, order_id = self._last_order
            headers = {"Authorization": f"Bearer {token}"}
            await self._send(session, journey, "GET", f"/v1/orders/{order_id}", headers=headers)
        else:
            await self._send(session, journey, "GET", "/v1/products?limit=10")

    async def _send(
        self,
        session: aiohttp.ClientSession,
        journey: Journey,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        self.journeys.append(journey)
        deadline = time.monotonic() + REQUEST_DEADLINE_SECONDS
        backoff = 0.2
        repeatable = method == "GET" or "Idempotency-Key" in (headers or {})
        while True:
            retry_in: float | None = None
            try:
                async with session.request(
                    method, f"{self.gateway}{path}", headers=headers, json=body
                ) as response:
                    status: int | str = response.status
                    payload = await response.json(content_type=None)
                    retry_after = response.headers.get("Retry-After")
                    if status in (429, 503) and retry_after is not None:
                        retry_in = float(retry_after)
                    elif self.retry_failures and (response.status >= 500 or response.status == 409):
                        retry_in = backoff
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                status, payload = type(exc).__name__, None
                if self.retry_failures:
                    retry_in = backoff
                elif isinstance(exc, aiohttp.ServerDisconnectedError) and repeatable:
                    # A kept-alive connection closed as the request went out (its server was
                    # draining): no answer came, and a request that is safe to repeat is sent
                    # again at once, as RFC 9112 (9.3.1) allows.
                    retry_in = 0.0
            journey.statuses.append(status)
            if retry_in is None or time.monotonic() + retry_in > deadline:
                journey.final = status
                journey.failed = retry_in is not None or not (
                    isinstance(status, int) and status < 400
                )
                async with self._answered:
                    self.answered += 1
                    self._answered.notify_all()
                return payload
            backoff = min(backoff * 2, 2.0)
            await asyncio.sleep(retry_in * (0.5 + self.random.random()))
