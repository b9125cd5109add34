"""The gateway's use case: admit a request (authenticate, rate-limit). Forwarding it is
`gateway.upstream_calls.call`."""

from __future__ import annotations

from dataclasses import dataclass, field

from chassis.problems import UnauthorizedError
from chassis.tokens import JwksVerifier, Principal, bearer_token
from gateway.exceptions import RateLimitedError, TokenRequiredError
from gateway.metrics import RATE_LIMITED
from gateway.rate_limit import RateLimiter, RatePolicies, decisive


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted request: its caller, and the rate-limit headers its answer carries."""

    principal: Principal | None
    headers: dict[str, str] = field(default_factory=dict)


async def authenticate(
    *, verifier: JwksVerifier, caller_required: bool, authorization: str | None
) -> Principal | None:
    """The verified caller; None for an anonymous request to a route that allows it."""
    token = bearer_token(authorization)
    if token is not None:
        return await verifier.verify(token)
    if caller_required:
        raise TokenRequiredError("A bearer access token is required.")
    return None


async def admit(
    *,
    verifier: JwksVerifier,
    limiter: RateLimiter,
    policies: RatePolicies,
    caller_required: bool,
    authorization: str | None,
    client_ip: str,
    username: str | None = None,
) -> Admission:
    """Authenticate and charge the request to its rate-limit budgets (`caller_required`: the
    route's access policy for the request's method).

    A request that fails authentication still spends its client IP's budget, so invalid tokens
    cannot be sprayed unlimited; past the limit such a client gets 429 rather than 401.
    """
    refusal: UnauthorizedError | None = None
    try:
        principal = await authenticate(
            verifier=verifier, caller_required=caller_required, authorization=authorization
        )
    except UnauthorizedError as exc:
        principal, refusal = None, exc
    buckets = policies.buckets(
        subject=principal.subject if principal else None, client_ip=client_ip, username=username
    )
    verdicts = await limiter.check(buckets)
    headers: dict[str, str] = {}
    if verdicts:
        verdict = decisive(verdicts)
        headers = verdict.headers()
        if not verdict.allowed:
            for refused in (v for v in verdicts if not v.allowed):
                RATE_LIMITED.labels(refused.bucket.policy).inc()
            raise RateLimitedError("Request rate limit exceeded; retry later.", headers=headers)
    if refusal is not None:
        refusal.headers.update(headers)
        raise refusal
    return Admission(principal=principal, headers=headers)
