"""Rate limits in Redis: per user or client IP, stricter per IP and username on the token endpoint,
with the 429 contract, and failing open when Redis is down or slow."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from fleetctl.testing import eventually
from gateway.settings import GatewaySettings

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
Bearer = Callable[..., dict[str, str]]
PROXY = {"trusted_proxies": "127.0.0.1/32"}  # the test client's address


def _limited(policy: str) -> float:
    return REGISTRY.get_sample_value("gateway_rate_limited_total", {"policy": policy}) or 0.0


def _redis_errors() -> float:
    return REGISTRY.get_sample_value("gateway_rate_limit_errors_total") or 0.0


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _assert_429(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/rate-limited")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-reset"]) >= 1


async def test_over_the_limit_is_429_with_retry_after_and_never_forwarded(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any]
) -> None:
    before = _limited("default")
    async with gateway_factory(rate_limit_default="3/minute") as gateway:
        allowed = [await gateway.get("/v1/products") for _ in range(3)]
        request_id = uuid.uuid4().hex
        refused = await gateway.get("/v1/products", headers={"X-Request-ID": request_id})
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.headers["ratelimit-remaining"] for r in allowed] == ["2", "1", "0"]
    assert all(r.headers["ratelimit-limit"] == "3" for r in allowed)
    assert all(1 <= int(r.headers["ratelimit-reset"]) <= 60 for r in allowed)
    assert "retry-after" not in allowed[0].headers
    _assert_429(refused, limit=3)
    # One request is allowed every 20 s; the next one will be in about that.
    assert 15 <= int(refused.headers["retry-after"]) <= 20
    assert request_id not in upstreams["catalog"].request_ids()
    assert _limited("default") == before + 1


async def test_budget_comes_back_over_time(gateway_factory: GatewayFactory) -> None:
    # One request a second with a burst of one: of two sent together, one is refused, and a
    # request is allowed again within the Retry-After it was given. Refused requests cost no
    # budget, so asking until one passes does not push the budget further away.
    async with gateway_factory(rate_limit_default="1/second") as gateway:
        pair = await asyncio.gather(gateway.get("/v1/products"), gateway.get("/v1/products"))
        assert sorted(r.status_code for r in pair) == [200, 429]
        retry_after = int(next(r for r in pair if r.status_code == 429).headers["retry-after"])
        assert retry_after == 1

        async def allowed() -> bool:
            return (await gateway.get("/v1/products")).status_code == 200

        await eventually(allowed, timeout=retry_after + 1, interval=0.05)


async def test_each_user_has_a_budget_of_their_own(
    gateway_factory: GatewayFactory, bearer: Bearer
) -> None:
    alice, bob = bearer(subject="alice"), bearer(subject="bob")
    async with gateway_factory(rate_limit_default="2/minute") as gateway:
        alice_codes = [(await gateway.get("/v1/orders", headers=alice)).status_code for _ in "123"]
        bob_response = await gateway.get("/v1/orders", headers=bob)
        anonymous = await gateway.get("/v1/products")
    assert alice_codes == [200, 200, 429]
    assert bob_response.status_code == 200
    assert bob_response.headers["ratelimit-remaining"] == "1"
    assert anonymous.status_code == 200


async def test_a_new_token_of_the_same_user_shares_the_budget(
    gateway_factory: GatewayFactory, bearer: Bearer
) -> None:
    async with gateway_factory(rate_limit_default="2/minute") as gateway:
        codes = [
            (await gateway.get("/v1/orders", headers=bearer(subject="carol"))).status_code
            for _ in range(3)
        ]
    assert codes == [200, 200, 429]


async def test_anonymous_clients_have_a_budget_per_ip(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(rate_limit_default="2/minute", **PROXY) as gateway:
        first = [
            (await gateway.get("/v1/products", headers=_from("198.51.100.1"))).status_code
            for _ in range(3)
        ]
        other = await gateway.get("/v1/products", headers=_from("198.51.100.2"))
    assert first == [200, 200, 429]
    assert other.status_code == 200


async def test_untrusted_forwarded_for_does_not_buy_a_new_budget(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(rate_limit_default="2/minute") as gateway:
        codes = [
            (await gateway.get("/v1/products", headers=_from(f"198.51.100.{n}"))).status_code
            for n in range(3)
        ]
    assert codes == [200, 200, 429]


async def test_invalid_tokens_spend_the_client_ip_budget(gateway_factory: GatewayFactory) -> None:
    garbage = {"Authorization": "Bearer not.a.jwt"}
    async with gateway_factory(rate_limit_default="2/minute") as gateway:
        responses = [await gateway.get("/v1/products", headers=garbage) for _ in range(3)]
    assert [r.status_code for r in responses] == [401, 401, 429]
    assert responses[1].headers["ratelimit-remaining"] == "0"


def _login(username: str, address: str = "198.51.100.1") -> dict[str, Any]:
    return {
        "data": {"grant_type": "password", "username": username, "password": "wrong"},
        "headers": _from(address),
    }


async def test_password_attempts_are_limited_per_ip_and_username(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any]
) -> None:
    before = _limited("login")
    async with gateway_factory(rate_limit_login="2/minute", **PROXY) as gateway:
        attempts = [await gateway.post("/v1/auth/token", **_login("alice@example.com"))]
        attempts.append(await gateway.post("/v1/auth/token", **_login("alice@example.com")))
        # The same account, spelled as auth would normalise it.
        refused = await gateway.post("/v1/auth/token", **_login("  ALICE@example.com "))
        other_user = await gateway.post("/v1/auth/token", **_login("bob@example.com"))
        other_ip = await gateway.post("/v1/auth/token", **_login("alice@example.com", "192.0.2.5"))
    assert [a.status_code for a in attempts] == [200, 200]
    assert attempts[1].headers["ratelimit-limit"] == "2"
    assert attempts[1].headers["ratelimit-remaining"] == "0"
    _assert_429(refused, limit=2)
    assert other_user.status_code == 200
    assert other_ip.status_code == 200
    assert _limited("login") == before + 1
    assert upstreams["auth"].received[-1]["body"].startswith("grant_type=password")


async def test_multipart_password_attempts_count_against_the_same_budget(
    gateway_factory: GatewayFactory,
) -> None:
    fields = {"grant_type": "password", "username": "dave@example.com", "password": "x"}
    async with gateway_factory(rate_limit_login="1/minute") as gateway:
        urlencoded = await gateway.post("/v1/auth/token", data=fields)
        multipart = await gateway.post("/v1/auth/token", data=fields, files={"f": b""})
    assert urlencoded.status_code == 200
    assert multipart.status_code == 429


async def test_refresh_grants_are_not_password_attempts(gateway_factory: GatewayFactory) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "r"}
    async with gateway_factory(rate_limit_login="1/minute") as gateway:
        codes = [(await gateway.post("/v1/auth/token", data=form)).status_code for _ in "123"]
    assert codes == [200, 200, 200]


async def test_off_disables_the_limits(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(rate_limit_default="off", rate_limit_login="off") as gateway:
        reads = [await gateway.get("/v1/products") for _ in range(5)]
        logins = [await gateway.post("/v1/auth/token", **_login("erin@example.com")) for _ in "12"]
    assert all(r.status_code == 200 for r in [*reads, *logins])
    assert "ratelimit-limit" not in reads[-1].headers


@asynccontextmanager
async def _silent_redis() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers: Redis hung."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # until the client gives up and disconnects
            pass
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    finally:
        server.close()


async def test_redis_down_lets_requests_pass_fast_and_counts_the_error(
    gateway_factory: GatewayFactory, closed_port_url: str
) -> None:
    before = _redis_errors()
    redis_url = closed_port_url.replace("http://", "redis://") + "/0"
    async with gateway_factory(redis_url=redis_url, rate_limit_default="1/minute") as gateway:
        started = time.monotonic()
        responses = [await gateway.get("/v1/products") for _ in range(3)]
        elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "ratelimit-limit" not in responses[0].headers
    assert elapsed < 1.0
    assert _redis_errors() >= before + 1


async def test_hung_redis_costs_one_short_timeout_not_one_per_request(
    gateway_factory: GatewayFactory,
) -> None:
    before = _redis_errors()
    async with (
        _silent_redis() as redis_url,
        gateway_factory(
            redis_url=redis_url, redis_timeout_seconds=0.2, rate_limit_default="1/minute"
        ) as gateway,
    ):
        started = time.monotonic()
        first = await gateway.get("/v1/products")
        first_elapsed = time.monotonic() - started
        started = time.monotonic()
        rest = [await gateway.get("/v1/products") for _ in range(5)]
        rest_elapsed = time.monotonic() - started
    assert first.status_code == 200
    assert first_elapsed < 0.6
    assert all(r.status_code == 200 for r in rest)
    assert rest_elapsed < 0.5
    assert _redis_errors() == before + 1


@pytest.mark.parametrize("value", ["100/day", "0/second", "-1/second", "ten/minute", "", "100"])
def test_invalid_rate_limit_fails_settings_validation(value: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit_default"):
        GatewaySettings(rate_limit_default=value)


@pytest.mark.parametrize(
    ("value", "expected"), [("100/second", "100/second"), (" 5 / Minute ", "5/minute")]
)
def test_rate_limits_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("RATE_LIMIT_LOGIN", value)
    monkeypatch.setenv("RATE_LIMIT_DEFAULT", "off")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")
    settings = GatewaySettings()
    assert str(settings.rate_limit_login) == expected
    assert settings.rate_limit_default is None
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "fd00::/8"]


def test_trusted_proxies_must_be_networks() -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        GatewaySettings(trusted_proxies="10.0.0.1/8")
