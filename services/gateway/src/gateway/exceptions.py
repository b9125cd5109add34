"""What the gateway answers when an upstream cannot: fast problem documents, never a hang."""

from __future__ import annotations

from typing import Any

from chassis.problems import DomainError, Unauthorized


class UpstreamUnavailableError(DomainError):
    """Nothing accepted the connection (refused, connect timeout, pool exhausted)."""

    status, code, title = 503, "upstream-unavailable", "Upstream service unavailable"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = "1"


class UpstreamTimeoutError(DomainError):
    """The upstream accepted the request but did not answer within the read timeout."""

    status, code, title = 504, "upstream-timeout", "Upstream service timed out"


class BadGatewayError(DomainError):
    """The upstream answered with something that is not a usable HTTP response."""

    status, code, title = 502, "bad-gateway", "Bad gateway"


class TokenRequired(Unauthorized):
    """The route needs a caller and the request carries no token (RFC 6750: no error code)."""

    code, title = "token-required", "Authentication required"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Bearer realm="fleet"'
