"""Headers across the gateway: request ids, trace context, forwarding and hop-by-hop rules."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"


async def test_client_request_id_is_echoed_and_reaches_upstream(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/v1/products", headers={"X-Request-ID": "client-id-42"})
    assert response.headers["x-request-id"] == "client-id-42"
    assert response.json()["headers"]["x-request-id"] == "client-id-42"
    assert response.json()["header_names"].count("x-request-id") == 1


async def test_missing_request_id_is_generated_and_the_same_reaches_upstream(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/v1/products")
    generated = response.headers["x-request-id"]
    assert len(generated) == 32
    assert response.json()["headers"]["x-request-id"] == generated


async def test_malformed_request_id_is_replaced_before_it_goes_upstream(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/v1/products", headers={"X-Request-ID": "bad id <script>"})
    replaced = response.headers["x-request-id"]
    assert replaced != "bad id <script>"
    assert response.json()["headers"]["x-request-id"] == replaced


async def test_traceparent_continues_the_client_trace_upstream(gateway: httpx.AsyncClient) -> None:
    incoming = f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"
    response = await gateway.get("/v1/products", headers={"traceparent": incoming})
    version, trace_id, parent_id, _ = response.json()["headers"]["traceparent"].split("-")
    assert (version, trace_id) == ("00", TRACE_ID)
    # The upstream's parent is the gateway's own server span, not the client's span.
    assert parent_id != CLIENT_SPAN_ID
    assert response.json()["header_names"].count("traceparent") == 1


async def test_traceparent_is_started_when_the_client_sent_none(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/products")
    version, trace_id, _parent_id, _ = response.json()["headers"]["traceparent"].split("-")
    assert version == "00"
    assert len(trace_id) == 32
    assert trace_id != "0" * 32


async def test_hop_by_hop_request_headers_are_not_forwarded(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get(
        "/v1/products",
        headers={
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Trailers": "x-checksum",
            "Upgrade": "websocket",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Proxy-Connection": "keep-alive",
            "X-End-To-End": "kept",
        },
    )
    received = response.json()["headers"]
    for name in (
        "x-private-hop",
        "keep-alive",
        "te",
        "trailers",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
    ):
        assert name not in received, name
    assert received.get("connection", "keep-alive") == "keep-alive"
    assert received["x-end-to-end"] == "kept"


async def test_upstream_gets_its_own_host_and_forwarded_headers_from_the_gateway(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get(
        "/v1/products",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=6.6.6.6",
        },
    )
    received = response.json()["headers"]
    assert received["host"].startswith("127.0.0.1:")
    assert received["x-forwarded-for"] == "127.0.0.1"
    assert received["x-forwarded-proto"] == "http"
    assert received["x-forwarded-host"] == "gateway.test"
    assert "forwarded" not in received


async def test_client_without_accept_encoding_gets_no_encoding_it_did_not_ask_for(
    gateway: httpx.AsyncClient,
) -> None:
    plain = await gateway.get("/v1/products", headers={"Accept-Encoding": ""})
    assert plain.json()["headers"]["accept-encoding"] in ("", "identity")
    gzip = await gateway.get("/v1/products", headers={"Accept-Encoding": "gzip"})
    assert gzip.json()["headers"]["accept-encoding"] == "gzip"


async def test_hop_by_hop_response_headers_are_not_relayed(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/products")
    assert response.headers["x-upstream"] == "catalog"
    assert "proxy-echo" not in response.headers
    assert "keep-alive" not in response.headers
    assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]


async def test_cookies_set_for_one_caller_are_never_sent_for_another(
    gateway: httpx.AsyncClient,
) -> None:
    first = await gateway.get("/v1/products", headers={"Cookie": "session=alice"})
    assert first.json()["headers"]["cookie"] == "session=alice"
    assert first.headers.get_list("set-cookie") == ["a=1", "b=2"]
    gateway.cookies.clear()  # the test client would otherwise send them back itself
    second = await gateway.get("/v1/products")
    assert "cookie" not in second.json()["headers"]


async def test_upstream_gets_the_client_address_a_trusted_proxy_named(
    gateway_factory: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with gateway_factory(trusted_proxies="127.0.0.1/32") as gateway:
        response = await gateway.get(
            "/v1/products", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
        )
    assert response.json()["headers"]["x-forwarded-for"] == "198.51.100.7"
