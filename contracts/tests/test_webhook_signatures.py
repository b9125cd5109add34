"""Webhook signatures: what `sign` writes, `verify` accepts, and every forgery it refuses."""

from __future__ import annotations

import base64

import pytest

from contracts.webhooks import WebhookVerificationError, sign, verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of 24 byte").decode()
MSG_ID = "6f1c2f8e-2d0c-4a53-9d6e-9a1d7a3f0b11"
NOW = 1_800_000_000
BODY = b'{"specversion":"1.0","type":"order.confirmed.v1","data":{"total_cents":1250}}'


def _headers(
    *, secret: str = SECRET, timestamp: int = NOW, body: bytes = BODY, signature: str | None = None
) -> dict[str, str]:
    return {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature or sign(secret, MSG_ID, timestamp, body),
    }


def test_a_signed_delivery_verifies() -> None:
    verify(SECRET, _headers(), BODY, now=NOW)


def test_the_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The example of the Standard Webhooks specification, so receivers using any of its
    # libraries accept Fleet's deliveries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in _headers().items()}
    verify(SECRET, headers, BODY, now=NOW)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(SECRET, _headers(secret=OTHER_SECRET), BODY, now=NOW)


def test_a_forged_signature_is_refused() -> None:
    forged = "v1," + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(SECRET, _headers(signature=forged), BODY, now=NOW)


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"1250", b"9999")
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(SECRET, _headers(), tampered, now=NOW)


def test_a_tampered_id_is_refused() -> None:
    headers = {**_headers(), "webhook-id": "another-id"}
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(SECRET, headers, BODY, now=NOW)


def test_a_delivery_older_than_the_tolerance_is_refused_as_a_replay() -> None:
    stale = NOW - 301
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(SECRET, _headers(timestamp=stale), BODY, now=NOW)


def test_a_delivery_within_the_tolerance_is_accepted() -> None:
    verify(SECRET, _headers(timestamp=NOW - 299), BODY, now=NOW)


def test_a_timestamp_from_the_future_is_refused() -> None:
    future = NOW + 301
    with pytest.raises(WebhookVerificationError, match="future"):
        verify(SECRET, _headers(timestamp=future), BODY, now=NOW)


def test_a_re_signed_timestamp_does_not_match_the_original_signature() -> None:
    # Moving the timestamp forward to dodge the tolerance breaks the signature.
    headers = {**_headers(timestamp=NOW - 600), "webhook-timestamp": str(NOW)}
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(SECRET, headers, BODY, now=NOW)


def test_one_valid_signature_among_several_is_enough() -> None:
    valid = sign(SECRET, MSG_ID, NOW, BODY)
    stale_key = sign(OTHER_SECRET, MSG_ID, NOW, BODY)
    signatures = f"v2,abc {stale_key} v1,not-base64!! {valid}"
    verify(SECRET, _headers(signature=signatures), BODY, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    headers = {k: v for k, v in _headers().items() if k != missing}
    with pytest.raises(WebhookVerificationError, match=f"missing header {missing}"):
        verify(SECRET, headers, BODY, now=NOW)


def test_a_malformed_timestamp_is_refused() -> None:
    headers = {**_headers(), "webhook-timestamp": "yesterday"}
    with pytest.raises(WebhookVerificationError, match="unix seconds"):
        verify(SECRET, headers, BODY, now=NOW)


def test_the_body_may_be_given_as_text() -> None:
    verify(SECRET, _headers(), BODY.decode(), now=NOW)


def test_signing_with_several_secrets_gives_one_signature_each_in_order() -> None:
    both = sign([OTHER_SECRET, SECRET], MSG_ID, NOW, BODY)
    assert both.split(" ") == [
        sign(OTHER_SECRET, MSG_ID, NOW, BODY),
        sign(SECRET, MSG_ID, NOW, BODY),
    ]


@pytest.mark.parametrize("receivers_secret", [SECRET, OTHER_SECRET])
def test_a_delivery_signed_during_a_rotation_verifies_with_either_secret(
    receivers_secret: str,
) -> None:
    signatures = sign([OTHER_SECRET, SECRET], MSG_ID, NOW, BODY)
    verify(receivers_secret, _headers(signature=signatures), BODY, now=NOW)


def test_a_receiver_holding_several_secrets_accepts_a_signature_of_any() -> None:
    verify([OTHER_SECRET, SECRET], _headers(), BODY, now=NOW)
    unknown = "whsec_" + base64.b64encode(b"a third secret, 24 bytes").decode()
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify([OTHER_SECRET, unknown], _headers(), BODY, now=NOW)


def test_signing_or_verifying_with_no_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="no secret"):
        sign([], MSG_ID, NOW, BODY)
    with pytest.raises(ValueError, match="no secret"):
        verify([], _headers(), BODY, now=NOW)
