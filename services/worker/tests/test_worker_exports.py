"""Exports through the worker's API and its command queue: the file in the bucket behind a
presigned URL, the requester's mail, and the command's guarantees (once, whatever the
redeliveries, crashes and poison).

The orders come from a stand-in for the orders service's internal read (`worker.sources` is
proven against the real one in test_worker_sources.py and end to end in tests/e2e)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest
from worker_sinks import Mailbox, free_port
from worker_test_support import Bus, WorkerDb, sample

from chassis.messaging.dlq import list_dead_letters
from chassis.messaging.topology import Names
from chassis.storage import ObjectStore, object_store
from contracts.commands import ExportFormat, GenerateExportV1
from contracts.events import new_event
from fleetctl.s3_emulator import EmulatorProcess, S3Endpoint, unique_bucket
from fleetctl.testing import assert_problem, eventually
from worker import main
from worker.exports.encoding import Tally, encode
from worker.settings import WorkerSettings
from worker.sources import OrderLine, OrderRecord, ReservationRecord, SourceRefusedError

Customer = Any  # conftest's Customer
StartWorker = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

EXPORTS = "/v1/orders/exports"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def orders_of(user_id: uuid.UUID, count: int) -> list[OrderRecord]:
    return [
        OrderRecord(
            id=uuid.uuid4(),
            user_id=user_id,
            status="confirmed",
            total_cents=250 * (n + 1),
            currency="EUR",
            reason=None,
            created_at=T0 + timedelta(minutes=n),
            updated_at=T0 + timedelta(minutes=n),
            items=[OrderLine(product_id=uuid.uuid4(), quantity=n + 1, unit_price_cents=250)],
        )
        for n in range(count)
    ]


class StandInOrders:
    """The orders service's internal read for exports: `orders` in order; it can stop half-way
    and wait (a replica killed mid-export) until released. The reconciliation (which the
    worker's schedule starts too) reads no orders from it."""

    def __init__(self, orders: list[OrderRecord], *, hold_after: int | None = None) -> None:
        self._orders = orders
        self.hold_after = hold_after
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[dict[str, Any]] = []

    def orders(self, **query: Any) -> AsyncIterator[OrderRecord]:
        if query.get("order_by") == "id":  # the reconciliation's read, not an export's
            return self._none()
        self.calls.append(query)
        return self._stream()

    async def _none(self) -> AsyncIterator[OrderRecord]:
        return
        yield

    async def _stream(self) -> AsyncIterator[OrderRecord]:
        for n, order in enumerate(self._orders):
            if n == self.hold_after:
                self.held.set()
                await self.release.wait()
            yield order


class NoReservations:
    def reservations(self, **_: Any) -> AsyncIterator[ReservationRecord]:
        return self._none()

    async def _none(self) -> AsyncIterator[ReservationRecord]:
        return
        yield


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Callable[[StandInOrders], None]:
    """Make the worker started next read its orders from a stand-in."""

    def use(orders: StandInOrders) -> None:
        @asynccontextmanager
        async def sources(_: WorkerSettings) -> AsyncIterator[tuple[Any, Any]]:
            yield orders, NoReservations()

        monkeypatch.setattr(main, "sources", sources)

    return use


async def _ready(http: httpx.AsyncClient, someone: Customer, export_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def ready() -> bool:
        response = await http.get(f"{EXPORTS}/{export_id}", headers=someone.headers)
        seen.update(response.json())
        return bool(seen["status"] == "ready")

    await eventually(ready, timeout=20)
    return seen


def _export_mails(mailbox: Mailbox, someone: Customer) -> list[Any]:
    """The mails telling `someone` an export is ready (they are welcomed by mail too)."""
    return [m for m in mailbox.to(someone.email) if str(m["Subject"]).startswith("Your export")]


async def _registered(bus: Bus, someone: Customer, db: WorkerDb) -> None:
    event_id = await bus.register(someone)
    await eventually(lambda: db.handled(event_id))


async def test_an_export_becomes_ready_with_a_download_url_and_its_requester_is_mailed(
    start_worker: StartWorker,
    *,
    stand_in: Callable[[StandInOrders], None],
    customer: Customer,
    bus: Bus,
    db: WorkerDb,
    mailbox: Mailbox,
) -> None:
    orders = orders_of(customer.id, 3)
    source = StandInOrders(orders)
    stand_in(source)
    async with start_worker() as http:
        await _registered(bus, customer, db)
        asked = await http.post(EXPORTS, json={"format": "csv"}, headers=customer.headers)
        assert asked.status_code == 202, asked.text
        assert asked.json()["status"] == "pending"
        assert asked.headers["location"] == f"{EXPORTS}/{asked.json()['id']}"

        export = await _ready(http, customer, asked.json()["id"])
        async with httpx.AsyncClient() as anyone:
            download = await anyone.get(export["download_url"])

    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["order_id"] for row in rows] == [str(order.id) for order in orders]
    assert (export["order_count"], export["size_bytes"]) == (3, len(download.content))
    assert source.calls == [
        {
            "user_id": customer.id,
            "created_since": None,
            "created_until": None,
            "order_by": "created",
        }
    ]
    await eventually(lambda: len(_export_mails(mailbox, customer)) == 1)
    [mail] = _export_mails(mailbox, customer)
    assert mail["Subject"] == f"Your export {export['id']} is ready"


async def test_json_lines_nest_each_orders_lines(
    start_worker: StartWorker, stand_in: Callable[[StandInOrders], None], customer: Customer
) -> None:
    orders = orders_of(customer.id, 2)
    stand_in(StandInOrders(orders))
    async with start_worker() as http:
        asked = await http.post(EXPORTS, json={"format": "jsonl"}, headers=customer.headers)
        export = await _ready(http, customer, asked.json()["id"])
        async with httpx.AsyncClient() as anyone:
            download = await anyone.get(export["download_url"])

    lines = [json.loads(line) for line in download.text.splitlines()]
    assert [line["order_id"] for line in lines] == [str(order.id) for order in orders]
    assert lines[1]["items"] == [
        {"product_id": str(orders[1].items[0].product_id), "quantity": 2, "unit_price_cents": 250}
    ]


async def test_another_users_export_is_not_found(
    start_worker: StartWorker,
    stand_in: Callable[[StandInOrders], None],
    new_customer: Callable[..., Customer],
) -> None:
    owner, other = new_customer(), new_customer()
    stand_in(StandInOrders([]))
    async with start_worker() as http:
        asked = await http.post(EXPORTS, json={}, headers=owner.headers)
        await _ready(http, owner, asked.json()["id"])
        response = await http.get(f"{EXPORTS}/{asked.json()['id']}", headers=other.headers)

    assert_problem(response, 404, "export-not-found")


async def test_only_admins_export_every_customers_orders_in_a_time_range(
    start_worker: StartWorker,
    stand_in: Callable[[StandInOrders], None],
    new_customer: Callable[..., Customer],
) -> None:
    customer, admin = new_customer(), new_customer(roles=("admin",))
    source = StandInOrders(orders_of(customer.id, 1))
    stand_in(source)
    window = {"created_since": "2026-12-01T00:00:00Z", "created_until": "2026-12-02T00:00:00Z"}
    async with start_worker() as http:
        refused = await http.post(EXPORTS, json={"scope": "all"}, headers=customer.headers)
        asked = await http.post(EXPORTS, json={"scope": "all", **window}, headers=admin.headers)
        export = await _ready(http, admin, asked.json()["id"])

    assert_problem(refused, 403, "export-scope-forbidden")
    assert export["scope"] == "all"
    assert [call for call in source.calls if call["user_id"] is None] == [
        {
            "user_id": None,
            "created_since": datetime(2026, 12, 1, tzinfo=UTC),
            "created_until": datetime(2026, 12, 2, tzinfo=UTC),
            "order_by": "created",
        }
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"format": "xlsx"},
        {"scope": "everyone"},
        {"created_since": "2026-12-02T00:00:00Z", "created_until": "2026-12-01T00:00:00Z"},
        {"created_since": "2026-12-02T00:00:00"},  # no time zone: ambiguous
        {"format": "csv", "columns": ["id"]},
    ],
)
async def test_an_unreadable_export_request_is_a_422_problem(
    client: httpx.AsyncClient, customer: Customer, body: dict[str, Any]
) -> None:
    response = await client.post(EXPORTS, json=body, headers=customer.headers)

    assert_problem(response, 422)


async def _send_command(
    settings: WorkerSettings, body: bytes, *, message_id: str | None = None
) -> None:
    """Straight into the worker's command queue, as the broker redelivers a command."""
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=message_id),
            routing_key=Names.commands_of(settings, "worker").queue,
        )
    finally:
        await connection.close()


def _outcomes(outcome: str) -> float:
    labels = {"event_type": GenerateExportV1.event_type, "outcome": outcome}
    return sample("events_consumed_total", labels)


async def test_a_redelivered_export_command_changes_nothing(
    start_worker: StartWorker,
    *,
    make_settings: Callable[..., WorkerSettings],
    stand_in: Callable[[StandInOrders], None],
    customer: Customer,
    bus: Bus,
    db: WorkerDb,
    mailbox: Mailbox,
) -> None:
    source = StandInOrders(orders_of(customer.id, 2))
    stand_in(source)
    async with start_worker() as http:
        await _registered(bus, customer, db)
        asked = await http.post(EXPORTS, json={}, headers=customer.headers)
        first = await _ready(http, customer, asked.json()["id"])
        [command] = await db.outbox_bodies(asked.json()["id"])
        duplicates = _outcomes("duplicate")

        await _send_command(make_settings(), command.encode())

        await eventually(lambda: _outcomes("duplicate") == duplicates + 1)
        again = (await http.get(f"{EXPORTS}/{first['id']}", headers=customer.headers)).json()

    assert len(source.calls) == 1  # the file was not written again
    assert again["finished_at"] == first["finished_at"]
    assert len(_export_mails(mailbox, customer)) == 1


async def test_poison_export_commands_are_dead_lettered(
    client: httpx.AsyncClient, make_settings: Callable[..., WorkerSettings]
) -> None:
    settings = make_settings()
    unknown = GenerateExportV1(
        export_id=uuid.uuid4(), requested_by=uuid.uuid4(), format=ExportFormat.CSV
    )
    of_no_export = new_event(unknown, source="/fleet/worker")
    malformed = new_event(unknown, source="/fleet/worker").model_copy(
        update={"data": {"export_id": "not-a-uuid"}}
    )
    for command in (of_no_export, malformed):
        await _send_command(settings, command.to_json(), message_id=str(command.id))
    ours = {str(of_no_export.id), str(malformed.id)}
    letters: list[Any] = []

    async def both_dead_lettered() -> bool:
        letters[:] = [
            letter
            for letter in await list_dead_letters(settings, "worker")
            if letter.message_id in ours
        ]
        return len(letters) == 2

    await eventually(both_dead_lettered)
    reasons = sorted(letter.error.split(":")[0] for letter in letters)
    assert reasons == ["InvalidEventError", "PermanentError"]
    assert {letter.queue for letter in letters} == {Names.commands_of(settings, "worker").queue}


async def test_an_export_whose_replica_dies_mid_file_is_written_once_by_another(
    start_worker: StartWorker,
    *,
    stand_in: Callable[[StandInOrders], None],
    customer: Customer,
    bus: Bus,
    db: WorkerDb,
    mailbox: Mailbox,
) -> None:
    orders = orders_of(customer.id, 50)
    dying = StandInOrders(orders, hold_after=20)
    stand_in(dying)
    async with start_worker(shutdown_grace_seconds=0.1) as first:
        await _registered(bus, customer, db)
        asked = await first.post(EXPORTS, json={}, headers=customer.headers)
        await asyncio.wait_for(dying.held.wait(), 20)
        # The replica goes away holding the command, unacknowledged, half-way through the file.
    survivor = StandInOrders(orders)
    stand_in(survivor)
    async with start_worker() as second:
        export = await _ready(second, customer, asked.json()["id"])
        async with httpx.AsyncClient() as anyone:
            download = await anyone.get(export["download_url"])
    dying.release.set()

    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["order_id"] for row in rows] == [str(order.id) for order in orders]
    assert len(survivor.calls) == 1
    await eventually(lambda: len(_export_mails(mailbox, customer)) == 1)
    assert await db.mails_about_export(export["id"]) == 1


class RefusingOrders(StandInOrders):
    """Orders refusing the worker's read (a contract or configuration fault)."""

    async def _stream(self) -> AsyncIterator[OrderRecord]:
        for order in self._orders:  # what came before the refusal
            yield order
        raise SourceRefusedError("orders", "403 caller-not-allowed")


async def test_an_export_whose_orders_are_refused_fails_at_once_with_the_reason(
    start_worker: StartWorker, stand_in: Callable[[StandInOrders], None], customer: Customer
) -> None:
    stand_in(RefusingOrders([]))
    async with start_worker() as http:
        asked = await http.post(EXPORTS, json={}, headers=customer.headers)
        seen: dict[str, Any] = {}

        async def failed() -> bool:
            seen.update(
                (await http.get(f"{EXPORTS}/{asked.json()['id']}", headers=customer.headers)).json()
            )
            return bool(seen["status"] == "failed")

        await eventually(failed)

    assert seen["reason"] == "orders could not be read: 403 caller-not-allowed"
    assert seen["download_url"] is None


async def _lazy_orders(count: int) -> AsyncIterator[OrderRecord]:
    """`count` orders made one at a time, as pages of the orders service arrive."""
    user_id = uuid.uuid4()
    for n in range(count):
        yield OrderRecord(
            id=uuid.uuid4(),
            user_id=user_id,
            status="confirmed",
            total_cents=1250,
            currency="EUR",
            reason=None,
            created_at=T0 + timedelta(seconds=n),
            updated_at=T0 + timedelta(seconds=n),
            items=[OrderLine(product_id=uuid.uuid4(), quantity=1, unit_price_cents=1250)],
        )


async def _peak_while_writing(store: ObjectStore, count: int) -> tuple[int, int]:
    """The most memory Python held while `count` orders were written to the bucket (above what
    it held before), and the file's size."""
    tracemalloc.start()
    try:
        tally = Tally()
        stored = await store.upload(
            f"exports/{uuid.uuid4()}.csv",
            encode(_lazy_orders(count), ExportFormat.CSV, tally),
            content_type="text/csv",
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tally.orders == count
    return peak, stored.size_bytes


async def test_an_export_of_200000_orders_takes_the_memory_of_one_of_100000(
    make_settings: Callable[..., WorkerSettings],
) -> None:
    part = 5 * 1024 * 1024
    # The emulator in a process of its own: what it keeps of the objects is not this one's.
    emulator = EmulatorProcess(port=free_port(), bucket=unique_bucket(), emit=lambda _: None)
    await emulator.start()
    try:
        endpoint = S3Endpoint(emulator.url)
        settings = make_settings(
            **endpoint.settings(emulator.bucket, create_bucket=False), s3_part_size_bytes=part
        )
        async with object_store(settings) as store:
            small_peak, small_size = await _peak_while_writing(store, 100_000)
            large_peak, large_size = await _peak_while_writing(store, 200_000)
    finally:
        await emulator.stop()

    assert small_size > 2 * part  # multipart uploads of 3 and of 5 parts
    assert large_size > 4 * part
    # Twice the orders in the same memory, a few parts' worth: nothing grows with the file.
    assert large_peak < 1.1 * small_peak, (small_peak, large_peak)
    assert large_peak < 6 * part, large_peak
