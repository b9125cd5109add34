"""Signing and verifying Fleet's webhooks, as the Standard Webhooks specification defines them.

A delivery carries three headers: `webhook-id` (the event id, the same on every retry),
`webhook-timestamp` (unix seconds of this attempt) and `webhook-signature`: space-separated
`v1,<base64 HMAC-SHA256>` signatures over `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with
the base64-decoded part of the subscription's secret after its `whsec_` prefix. Several
signatures appear while a secret is being rotated; one valid signature is enough.

Pure functions (no I/O): the worker signs with :func:`sign`, receivers check with :func:`verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class WebhookVerificationError(ValueError):
    """The delivery is not authentic or not fresh: refuse it (answer 400 or 401)."""


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        msg = "the secret is not `whsec_` followed by base64"
        raise WebhookVerificationError(msg) from None


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def _digest(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    return hmac.new(_key(secret), signed, hashlib.sha256).digest()


def _secrets(secret: str | Sequence[str]) -> list[str]:
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        msg = "no secret given"
        raise ValueError(msg)
    return secrets


def sign(secret: str | Sequence[str], msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` value of one delivery: `v1,<base64 HMAC-SHA256>`, or one such
    signature per secret, space-separated, when given several (a secret being rotated)."""
    return " ".join(
        f"{SIGNATURE_VERSION},{base64.b64encode(_digest(key, msg_id, timestamp, body)).decode()}"
        for key in _secrets(secret)
    )


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    msg = f"missing header {name}"
    raise WebhookVerificationError(msg)


def _timestamp(raw: str, *, tolerance_seconds: int, now: float) -> int:
    try:
        timestamp = int(raw)
    except ValueError:
        msg = f"{TIMESTAMP_HEADER} is not unix seconds"
        raise WebhookVerificationError(msg) from None
    if timestamp < now - tolerance_seconds:
        msg = "the delivery is too old (a replay?)"
        raise WebhookVerificationError(msg)
    if timestamp > now + tolerance_seconds:
        msg = "the delivery's timestamp is in the future"
        raise WebhookVerificationError(msg)
    return timestamp


def verify(
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookVerificationError` unless the delivery was signed with `secret` (or
    with one of several: a receiver changing over to a rotated secret) within
    `tolerance_seconds` of `now` (default: the current time). `body` must be the raw request
    body, byte for byte, not a re-serialised JSON document."""
    msg_id = _header(headers, ID_HEADER)
    timestamp = _timestamp(
        _header(headers, TIMESTAMP_HEADER),
        tolerance_seconds=tolerance_seconds,
        now=time.time() if now is None else now,
    )
    expected = [_digest(key, msg_id, timestamp, body) for key in _secrets(secret)]
    for candidate in _header(headers, SIGNATURE_HEADER).split():
        version, _, encoded = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(given, digest) for digest in expected):
            return
    msg = "no valid signature"
    raise WebhookVerificationError(msg)
