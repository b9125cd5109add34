"""The worker's jobs through the gateway, on the running fleet: a customer's export (the mail,
the file behind a presigned URL that expires), an export of 100,000 orders whose worker is
killed mid-file, and a reconciliation that reports drift injected behind catalog's back."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aioboto3
import asyncpg
import httpx
import pytest
from e2e_support import (
    RunningFleet,
    admin_token,
    bearer,
    confirmed_order,
    create_product,
    register_and_login,
)

from fleetctl.testing import assert_problem, eventually

pytestmark = pytest.mark.e2e

EXPORTS = "/v1/orders/exports"
RECONCILIATIONS = "/v1/admin/reconciliations"


async def _export_ready(
    gateway: httpx.AsyncClient, token: str, export_id: str, timeout: float = 30
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def ready() -> bool:
        response = await gateway.get(f"{EXPORTS}/{export_id}", headers=bearer(token))
        assert response.status_code == 200, response.text
        seen.update(response.json())
        assert seen["status"] != "failed", seen
        return bool(seen["status"] == "ready")

    await eventually(ready, timeout=timeout, interval=0.2)
    return seen


async def test_a_customer_exports_their_orders_is_mailed_and_downloads_until_the_link_expires(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    session = await register_and_login(gateway)
    token = session["access_token"]
    product_id = await create_product(gateway, stock=10)
    orders = [await confirmed_order(gateway, token, product_id) for _ in range(2)]

    asked = await gateway.post(EXPORTS, json={"format": "csv"}, headers=bearer(token))
    assert asked.status_code == 202, asked.text
    export = await _export_ready(gateway, token, asked.json()["id"])
    async with httpx.AsyncClient() as anyone:
        download = await anyone.get(export["download_url"])

        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert download.status_code == 200
        assert sorted(row["order_id"] for row in rows) == sorted(orders)
        assert {row["status"] for row in rows} == {"confirmed"}

        async def link_expired() -> bool:
            return (await anyone.get(export["download_url"])).status_code == 403

        await eventually(link_expired, timeout=30, interval=0.5)

    def mailed() -> bool:
        return any(
            m["To"] == session["email"] and export["id"] in str(m["Subject"])
            for m in running_fleet.mail.messages()
        )

    await eventually(mailed, timeout=20)
    someone_else = await register_and_login(gateway)
    hidden = await gateway.get(
        f"{EXPORTS}/{export['id']}", headers=bearer(someone_else["access_token"])
    )
    assert_problem(hidden, 404, "export-not-found")


@asynccontextmanager
async def _bucket(running_fleet: RunningFleet) -> AsyncIterator[Any]:
    env = running_fleet.stack.env_for("worker")
    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name=env.get("S3_REGION", "us-east-1"),
        aws_access_key_id=env.get("S3_ACCESS_KEY_ID", "fleet"),
        aws_secret_access_key=env.get("S3_SECRET_ACCESS_KEY", "fleet-secret"),
    ) as client:
        yield client, env.get("S3_BUCKET", "fleet")


LARGE_EXPORT = 100_000


async def _many_orders(running_fleet: RunningFleet, user_id: str, product_id: str) -> None:
    """`LARGE_EXPORT` orders of one customer, written straight into orders' tables (placing
    them through the API would take the whole test budget). Rejected ones: orders that never
    held stock, so they are no drift for a reconciliation of the same fleet."""
    conn = await asyncpg.connect(running_fleet.stack.admin_dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE bulk ON COMMIT DROP AS"
                " SELECT gen_random_uuid() AS id, n FROM generate_series(1, $1) AS n",
                LARGE_EXPORT,
            )
            await conn.execute(
                "INSERT INTO orders.orders (id, user_id, status, total_cents, currency,"
                " created_at, updated_at)"
                " SELECT id, $1::uuid, 'rejected', 1250, 'EUR',"
                " now() - make_interval(secs => n), now() - make_interval(secs => n) FROM bulk",
                user_id,
            )
            await conn.execute(
                "INSERT INTO orders.order_items (order_id, product_id, position, quantity,"
                " unit_price_cents) SELECT id, $1::uuid, 0, 1, 1250 FROM bulk",
                product_id,
            )
    finally:
        await conn.close()


async def test_an_export_of_100000_orders_is_written_once_though_its_worker_is_killed_mid_file(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    session = await register_and_login(gateway)
    token = session["access_token"]
    me = (await gateway.get("/v1/auth/me", headers=bearer(token))).json()
    await _many_orders(running_fleet, me["id"], await create_product(gateway, stock=1))

    asked = await gateway.post(EXPORTS, json={"format": "jsonl"}, headers=bearer(token))
    assert asked.status_code == 202, asked.text
    key = f"exports/{asked.json()['id']}.jsonl"
    async with _bucket(running_fleet) as (s3, bucket):

        async def writing() -> bool:
            uploads = await s3.list_multipart_uploads(Bucket=bucket, Prefix=key)
            return bool(uploads.get("Uploads"))

        # Mid-file: its first parts are uploaded, the rest still being read from orders.
        await eventually(writing, timeout=60, interval=0.05)
        os.kill(running_fleet.fleet.running["worker"].process.pid, signal.SIGKILL)
        await running_fleet.restart("worker")

        export = await _export_ready(gateway, token, asked.json()["id"], timeout=180)
        body = (await (await s3.get_object(Bucket=bucket, Key=key))["Body"].read()).decode()

    lines = body.splitlines()
    assert export["order_count"] == LARGE_EXPORT == len(lines)
    assert len({json.loads(line)["order_id"] for line in lines}) == LARGE_EXPORT
    conn = await asyncpg.connect(running_fleet.stack.admin_dsn)
    try:
        mails = await conn.fetchval(
            "SELECT count(*) FROM worker.notifications WHERE kind = 'export_ready'"
            " AND subject LIKE '%' || $1 || '%'",
            export["id"],
        )
    finally:
        await conn.close()
    assert mails == 1


async def _reservation_deleted_behind_catalogs_back(
    running_fleet: RunningFleet, order_id: str
) -> None:
    conn = await asyncpg.connect(running_fleet.stack.admin_dsn)
    try:
        deleted = await conn.execute(
            "DELETE FROM catalog.reservations WHERE order_id = $1::uuid", order_id
        )
    finally:
        await conn.close()
    assert deleted == "DELETE 1"


async def test_an_admin_sees_drift_injected_behind_catalogs_back_in_the_latest_reconciliation(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    admin = bearer(await admin_token(gateway))
    session = await register_and_login(gateway)
    order_id = await confirmed_order(
        gateway, session["access_token"], await create_product(gateway, stock=5)
    )
    await _reservation_deleted_behind_catalogs_back(running_fleet, order_id)

    customer = await gateway.post(RECONCILIATIONS, headers=bearer(session["access_token"]))
    assert customer.status_code == 403
    started = await gateway.post(RECONCILIATIONS, headers=admin)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    latest: dict[str, Any] = {}

    async def completed() -> bool:
        runs = (await gateway.get(RECONCILIATIONS, headers=admin)).json()["items"]
        latest.update(next((run for run in runs if run["id"] == run_id), {}))
        return latest.get("status") == "completed"

    await eventually(completed, timeout=60, interval=0.2)
    assert latest["mismatches_by_kind"]["missing_reservation"] >= 1
    async with httpx.AsyncClient() as anyone:
        report = (await anyone.get(latest["report_url"])).json()
        metrics = await anyone.get(f"{running_fleet.stack.url('worker')}/metrics")
    assert {"kind": "missing_reservation", "order_id": order_id} in [
        {"kind": item["kind"], "order_id": item["order_id"]} for item in report["details"]
    ]
    assert 'reconciliation_mismatches{kind="missing_reservation"}' in metrics.text
