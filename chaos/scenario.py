"""The fleet under steady order load while every process and server it depends on fails.

A supervised fleet of its own (as `make up` runs it: a service that dies is restarted), with
customers that each hold webhook subscriptions to a receiver in this process, and an SMTP sink
that can hold a message mid-transfer. Open-loop orders (chaos.load, retrying with their
idempotency keys as the API allows) run throughout; the faults come one after another, each once
the fleet has recovered from the last:

- kill -9 of each service at a moment it is doing work: orders with events awaiting its relay,
  catalog with a delivery in its consumer's hands, the worker in the middle of sending an e-mail
  (the sink holds the message until the worker is dead), auth and the gateway serving requests;
- SIGTERM to each service (the supervisor starts it again, as Kubernetes would);
- every broker connection of the fleet dropped; RabbitMQ stopped and started; PostgreSQL
  restarted; Redis restarted (losing every key).

Recovery of a fault: from the moment it is over (the process killed, the server back up) until
every service is ready again and an order placed after it is decided. Afterwards, with
everything settled, the checks: every accepted order is decided; no order exists twice or
unknown to its client; catalog's stock went down by exactly the
confirmed quantities; every decided order got one e-mail (one Message-ID) and every confirmed
order one webhook (one webhook-id) per subscription of its customer; no dead letters; no answer
of 500 along the way.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bench.fleet import BenchFleet, running_fleet
from chaos import infrastructure
from chaos.load import Journey, LoadReport, SteadyLoad
from chassis.messaging import dlq
from chassis.messaging.runtime import BrokerSettings
from fleetctl.supervisor import ROLL_ORDER

# The fleet as in production, but webhook retries quick enough to settle within the run.
CHAOS_SETTINGS = {"WEBHOOK_BACKOFF_BASE_SECONDS": "0.2", "WEBHOOK_BACKOFF_CAP_SECONDS": "2"}
CONSUMERS = ("catalog", "orders", "worker")
ORDER_IN_SUBJECT = re.compile(r"order ([0-9a-f-]{36})")


@dataclass
class Fault:
    name: str
    detail: str = ""
    at: str = ""  # wall-clock time the fault was injected (UTC, to match the services' logs)
    recovery_seconds: float | None = None


@dataclass
class Checks:
    orders_sent: int = 0
    accepted: int = 0
    confirmed: int = 0
    rejected: int = 0
    lost: list[str] = field(default_factory=list)  # accepted, never decided
    lost_states: dict[str, int] = field(default_factory=dict)  # where they are: status or missing
    # A few lost orders with what their client saw, attempt by attempt: where to start looking.
    lost_examples: list[str] = field(default_factory=list)
    # Orders no client got an answer for: a second order for one idempotency key (or one whose
    # client gave up before any answer, which `client_failures` would show).
    duplicated: list[str] = field(default_factory=list)
    stock_mismatches: dict[str, int] = field(default_factory=dict)  # product -> difference
    mail_missing: list[str] = field(default_factory=list)
    mail_duplicated: list[str] = field(default_factory=list)  # several Message-IDs, one order
    mail_resent: int = 0  # the same Message-ID received again (SMTP is at least once)
    webhooks_missing: list[str] = field(default_factory=list)
    webhooks_duplicated: list[str] = field(default_factory=list)
    webhooks_redelivered: int = 0  # the same webhook-id again (receivers dedupe on it)
    dead_letters: dict[str, int] = field(default_factory=dict)
    client_failures: int = 0
    client_retries: int = 0
    # Answers of 500 seen by the clients, retried or not: a fault must never be a crash (a
    # dependency down is a 503 with Retry-After; 502/504 name a process that died under a call).
    server_errors: int = 0
    # What the services logged as unhandled errors: service, path and error type.
    crashes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.stock_mismatches
            or self.mail_missing
            or self.mail_duplicated
            or self.webhooks_missing
            or self.webhooks_duplicated
            or any(self.dead_letters.values())
            or self.client_failures
            or self.server_errors
        )


@dataclass
class ChaosReport:
    faults: list[Fault]
    checks: Checks
    load: dict[str, Any]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "faults": [asdict(f) for f in self.faults],
            "checks": asdict(self.checks),
            "load": self.load,
            "passed": self.checks.passed,
        }

    def text(self) -> str:
        c = self.checks
        lines = [
            f"orders: {c.orders_sent} sent, {c.accepted} accepted, {c.confirmed} confirmed, "
            f"{c.rejected} rejected (client retries {c.client_retries}, failures "
            f"{c.client_failures}) in {self.seconds:.0f} s",
            f"faults: {len(self.faults)}",
        ]
        for fault in self.faults:
            took = (
                "not recovered"
                if fault.recovery_seconds is None
                else (f"recovered in {fault.recovery_seconds:.1f} s")
            )
            lines.append(f"  {fault.at} {fault.name:<34} {took:<22} {fault.detail}")
        lines += [
            f"lost: {len(c.lost)} {c.lost_states or ''}",
            *(f"  {example}" for example in c.lost_examples),
            f"duplicated: {len(c.duplicated)}",
            "stock: "
            + (
                "down by exactly the confirmed quantities"
                if not c.stock_mismatches
                else f"differs from the confirmed quantities {c.stock_mismatches}"
            ),
            f"e-mails: {len(c.mail_missing)} missing, {len(c.mail_duplicated)} duplicated "
            f"({c.mail_resent} re-sent with the same Message-ID)",
            f"webhooks: {len(c.webhooks_missing)} missing, {len(c.webhooks_duplicated)} duplicated "
            f"({c.webhooks_redelivered} redelivered with the same webhook-id)",
            f"dead letters: {sum(c.dead_letters.values())} {c.dead_letters}",
            f"server errors (500) seen by clients: {c.server_errors} {c.crashes or ''}",
            "PASSED" if c.passed else "FAILED",
        ]
        return "\n".join(lines)


class MailHold:
    """The SMTP sink's screen: when armed, the next message is held mid-transfer (after its
    data arrived, before the sink answers) until released; then it is refused, never kept."""

    def __init__(self) -> None:
        self._armed = threading.Event()
        self._release = threading.Event()
        self.holding: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def arm(self) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        self.holding = asyncio.Event()
        self._release.clear()
        self._armed.set()
        return self.holding

    def release(self) -> None:
        self._armed.clear()
        self._release.set()

    async def screen(self) -> str | None:  # runs on the sink's own loop
        if not self._armed.is_set():
            return None
        self._armed.clear()
        assert self._loop is not None
        assert self.holding is not None
        self._loop.call_soon_threadsafe(self.holding.set)
        await asyncio.get_running_loop().run_in_executor(None, self._release.wait, 120)
        return "451 4.3.0 Transfer interrupted"


class WebhookReceiver:
    """Subscription endpoints `/hook/{n}`: every delivery, by subscription."""

    def __init__(self) -> None:
        self.received: dict[int, list[tuple[str, dict[str, Any]]]] = collections.defaultdict(list)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.received[int(request.match_info["n"])].append(
            (request.headers.get("webhook-id", ""), body)
        )
        return web.Response(status=204)

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook/{n}", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        listener = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(self._runner, listener).start()
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _user_of(token: str) -> str:
    claims = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"])


async def _gauges(url: str) -> dict[str, float]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
        session.get(f"{url}/metrics") as response,
    ):
        text = await response.text()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


class Chaos:
    def __init__(
        self, fleet: BenchFleet, load: SteadyLoad, hold: MailHold, say: Callable[[str], None]
    ) -> None:
        self.fleet = fleet
        self.load = load
        self.hold = hold
        self.say = say
        self.faults: list[Fault] = []

    # -- recovery -------------------------------------------------------------------------------

    async def _all_ready(self, deadline: float) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            pending = set(ROLL_ORDER)
            while pending:
                for name in sorted(pending):
                    try:
                        async with session.get(f"{self.fleet.url(name)}/readyz") as response:
                            if response.status == 200:
                                pending.discard(name)
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                if pending:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"not ready: {sorted(pending)}")
                    await asyncio.sleep(0.1)

    async def _decided(self, order: Journey, deadline: float) -> None:
        assert order.order_id is not None, f"the probe order was not accepted: {order.statuses}"
        conn = await asyncpg.connect(self.fleet.stack.admin_dsn)
        try:
            while True:
                status = await conn.fetchval(
                    "SELECT status FROM orders.orders WHERE id = $1::uuid", order.order_id
                )
                if status not in (None, "pending"):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"probe order {order.order_id} still {status}")
                await asyncio.sleep(0.1)
        finally:
            await conn.close()

    async def _recovered(self, began: float, timeout: float = 120.0) -> float | None:
        """Seconds from `began` until every service is ready and a new order is decided."""
        deadline = began + timeout
        try:
            await self._all_ready(deadline)
            probe = await self.load.probe()
            await self._decided(probe, deadline)
        except (TimeoutError, AssertionError, OSError, asyncpg.PostgresError) as exc:
            self.say(f"chaos: not recovered: {exc}")
            return None
        return time.monotonic() - began

    async def inject(self, name: str, action: Callable[[], Awaitable[str]]) -> Fault:
        """Run one fault (`action` returns what it found the fleet doing) and time recovery."""
        fault = Fault(name, at=datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3])
        try:
            fault.detail = await action()
        except infrastructure.CommandFailedError as exc:
            fault.detail = f"could not inject: {exc}"
        # From the moment the fault is over (the process killed, the server back up).
        fault.recovery_seconds = await self._recovered(time.monotonic())
        took = "-" if fault.recovery_seconds is None else f"{fault.recovery_seconds:.1f} s"
        self.say(f"chaos: {name}: recovered in {took} ({fault.detail})")
        self.faults.append(fault)
        return fault

    # -- process faults -------------------------------------------------------------------------

    def _pid(self, name: str) -> int:
        return self.fleet.fleet.running[name].process.pid

    async def _when(self, name: str, busy: Callable[[dict[str, float]], str | None]) -> str:
        """Wait (up to 20 s) until the service's metrics show it doing work; what it was doing."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                doing = busy(await _gauges(self.fleet.url(name)))
            except (aiohttp.ClientError, TimeoutError):
                doing = None
            if doing:
                return doing
            await asyncio.sleep(0.005)
        return "idle: no work seen in 20 s"

    async def _relay_backlog(self) -> str:
        conn = await asyncpg.connect(self.fleet.stack.admin_dsn)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM orders.outbox WHERE published_at IS NULL"
                )
                if waiting:
                    return f"its relay had {waiting} event(s) to publish"
                await asyncio.sleep(0.002)
            return "idle: no event awaited its relay in 20 s"
        finally:
            await conn.close()

    async def _busy_http(self, name: str) -> str:
        def serving(g: dict[str, float]) -> str | None:
            # The scrape itself is one request in flight.
            n = g.get("http_requests_in_flight", 0) - 1
            return f"serving {n:.0f} request(s)" if n >= 1 else None

        return await self._when(name, serving)

    async def _in_consumer(self, name: str) -> str:
        def handling(g: dict[str, float]) -> str | None:
            n = g.get("consumer_messages_in_flight", 0)
            return f"its consumer held {n:.0f} delivery(ies)" if n >= 1 else None

        return await self._when(name, handling)

    async def _mid_send(self) -> str:
        holding = self.hold.arm()
        try:
            await asyncio.wait_for(holding.wait(), 30)
        except TimeoutError:
            self.hold.release()
            return "idle: no e-mail sent in 30 s"
        return "an e-mail half sent (its data received, not yet acknowledged)"

    async def _auth_logins(self, stop: asyncio.Event) -> None:
        """Logins in the background, so auth has requests in hand when it is killed."""
        form = {"grant_type": "password", "username": "admin@example.com",
                "password": "admin-password-change-me"}  # fmt: skip
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while not stop.is_set():
                try:
                    async with session.post(f"{self.fleet.url('auth')}/v1/auth/token", data=form):
                        pass
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(0.05)

    async def kill_while_working(self, name: str) -> Fault:
        async def action() -> str:
            stop = asyncio.Event()
            logins = asyncio.create_task(self._auth_logins(stop)) if name == "auth" else None
            try:
                if name == "orders":
                    doing = await self._relay_backlog()
                elif name == "catalog":
                    doing = await self._in_consumer(name)
                elif name == "worker":
                    doing = await self._mid_send()
                else:
                    doing = await self._busy_http(name)
                os.kill(self._pid(name), signal.SIGKILL)
            finally:
                stop.set()
                if name == "worker":
                    self.hold.release()
                if logins is not None:
                    await logins
            return f"killed while {doing}" if not doing.startswith("idle") else doing

        return await self.inject(f"kill -9 {name}", action)

    async def terminate(self, name: str) -> Fault:
        async def action() -> str:
            doing = await self._busy_http(name) if name == "gateway" else "under load"
            os.kill(self._pid(name), signal.SIGTERM)
            return f"SIGTERM while {doing}"

        return await self.inject(f"SIGTERM {name}", action)

    # -- infrastructure faults ------------------------------------------------------------------

    async def drop_broker_connections(self) -> Fault:
        async def action() -> str:
            closed = await infrastructure.drop_broker_connections(self.fleet.stack.amqp_namespace)
            return f"{closed} connection(s) closed by the broker"

        return await self.inject("broker connections dropped", action)

    async def rabbitmq_down(self, seconds: float) -> Fault:
        async def action() -> str:
            await infrastructure.stop_and_start_rabbitmq(seconds)
            return f"RabbitMQ stopped for {seconds:.0f} s"

        return await self.inject("RabbitMQ stopped and started", action)

    async def postgres_restart(self) -> Fault:
        async def action() -> str:
            await infrastructure.restart_postgres()
            return "fast restart: connections cut, open transactions rolled back"

        return await self.inject("PostgreSQL restarted", action)

    async def redis_restart(self) -> Fault:
        async def action() -> str:
            await infrastructure.restart_redis()
            return "every key lost"

        return await self.inject("Redis restarted", action)


async def _subscribe(fleet: BenchFleet, receiver: WebhookReceiver) -> dict[str, list[int]]:
    """Each customer subscribes to its confirmed orders; every third one twice."""
    subscriptions: dict[str, list[int]] = collections.defaultdict(list)
    n = 0
    async with aiohttp.ClientSession() as session:
        for i, token in enumerate(fleet.customers):
            for _ in range(2 if i % 3 == 0 else 1):
                body = {"url": f"{receiver.url}/hook/{n}", "events": ["order.confirmed.v1"]}
                async with session.post(
                    f"{fleet.gateway}/v1/webhooks/subscriptions",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    response.raise_for_status()
                subscriptions[_user_of(token)].append(n)
                n += 1
    return subscriptions


async def _stock(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT id::text, stock FROM catalog.products")
    return {r["id"]: r["stock"] for r in rows}


async def _settle(conn: asyncpg.Connection, timeout: float) -> None:
    """Until no order is pending and the worker owes no e-mail or webhook."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = await conn.fetchval(
            "SELECT (SELECT count(*) FROM orders.orders WHERE status = 'pending')"
            " + (SELECT count(*) FROM worker.notifications WHERE status = 'pending')"
            " + (SELECT count(*) FROM worker.webhook_deliveries WHERE status = 'pending')"
            " + (SELECT count(*) FROM orders.outbox WHERE published_at IS NULL)"
            " + (SELECT count(*) FROM catalog.outbox WHERE published_at IS NULL)"
        )
        if not busy:
            return
        await asyncio.sleep(0.5)


async def _trail(conn: asyncpg.Connection, order_id: str) -> str:
    """Where an order got to in each service: its row, catalog's reservations, the events."""
    order = await conn.fetchrow(
        "SELECT status, reason, to_char(created_at, 'HH24:MI:SS.MS') AS created,"
        " to_char(updated_at, 'HH24:MI:SS.MS') AS updated FROM orders.orders WHERE id = $1::uuid",
        order_id,
    )
    reservations = await conn.fetch(
        "SELECT status FROM catalog.reservations WHERE order_id = $1::uuid", order_id
    )
    events = await conn.fetch(
        "SELECT 'orders' AS source, event_type, published_at IS NOT NULL AS published, created_at"
        " FROM orders.outbox WHERE subject = $1 UNION ALL"
        " SELECT 'catalog', event_type, published_at IS NOT NULL, created_at"
        " FROM catalog.outbox WHERE subject = $1 ORDER BY created_at",
        order_id,
    )
    row = dict(order) if order is not None else "no row"
    published = [f"{e['source']}:{e['event_type']}{'' if e['published'] else '(unpublished)'}"
                 for e in events]  # fmt: skip
    return f"order {row}, reservations {[r['status'] for r in reservations]}, events {published}"


async def _check(
    fleet: BenchFleet,
    report: LoadReport,
    stock_before: dict[str, int],
    subscriptions: dict[str, list[int]],
    receiver: WebhookReceiver,
) -> Checks:
    checks = Checks(orders_sent=len(report.orders))
    accepted = report.accepted
    checks.accepted = len(accepted)
    checks.client_failures = len(report.failures)
    checks.client_retries = sum(j.retried for j in report.journeys)
    checks.server_errors = sum(s == 500 for j in report.journeys for s in j.statuses)
    conn = await asyncpg.connect(fleet.stack.admin_dsn)
    try:
        await _settle(conn, timeout=180)
        orders = {
            r["id"]: (r["status"], r["user_id"])
            for r in await conn.fetch("SELECT id::text, status, user_id::text FROM orders.orders")
        }
        items = await conn.fetch(
            "SELECT i.product_id::text AS product, sum(i.quantity) AS quantity"
            " FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id"
            " WHERE o.status = 'confirmed' GROUP BY i.product_id"
        )
        stock_after = await _stock(conn)
        known = set(accepted.values())
        state = {i: orders.get(i, ("missing", ""))[0] for i in known}
        checks.lost = sorted(i for i in known if state[i] not in ("confirmed", "rejected"))
        checks.lost_states = dict(collections.Counter(state[i] for i in checks.lost))
        seen = {j.order_id: j.statuses for j in report.orders if j.order_id is not None}
        checks.lost_examples = [
            f"{i} ({state[i]}): client saw {seen[i]}; {await _trail(conn, i)}; "
            f"logged: {_logged(fleet, i)}"
            for i in checks.lost[:5]
        ]
    finally:
        await conn.close()
    checks.duplicated = sorted(set(orders) - known)
    checks.confirmed = sum(1 for s, _ in orders.values() if s == "confirmed")
    checks.rejected = sum(1 for s, _ in orders.values() if s == "rejected")
    taken = {r["product"]: int(r["quantity"]) for r in items}
    for product, before in stock_before.items():
        difference = (before - stock_after.get(product, before)) - taken.get(product, 0)
        if difference:
            checks.stock_mismatches[product] = difference

    checks.crashes = _crashes(fleet)
    _check_mail(checks, fleet, orders)
    _check_webhooks(checks, receiver, subscriptions, orders)
    settings = BrokerSettings(
        _env_file=None,
        amqp_url=fleet.stack.amqp_url,
        amqp_exchange=f"{fleet.stack.amqp_namespace}fleet.events",
        amqp_queue_prefix=fleet.stack.amqp_namespace,
    )
    for service in CONSUMERS:
        checks.dead_letters[service] = len(await dlq.list_dead_letters(settings, service))
    return checks


def _logged(fleet: BenchFleet, needle: str, limit: int = 8) -> list[str]:
    """The services' log lines that name `needle` (from the tails the supervisor keeps)."""
    return [
        f"{service}: {line}"
        for service in fleet.fleet.running
        for line in fleet.fleet.tail(service).splitlines()
        if needle in line
    ][:limit]


def _crashes(fleet: BenchFleet) -> list[str]:
    found = []
    for service in fleet.fleet.running:
        for line in fleet.fleet.tail(service).splitlines():
            if '"unhandled_error"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            last = (str(entry.get("exception", "")).strip().splitlines() or [""])[-1]
            found.append(f"{service} {entry.get('path')}: {last[:200]}")
    return found


def _check_mail(checks: Checks, fleet: BenchFleet, orders: dict[str, tuple[str, str]]) -> None:
    """One e-mail (one Message-ID) per decided order."""
    mails: dict[str, list[str]] = collections.defaultdict(list)
    for path in fleet.stack.mail_dir.glob("*.eml"):
        message = message_from_bytes(path.read_bytes())
        match = ORDER_IN_SUBJECT.search(str(message["Subject"]))
        if match:
            mails[match.group(1)].append(str(message["Message-ID"]))
    for order_id, (status, _) in orders.items():
        if status not in ("confirmed", "rejected"):
            continue
        ids = mails.get(order_id, [])
        if not ids:
            checks.mail_missing.append(order_id)
        elif len(set(ids)) > 1:
            checks.mail_duplicated.append(order_id)
        checks.mail_resent += len(ids) - len(set(ids))


def _check_webhooks(
    checks: Checks,
    receiver: WebhookReceiver,
    subscriptions: dict[str, list[int]],
    orders: dict[str, tuple[str, str]],
) -> None:
    """One webhook (one webhook-id) per confirmed order and subscription of its customer."""
    deliveries: dict[tuple[int, str], list[str]] = collections.defaultdict(list)
    for n, received in receiver.received.items():
        for webhook_id, body in received:
            deliveries[(n, str(body.get("data", {}).get("order_id")))].append(webhook_id)
    for order_id, (status, user_id) in orders.items():
        if status != "confirmed":
            continue
        for n in subscriptions.get(user_id, []):
            ids = deliveries.get((n, order_id), [])
            if not ids:
                checks.webhooks_missing.append(f"{order_id} -> /hook/{n}")
            elif len(set(ids)) > 1:
                checks.webhooks_duplicated.append(f"{order_id} -> /hook/{n}")
            checks.webhooks_redelivered += len(ids) - len(set(ids))


async def run(
    *,
    orders_per_second: float,
    min_orders: int,
    rabbitmq_down_seconds: float = 5.0,
    say: Callable[[str], None] = print,
) -> ChaosReport:
    began = time.monotonic()
    hold = MailHold()
    receiver = await WebhookReceiver().start()
    try:
        async with running_fleet(
            customers=12,
            products=10,
            supervise=True,
            settings=CHAOS_SETTINGS,
            screen_mail=hold.screen,
            name="chaos",
        ) as fleet:
            subscriptions = await _subscribe(fleet, receiver)
            conn = await asyncpg.connect(fleet.stack.admin_dsn)
            try:
                stock_before = await _stock(conn)
            finally:
                await conn.close()
            load = SteadyLoad(
                fleet.gateway,
                tokens=fleet.customers,
                products=fleet.products,
                orders_per_second=orders_per_second,
                retry_failures=True,
            )
            stop = asyncio.Event()
            running = asyncio.create_task(load.run(stop))
            chaos = Chaos(fleet, load, hold, say)
            try:
                await load.wait_answered(int(orders_per_second * 2), 60)
                say(f"chaos: {orders_per_second:g} orders/s under way; faults begin")
                for name in ROLL_ORDER:
                    await chaos.kill_while_working(name)
                for name in ROLL_ORDER:
                    await chaos.terminate(name)
                await chaos.drop_broker_connections()
                await chaos.rabbitmq_down(rabbitmq_down_seconds)
                await chaos.postgres_restart()
                await chaos.redis_restart()
                remaining = min_orders - len([j for j in load.journeys if j.kind == "order"])
                if remaining > 0:
                    say(f"chaos: faults done; {remaining} more orders to reach {min_orders}")
                    await asyncio.sleep(remaining / orders_per_second)
            finally:
                stop.set()
                report = await running
                await infrastructure.ensure_services()
            say("chaos: load stopped; waiting for every order, e-mail and webhook to settle")
            checks = await _check(fleet, report, stock_before, subscriptions, receiver)
            return ChaosReport(chaos.faults, checks, report.summary(), time.monotonic() - began)
    finally:
        await receiver.stop()
