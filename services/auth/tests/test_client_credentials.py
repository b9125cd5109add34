"""The client credentials grant: the fleet's services get short-lived tokens for their callees."""

from __future__ import annotations

import httpx
import jwt
import pytest

from chassis.settings import DEFAULT_CLIENT_SECRET
from fleetctl.testing import assert_problem

pytestmark = pytest.mark.integration


async def _grant(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"grant_type": "client_credentials", **form})


async def test_a_service_gets_a_five_minute_token_naming_it_and_its_callee(
    client: httpx.AsyncClient,
) -> None:
    response = await _grant(
        client, client_id="orders", client_secret=DEFAULT_CLIENT_SECRET, audience="catalog"
    )

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}  # no refresh token
    assert (body["token_type"], body["expires_in"]) == ("bearer", 300)
    [key] = jwt.PyJWKSet.from_dict((await client.get("/v1/auth/jwks")).json()).keys
    claims = jwt.decode(
        body["access_token"], key, algorithms=["EdDSA"], audience="catalog", issuer="fleet-auth"
    )
    assert (claims["sub"], claims["client_id"], claims["typ"]) == ("orders", "orders", "service")
    assert claims["exp"] - claims["iat"] == 300
    assert "roles" not in claims


async def test_a_service_token_is_no_users_access_token(client: httpx.AsyncClient) -> None:
    token = (
        await _grant(
            client, client_id="gateway", client_secret=DEFAULT_CLIENT_SECRET, audience="auth"
        )
    ).json()["access_token"]

    me = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert_problem(me, 401, "invalid-token")


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("orders", "not-the-secret"), ("catalog", DEFAULT_CLIENT_SECRET), ("nobody", "x")],
)
async def test_wrong_or_unknown_client_credentials_get_401_invalid_client(
    client: httpx.AsyncClient, client_id: str, secret: str
) -> None:
    response = await _grant(client, client_id=client_id, client_secret=secret, audience="catalog")

    body = assert_problem(response, 401, "invalid-client")
    assert body["error"] == "invalid_client"
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in body


async def test_a_token_for_a_service_the_client_never_calls_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await _grant(
        client, client_id="orders", client_secret=DEFAULT_CLIENT_SECRET, audience="worker"
    )

    assert assert_problem(response, 400, "invalid-target")["error"] == "invalid_target"


@pytest.mark.parametrize("callee", ["orders", "catalog"])
async def test_the_worker_gets_tokens_for_orders_and_catalog(
    client: httpx.AsyncClient, callee: str
) -> None:
    response = await _grant(
        client, client_id="worker", client_secret=DEFAULT_CLIENT_SECRET, audience=callee
    )

    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["aud"], claims["typ"]) == ("worker", callee, "service")


@pytest.mark.parametrize("callee", ["auth", "gateway", "worker"])
async def test_the_worker_gets_no_token_for_any_other_service(
    client: httpx.AsyncClient, callee: str
) -> None:
    response = await _grant(
        client, client_id="worker", client_secret=DEFAULT_CLIENT_SECRET, audience=callee
    )

    assert assert_problem(response, 400, "invalid-target")["error"] == "invalid_target"


async def test_a_client_credentials_request_without_its_fields_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    response = await _grant(client, client_id="orders", client_secret=DEFAULT_CLIENT_SECRET)

    assert assert_problem(response, 400, "invalid-request")["error"] == "invalid_request"
