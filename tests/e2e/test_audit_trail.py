"""The audit trail of a scripted journey, read back by an admin through the gateway: a user
registers, fails a login, logs in, refreshes, logs out, subscribes a webhook and deletes it; the
admin creates and updates a product. `GET /v1/admin/audit` returns exactly that trail (merged from
auth, catalog and worker), newest first, filtered by actor, action and time, in cursor pages,
with the client address and each request's id, and with none of the secrets the journey used."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from e2e_support import Receiver, admin_token, bearer, unique_email

from fleetctl.testing import assert_problem

pytestmark = pytest.mark.e2e

AUDIT = "/v1/admin/audit"


def _as(request_id: str, token: str | None = None) -> dict[str, str]:
    return {"X-Request-ID": request_id, **(bearer(token) if token else {})}


async def _trail(gateway: httpx.AsyncClient, admin: str, **filters: Any) -> list[dict[str, Any]]:
    """Every record the filters select, page after page."""
    items: list[dict[str, Any]] = []
    params = {name: str(value) for name, value in filters.items()}
    while True:
        page = await gateway.get(AUDIT, params=params, headers=bearer(admin))
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        if page.json()["next_cursor"] is None:
            return items
        params["cursor"] = page.json()["next_cursor"]


async def test_an_admin_reads_back_exactly_the_journeys_trail_with_no_secret_in_it(
    gateway: httpx.AsyncClient,
) -> None:
    run = uuid.uuid4().hex[:8]
    started = datetime.now(UTC)
    email, password, wrong = unique_email(), f"pw-{uuid.uuid4().hex}", f"wrong-{uuid.uuid4().hex}"
    admin = await admin_token(gateway)
    admin_id = (await gateway.get("/v1/auth/me", headers=bearer(admin))).json()["id"]

    registered = await gateway.post(
        "/v1/auth/register",
        json={"email": email, "password": password},
        headers=_as(f"{run}-register"),
    )
    user_id = registered.json()["id"]
    failed = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": wrong},
        headers=_as(f"{run}-login-failed"),
    )
    login = (
        await gateway.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
            headers=_as(f"{run}-login"),
        )
    ).json()
    refreshed = (
        await gateway.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": login["refresh_token"]},
            headers=_as(f"{run}-refresh"),
        )
    ).json()
    product = await gateway.post(
        "/v1/products",
        json={"sku": f"AUDIT-{run}".upper(), "name": "Audited", "price_cents": 100, "stock": 1},
        headers=_as(f"{run}-product-create", admin),
    )
    product_id = product.json()["id"]
    updated = await gateway.patch(
        f"/v1/products/{product_id}",
        json={"price_cents": 150},
        headers=_as(f"{run}-product-update", admin),
    )
    with Receiver() as receiver:
        subscribed = await gateway.post(
            "/v1/webhooks/subscriptions",
            json={"url": receiver.url, "events": ["order.confirmed.v1"]},
            headers=_as(f"{run}-subscribe", refreshed["access_token"]),
        )
    subscription_id = subscribed.json()["id"]
    unsubscribed = await gateway.delete(
        f"/v1/webhooks/subscriptions/{subscription_id}",
        headers=_as(f"{run}-unsubscribe", refreshed["access_token"]),
    )
    logout = await gateway.post(
        "/v1/auth/logout",
        json={"refresh_token": refreshed["refresh_token"]},
        headers=_as(f"{run}-logout", refreshed["access_token"]),
    )
    assert [
        r.status_code
        for r in (registered, failed, product, updated, subscribed, unsubscribed, logout)
    ] == [201, 401, 201, 200, 201, 204, 204]

    users = await _trail(gateway, admin, actor=user_id, limit=2)
    admins = await _trail(
        gateway, admin, actor=admin_id, since=started.isoformat(), action="catalog.product.update"
    )

    assert [(i["service"], i["action"], i["outcome"], i["request_id"]) for i in users] == [
        ("auth", "auth.logout", "success", f"{run}-logout"),
        ("worker", "worker.webhook_subscription.delete", "success", f"{run}-unsubscribe"),
        ("worker", "worker.webhook_subscription.create", "success", f"{run}-subscribe"),
        ("auth", "auth.token.refresh", "success", f"{run}-refresh"),
        ("auth", "auth.login", "success", f"{run}-login"),
        ("auth", "auth.login", "failure", f"{run}-login-failed"),
        ("auth", "auth.register", "success", f"{run}-register"),
    ]
    assert {i["client_ip"] for i in users} == {"127.0.0.1"}
    assert [(i["action"], i["target"], i["request_id"]) for i in admins] == [
        ("catalog.product.update", product_id, f"{run}-product-update")
    ]
    created = await _trail(gateway, admin, actor=admin_id, action="catalog.product.create")
    assert [i["request_id"] for i in created if i["target"] == product_id] == [
        f"{run}-product-create"
    ]
    secrets = [
        password,
        wrong,
        login["access_token"],
        login["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        subscribed.json()["secret"],
        admin,
    ]
    stored = str(users + admins + created)
    assert [s for s in secrets if s in stored] == []


async def test_the_trail_is_for_admins_only_and_bad_filters_are_problems(
    gateway: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await gateway.post("/v1/auth/register", json={"email": email, "password": "pass-word-1"})
    user = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": "pass-word-1"},
    )
    admin = await admin_token(gateway)

    anonymous = await gateway.get(AUDIT)
    customer = await gateway.get(AUDIT, headers=bearer(user.json()["access_token"]))
    empty_window = await gateway.get(
        AUDIT,
        params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=bearer(admin),
    )
    bad_cursor = await gateway.get(AUDIT, params={"cursor": "nope"}, headers=bearer(admin))

    assert_problem(anonymous, 401)
    assert_problem(customer, 403)
    assert_problem(empty_window, 422)
    assert_problem(bad_cursor, 422)
