"""What the gateway answers when an upstream cannot, or a caller may not: fast problem documents,
never a hang."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chassis.problems import DomainError, UnauthorizedError


class UpstreamUnavailableError(DomainError):
    """Nothing accepted the connection (refused, connect timeout, pool exhausted)."""

    status, code, title = 503, "upstream-unavailable", "Upstream service unavailable"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = "1"


class CircuitOpenError(DomainError):
    """The upstream failed repeatedly; the gateway does not call it until its circuit half-opens."""

    status, code, title = 503, "circuit-open", "Upstream service unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: float, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))


class UpstreamOverloadedError(DomainError):
    """The upstream is shedding load; the gateway refused this request for it (throttling)."""

    status, code, title = 503, "overloaded", "Upstream service overloaded"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = "1"


class UpstreamTimeoutError(DomainError):
    """The upstream accepted the request but did not answer within the read timeout."""

    status, code, title = 504, "upstream-timeout", "Upstream service timed out"


class BadGatewayError(DomainError):
    """The upstream answered with something that is not a usable HTTP response."""

    status, code, title = 502, "bad-gateway", "Bad gateway"


class TokenRequiredError(UnauthorizedError):
    """The route needs a caller and the request carries no token (RFC 6750: no error code)."""

    code, title = "token-required", "Authentication required"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Bearer realm="fleet"'


class RateLimitedError(DomainError):
    """The caller spent its request budget; `headers` say when it may try again."""

    status, code, title = 429, "rate-limited", "Too many requests"

    def __init__(
        self, detail: str | None = None, *, headers: Mapping[str, str], **extensions: Any
    ) -> None:
        super().__init__(detail, **extensions)
        self.headers.update(headers)
