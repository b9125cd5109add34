"""Shared outbound clients never carry one caller's cookies to the next call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request, Response

from chassis.clients import http_client
from fleetctl.testing import serve_in_thread

seen_cookies: list[str | None] = []
upstream = FastAPI()


@upstream.get("/set")
async def set_cookie() -> Response:
    response = Response("ok")
    response.set_cookie("session", "alice-secret")
    return response


@upstream.get("/echo")
async def echo(request: Request) -> dict[str, str]:
    seen_cookies.append(request.headers.get("cookie"))
    return {}


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serve_in_thread(upstream) as url:
        # A host name, not an IP: cookie jars ignore cookies of bare IP addresses.
        yield url.replace("127.0.0.1", "localhost")


async def test_a_cookie_set_for_one_caller_is_never_sent_for_the_next(server_url: str) -> None:
    async with http_client(base_url=server_url) as client:
        await client.get("/set")
        await client.get("/echo")
    assert seen_cookies[-1] is None
