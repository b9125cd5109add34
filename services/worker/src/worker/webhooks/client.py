"""The HTTP client of webhook deliveries: aiohttp's transport through the chassis client, no
redirects, no cookies, and (unless private destinations are allowed) a resolver that refuses
names answering with non-public addresses."""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from chassis.clients import http_client
from worker.settings import WorkerSettings
from worker.webhooks.destinations import PublicOnlyResolver


def webhook_client(settings: WorkerSettings) -> httpx.AsyncClient:
    def session() -> aiohttp.ClientSession:
        # Built on first use, inside the running loop. aiohttp's own cookie jar would carry one
        # subscriber's `Set-Cookie` to the next request to that host: keep none.
        connector = aiohttp.TCPConnector(
            limit=settings.webhook_concurrency,
            resolver=None if settings.webhooks_allow_private else PublicOnlyResolver(),
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return http_client(
        connect_timeout=settings.webhook_timeout_seconds,
        read_timeout=settings.webhook_timeout_seconds,
        max_connections=settings.webhook_concurrency,
        transport=AiohttpTransport(client=session),
    )
