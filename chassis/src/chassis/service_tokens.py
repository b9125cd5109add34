"""Service identity on outbound calls: a short-lived token from auth, per callee, on every request.

A service that calls another (the gateway forwarding, orders reading prices) proves who it is with
an access token auth issues to it by the OAuth 2.0 client credentials grant (RFC 6749 4.4):
`client_id` is the calling service's name, `client_secret` its own secret, `audience` the callee.
The token says `sub` = the caller, `aud` = the callee, `typ` = `service`, lives a few minutes and
is signed by auth's keys, so the callee verifies it with the JWKS it already holds
(`chassis.service_callers`).

How it travels. `Authorization` stays the end user's: the gateway forwards the user's bearer
token untouched, and the services authorise the user from it. The service's own token goes in a
header of its own, `Fleet-Service-Authorization: Bearer <token>`, as Google's Cloud Run and IAP do
with `X-Serverless-Authorization` when a request must carry both an end user's token and the
calling service's identity (an `X-` prefix is deprecated by RFC 6648, hence the `Fleet-` one).
Token exchange (RFC 8693, one token naming both) would mint a token per request; a mesh's mTLS
(deploy/helm) proves the peer without a token at all.

Caching. `ServiceTokens` keeps one token per audience. Before `refresh_ratio` of its lifetime
has passed it is used as is; after that, the first call starts one refresh in the background
and every call keeps using the current token until it actually expires, so a short outage of
auth breaks nothing while a token is valid. Only a caller with no valid token waits, for the one
fetch in flight (single-flight: a burst of calls makes one request to auth), bounded by
`timeout`. A callee that refuses the token (401 naming the service realm: say its keys were
rotated) gets the call once more with a fresh token, at most once per `min_refresh_seconds` per
audience, so a misconfigured callee cannot turn every call into a request to auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import httpx

from chassis.clients import http_client
from chassis.logging import get_logger
from chassis.settings import WithServiceIdentity
from chassis.single_flight import SingleFlight

SERVICE_TOKEN_HEADER = "fleet-service-authorization"  # noqa: S105 - a header name
# The `typ` claim of a service's token (a user's is `access`): neither passes for the other.
SERVICE_TOKEN_TYPE = "service"  # noqa: S105 - a claim value
# The realm of a callee's 401 for the service token (not the user's `Authorization`).
SERVICE_REALM = "fleet-service"

log = get_logger(__name__)


class ServiceTokenUnavailableError(httpx.TransportError):
    """No valid token and auth did not give one in time: the call cannot be made (a transport
    failure to the caller, answered like an unreachable callee: 503)."""


@dataclass(frozen=True, slots=True)
class _Held:
    token: str
    obtained_at: float
    refresh_at: float
    expires_at: float


class ServiceTokens:
    """The tokens of one calling service, one per audience, from auth's token endpoint."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 2.0,
        refresh_ratio: float = 0.8,
        min_refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._token_url = token_url
        self._credentials = {"client_id": client_id, "client_secret": client_secret}
        self._timeout = timeout
        self._refresh_ratio = refresh_ratio
        self._min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._fetches: SingleFlight[_Held] = SingleFlight(
            name="service-token", on_done=self._settled
        )
        self._failed_at: dict[str, float] = {}
        self.fetched = 0  # tokens obtained from auth (tests, logs)

    async def token(self, audience: str) -> str:
        """A valid token for `audience`, fetched only when none is held or it is due."""
        held = self._held.get(audience)
        now = self._clock()
        if held is not None and now < held.refresh_at:
            return held.token
        if held is not None and now < held.expires_at:
            # Refreshed in the background; after a failed refresh, not again at once (auth
            # being down must not cost a request to it per call).
            if now - self._failed_at.get(audience, -math.inf) >= self._min_refresh_seconds:
                self._fetch(audience)
            return held.token
        fetch = self._fetch(audience)
        try:
            return (await asyncio.shield(fetch)).token
        except (httpx.HTTPError, TimeoutError, ValueError, KeyError) as exc:
            msg = f"no service token for {audience}: auth did not issue one"
            raise ServiceTokenUnavailableError(msg) from exc

    def refused(self, audience: str, token: str) -> bool:
        """The callee refused `token`: drop it and say whether to retry with a fresh one (not
        when the token is younger than `min_refresh_seconds`, or already replaced)."""
        held = self._held.get(audience)
        if held is None:  # dropped by another call: retry if its fetch is under way
            return audience in self._fetches
        if held.token != token:
            return True  # replaced meanwhile: retry with the new one
        if self._clock() - held.obtained_at < self._min_refresh_seconds:
            return False
        del self._held[audience]
        return True

    def _fetch(self, audience: str) -> asyncio.Task[_Held]:
        """The one fetch in flight for `audience`, started if there is none."""
        return self._fetches.start(audience, functools.partial(self._obtain, audience))

    def _settled(self, audience: str, task: asyncio.Task[_Held]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self._failed_at[audience] = self._clock()
            log.warning("service_token_failed", audience=audience, error=type(exc).__name__)

    async def _obtain(self, audience: str) -> _Held:
        async with asyncio.timeout(self._timeout):
            response = await self._client.post(
                self._token_url,
                data={
                    "grant_type": "client_credentials",
                    "audience": audience,
                    **self._credentials,
                },
            )
        response.raise_for_status()
        body = response.json()
        token, lifetime = str(body["access_token"]), float(body["expires_in"])
        now = self._clock()
        self.fetched += 1
        log.info("service_token_obtained", audience=audience, expires_in=lifetime)
        held = self._held[audience] = _Held(
            token=token,
            obtained_at=now,
            refresh_at=now + lifetime * self._refresh_ratio,
            expires_at=now + lifetime,
        )
        return held

    @classmethod
    def from_settings(cls, settings: WithServiceIdentity) -> ServiceTokens:
        """This service's tokens over a client of their own (closed by `aclose`)."""
        timeout = settings.service_token_timeout_seconds
        return cls(
            client=http_client(connect_timeout=timeout, read_timeout=timeout, max_connections=4),
            token_url=settings.auth_token_url,
            client_id=settings.service_name,
            client_secret=settings.service_client_secret.get_secret_value(),
            timeout=timeout,
            refresh_ratio=settings.service_token_refresh_ratio,
            owns_client=True,
        )

    async def aclose(self) -> None:
        await self._fetches.aclose()
        if self._owns_client:
            await self._client.aclose()


class ServiceAuth(httpx.Auth):
    """httpx authentication of a client whose every request goes to one callee: the token for
    that audience in `Fleet-Service-Authorization`, and one retry when the callee refuses it."""

    requires_request_body = True  # a retried request sends its body again

    def __init__(self, tokens: ServiceTokens, audience: str) -> None:
        self.tokens = tokens
        self.audience = audience

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        msg = "ServiceAuth is for async clients"
        raise RuntimeError(msg)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.tokens.token(self.audience)
        request.headers[SERVICE_TOKEN_HEADER] = f"Bearer {token}"
        response = yield request
        if refuses_service_token(response) and self.tokens.refused(self.audience, token):
            token = await self.tokens.token(self.audience)
            request.headers[SERVICE_TOKEN_HEADER] = f"Bearer {token}"
            yield request


def refuses_service_token(response: httpx.Response) -> bool:
    """A 401 for the service token, not for the end user's `Authorization`."""
    return response.status_code == httpx.codes.UNAUTHORIZED and (
        f'realm="{SERVICE_REALM}"' in response.headers.get("www-authenticate", "")
    )


@contextlib.asynccontextmanager
async def service_tokens(settings: WithServiceIdentity) -> AsyncGenerator[ServiceTokens]:
    """This service's tokens for as long as its lifespan runs."""
    tokens = ServiceTokens.from_settings(settings)
    try:
        yield tokens
    finally:
        await tokens.aclose()
