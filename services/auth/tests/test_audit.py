"""Auth's audit trail: every registration, login (and failed one), refresh, reuse detection,
logout and key rotation is recorded in `auth.audit_log` with who, what, when, the client address
the gateway forwarded and the request id, in the action's own transaction, with no password,
token or hash in it; admins read it at `GET /v1/admin/audit`, nobody else."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from auth import service
from auth.keyfiles import generate_key
from auth.models import audit
from chassis.db import UnitOfWork, create_engine
from fleetctl.bootstrap import run_service_command

pytestmark = pytest.mark.integration

AUDIT = audit.table
CLIENT_IP = "203.0.113.7"
Register = Callable[..., Awaitable[Any]]


def _from(request_id: str) -> dict[str, str]:
    """Headers as the gateway sends them: the one client address it resolved, the request id."""
    return {"X-Forwarded-For": CLIENT_IP, "X-Request-ID": request_id}


async def _rows(app: FastAPI, *conditions: sa.ColumnElement[bool]) -> list[sa.Row[Any]]:
    async with app.state.engine.connect() as conn:
        statement = sa.select(AUDIT).where(*conditions).order_by(AUDIT.c.created_at, AUDIT.c.id)
        return list(await conn.execute(statement))


async def _token(client: httpx.AsyncClient, request_id: str, **form: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data=form, headers=_from(request_id))


def _admin_header(app: FastAPI) -> dict[str, str]:
    token = app.state.issuer.access_token(
        subject=str(uuid.uuid4()), roles=["admin"], now=datetime.now(UTC)
    )
    return {"Authorization": f"Bearer {token}"}


async def test_a_users_journey_is_recorded_with_client_ip_request_id_and_no_secret(
    app: FastAPI, client: httpx.AsyncClient, new_email: Callable[[], str]
) -> None:
    email, password = new_email(), "journey horse battery"
    registered = await client.post(
        "/v1/auth/register", json={"email": email, "password": password}, headers=_from("r-reg")
    )
    user_id = registered.json()["id"]
    wrong = await _token(
        client, "r-fail", grant_type="password", username=email, password="not it at all"
    )
    first = (
        await _token(client, "r-login", grant_type="password", username=email, password=password)
    ).json()
    second = (
        await _token(
            client, "r-refresh", grant_type="refresh_token", refresh_token=first["refresh_token"]
        )
    ).json()
    replay = await _token(
        client, "r-replay", grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    logout = await client.post(
        "/v1/auth/logout",
        json={"refresh_token": second["refresh_token"]},
        headers={**_from("r-logout"), "Authorization": f"Bearer {second['access_token']}"},
    )
    assert (wrong.status_code, replay.status_code, logout.status_code) == (401, 401, 204)

    rows = await _rows(app, AUDIT.c.actor == user_id)

    assert [(r.action, r.outcome, r.request_id) for r in rows] == [
        ("auth.register", "success", "r-reg"),
        ("auth.login", "failure", "r-fail"),
        ("auth.login", "success", "r-login"),
        ("auth.token.refresh", "success", "r-refresh"),
        ("auth.token.reuse_detected", "failure", "r-replay"),
        ("auth.logout", "success", "r-logout"),
    ]
    assert {(r.target, r.client_ip) for r in rows} == {(user_id, CLIENT_IP)}
    assert rows[0].details == {"email": email}
    assert rows[1].details == {"reason": "wrong_password"}
    async with app.state.engine.connect() as conn:
        password_hash = await conn.scalar(
            sa.text("SELECT password_hash FROM auth.users WHERE id = :id"), {"id": user_id}
        )
    secrets = [password, "not it at all", password_hash, *first.values(), *second.values()]
    stored = " ".join(str(tuple(row)) for row in rows)
    assert [s for s in secrets if isinstance(s, str) and s in stored] == []


async def test_an_unknown_users_failed_login_is_anonymous_and_keeps_no_attempted_name(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # A password typed into the username field must not end up in the trail.
    typed = f"my-secret-{uuid.uuid4().hex}"

    refused = await _token(client, "r-unknown", grant_type="password", username=typed, password="x")

    assert refused.status_code == 401
    (row,) = await _rows(app, AUDIT.c.request_id == "r-unknown")
    assert (row.actor, row.action, row.outcome, row.target) == (
        "anonymous",
        "auth.login",
        "failure",
        None,
    )
    assert row.details == {"reason": "unknown_user"}
    assert typed not in str(tuple(row))


async def test_a_registration_that_rolls_back_leaves_neither_account_nor_record(
    app: FastAPI, new_email: Callable[[], str]
) -> None:
    class CommitFails(UnitOfWork):
        async def commit(self) -> None:
            raise RuntimeError("the commit is lost")

    email = new_email()

    with pytest.raises(RuntimeError, match="commit is lost"):
        await service.register(
            uow=CommitFails(app.state.sessions),
            passwords=app.state.passwords,
            email=email,
            password="correct horse battery",
        )

    async with app.state.engine.connect() as conn:
        users = await conn.scalar(
            sa.text("SELECT count(*) FROM auth.users WHERE email = :e"), {"e": email}
        )
    assert users == 0
    assert await _rows(app, AUDIT.c.details["email"].astext == email) == []


async def test_a_refused_refresh_token_is_recorded_as_an_anonymous_failure(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    refused = await _token(
        client, "r-bogus", grant_type="refresh_token", refresh_token="bogus-refresh-token"
    )

    assert refused.status_code == 401
    (row,) = await _rows(app, AUDIT.c.request_id == "r-bogus")
    assert (row.actor, row.action, row.outcome) == ("anonymous", "auth.token.refresh", "failure")
    assert "bogus-refresh-token" not in str(tuple(row))


async def test_a_key_rotation_is_recorded_as_the_operators(
    fleet_database: Any, tmp_path: Path
) -> None:
    directory = tmp_path / "keys"
    generate_key(directory, "k20200101T000000Z")

    run_service_command(
        fleet_database.stack.with_(extra_env={"JWT_KEYS_DIR": str(directory)}),
        "auth",
        "keys",
        "rotate",
    )

    (kid,) = {path.stem for path in directory.iterdir()} - {"k20200101T000000Z"}
    engine = create_engine(fleet_database.url_for("auth"))
    try:
        async with engine.connect() as conn:
            rows = list(await conn.execute(sa.select(AUDIT).where(AUDIT.c.target == kid)))
    finally:
        await engine.dispose()
    assert [(r.actor, r.action, r.outcome) for r in rows] == [
        ("operator", "auth.signing_key.rotate", "success")
    ]


async def test_the_trail_is_read_by_admins_only_newest_first_with_filters_and_pages(
    app: FastAPI, client: httpx.AsyncClient, register: Register
) -> None:
    account = await register()
    admin = _admin_header(app)
    user_token = app.state.issuer.access_token(subject=account.id, roles=[], now=datetime.now(UTC))
    for attempt in range(3):
        await _token(
            client,
            f"r-page-{attempt}",
            grant_type="password",
            username=account.email,
            password="wrong",
        )

    anonymous = await client.get("/v1/admin/audit")
    not_admin = await client.get(
        "/v1/admin/audit", headers={"Authorization": f"Bearer {user_token}"}
    )
    first = await client.get(
        "/v1/admin/audit",
        params={"actor": account.id, "action": "auth.login", "limit": 2},
        headers=admin,
    )
    rest = await client.get(
        "/v1/admin/audit",
        params={"actor": account.id, "action": "auth.login", "cursor": first.json()["next_cursor"]},
        headers=admin,
    )

    assert (anonymous.status_code, not_admin.status_code) == (401, 403)
    assert [i["request_id"] for i in first.json()["items"]] == ["r-page-2", "r-page-1"]
    assert [i["request_id"] for i in rest.json()["items"]] == ["r-page-0"]
    assert rest.json()["next_cursor"] is None
    item = first.json()["items"][0]
    assert (item["service"], item["actor"], item["outcome"]) == ("auth", account.id, "failure")


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"since": "2026-01-01T00:00:00"},  # no time zone
        {"action": "DROP TABLE"},
        {"cursor": "not-a-cursor"},
        {"limit": "0"},
        {"actr": "typo"},
    ],
    ids=["empty-window", "naive-time", "bad-action", "bad-cursor", "zero-limit", "unknown-filter"],
)
async def test_bad_filters_are_422_problems(
    app: FastAPI, client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/v1/admin/audit", params=params, headers=_admin_header(app))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_time_filters_bound_the_trail(
    app: FastAPI, client: httpx.AsyncClient, register: Register
) -> None:
    account = await register()
    rows = await _rows(app, AUDIT.c.actor == account.id)
    at = rows[0].created_at
    admin = _admin_header(app)

    def window(**bounds: datetime) -> dict[str, str]:
        return {"actor": account.id, **{k: v.isoformat() for k, v in bounds.items()}}

    inside = await client.get(
        "/v1/admin/audit", params=window(since=at, until=at + timedelta(seconds=1)), headers=admin
    )
    before = await client.get("/v1/admin/audit", params=window(until=at), headers=admin)
    after = await client.get(
        "/v1/admin/audit", params=window(since=at + timedelta(microseconds=1)), headers=admin
    )

    assert [i["action"] for i in inside.json()["items"]] == ["auth.register"]
    assert before.json()["items"] == after.json()["items"] == []
