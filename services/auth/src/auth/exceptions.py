"""Errors of the auth use cases; the chassis renders them as RFC 9457 problems.

Token endpoint errors also carry the OAuth 2.0 `error` member (RFC 6749 section 5.2), so OAuth
client libraries understand them, and are never cached.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chassis.problems import ConflictError, DomainError


class EmailTakenError(ConflictError):
    code, title = "email-taken", "E-mail already registered"


class TokenError(DomainError):
    oauth_error: ClassVar[str] = "invalid_request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, error=self.oauth_error, **extensions)
        self.headers["Cache-Control"] = "no-store"


class InvalidRequestError(TokenError):
    status, code, title = 400, "invalid-request", "Invalid token request"
    oauth_error = "invalid_request"


class UnsupportedGrantTypeError(TokenError):
    status, code, title = 400, "unsupported-grant-type", "Unsupported grant type"
    oauth_error = "unsupported_grant_type"


class InvalidClientError(TokenError):
    """A service's client credentials are wrong (RFC 6749 5.2: 401 `invalid_client`)."""

    status, code, title = 401, "invalid-client", "Invalid client credentials"
    oauth_error = "invalid_client"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Basic realm="fleet-service"'


class InvalidTargetError(TokenError):
    """A token for a service the client does not call (RFC 8707 `invalid_target`)."""

    status, code, title = 400, "invalid-target", "Audience not allowed for this client"
    oauth_error = "invalid_target"


class InvalidGrantError(TokenError):
    status, code, title = 401, "invalid-grant", "Invalid credentials or refresh token"
    oauth_error = "invalid_grant"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Bearer realm="fleet"'
