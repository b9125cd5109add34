from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth.keyfiles import KeyRotationError, ensure_key, generate_key, key_files, rotate_key
from auth.keyring import KeyRing, NoSigningKeyError
from chassis.tokens import InvalidTokenError

ISSUER, AUDIENCE = "fleet-auth", "fleet"
T0 = datetime(2026, 11, 25, 13, 0, 0, tzinfo=UTC)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "roles": ["admin"],
        "typ": "access",
    }
    return {**claims, **overrides}


def _decode(ring: KeyRing, token: str) -> dict[str, Any]:
    return ring.decode(token, issuer=ISSUER, audience=AUDIENCE, leeway=5)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    ensure_key(directory, now=T0)
    return directory


def test_a_signed_token_verifies_with_its_claims(keys_dir: Path) -> None:
    ring = KeyRing.load(keys_dir)
    claims = _claims()

    token = ring.sign(claims)

    assert jwt.get_unverified_header(token) == {
        "alg": "EdDSA",
        "kid": "k20261125T130000Z",
        "typ": "JWT",
    }
    assert _decode(ring, token) == claims


def test_after_rotation_the_new_key_signs_and_old_tokens_still_verify(keys_dir: Path) -> None:
    old_token = KeyRing.load(keys_dir).sign(_claims())

    new_kid = rotate_key(keys_dir, now=T0 + timedelta(days=30))
    ring = KeyRing.load(keys_dir)

    assert new_kid == "k20261225T130000Z"
    assert ring.active.kid == new_kid
    assert jwt.get_unverified_header(ring.sign(_claims()))["kid"] == new_kid
    assert _decode(ring, old_token)["typ"] == "access"
    assert [k["kid"] for k in ring.jwks()["keys"]] == ["k20261125T130000Z", new_kid]


def test_an_explicit_active_kid_pins_the_signing_key(keys_dir: Path) -> None:
    rotate_key(keys_dir, now=T0 + timedelta(days=1))

    ring = KeyRing.load(keys_dir, active_kid="k20261125T130000Z")

    assert ring.active.kid == "k20261125T130000Z"


def test_a_token_with_an_unknown_kid_is_refused(keys_dir: Path) -> None:
    stranger = Ed25519PrivateKey.generate()
    token = jwt.encode(_claims(), stranger, algorithm="EdDSA", headers={"kid": "unknown"})

    with pytest.raises(InvalidTokenError, match="unknown key"):
        _decode(KeyRing.load(keys_dir), token)


def test_a_token_signed_by_a_foreign_key_under_a_known_kid_is_refused(keys_dir: Path) -> None:
    ring = KeyRing.load(keys_dir)
    token = jwt.encode(
        _claims(),
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": ring.active.kid},
    )

    with pytest.raises(InvalidTokenError, match="signature"):
        _decode(ring, token)


def test_an_unsigned_alg_none_token_is_refused(keys_dir: Path) -> None:
    ring = KeyRing.load(keys_dir)
    token = jwt.encode(_claims(), key="", algorithm="none", headers={"kid": ring.active.kid})

    with pytest.raises(InvalidTokenError, match="algorithm"):
        _decode(ring, token)


@pytest.mark.parametrize("form", ["pem", "raw"])
def test_an_hs256_token_keyed_with_the_public_key_is_refused(keys_dir: Path, form: str) -> None:
    """The classic algorithm-confusion forgery: HMAC with the (public) verification key."""
    ring = KeyRing.load(keys_dir)
    public = ring.active.private_key.public_key()
    secret = (
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if form == "pem"
        else public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": ring.active.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = _b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())

    with pytest.raises(InvalidTokenError, match="algorithm"):
        _decode(ring, f"{header}.{payload}.{signature}")


def test_an_expired_token_is_refused(keys_dir: Path) -> None:
    ring = KeyRing.load(keys_dir)
    now = int(time.time())
    token = ring.sign(_claims(iat=now - 1000, nbf=now - 1000, exp=now - 60))

    with pytest.raises(InvalidTokenError, match="expired"):
        _decode(ring, token)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": "someone-else"}, id="audience"),
        pytest.param({"iss": "someone-else"}, id="issuer"),
        pytest.param({"typ": "refresh"}, id="not-an-access-token"),
        pytest.param({"nbf": int(time.time()) + 3600}, id="not-yet-valid"),
    ],
)
def test_tokens_with_wrong_claims_are_refused(keys_dir: Path, claims: dict[str, Any]) -> None:
    ring = KeyRing.load(keys_dir)

    with pytest.raises(InvalidTokenError):
        _decode(ring, ring.sign(_claims(**claims)))


@pytest.mark.parametrize("missing", ["exp", "iss", "aud", "sub", "iat"])
def test_tokens_missing_a_required_claim_are_refused(keys_dir: Path, missing: str) -> None:
    ring = KeyRing.load(keys_dir)
    claims = _claims()
    del claims[missing]

    with pytest.raises(InvalidTokenError):
        _decode(ring, ring.sign(claims))


def test_garbage_is_refused_as_malformed(keys_dir: Path) -> None:
    with pytest.raises(InvalidTokenError, match="malformed"):
        _decode(KeyRing.load(keys_dir), "not.a.jwt")


def test_the_jwks_holds_only_public_parts(keys_dir: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (keys_dir / "rsa-1.pem").write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    jwks = KeyRing.load(keys_dir, active_kid="rsa-1").jwks()

    by_kid = {key["kid"]: key for key in jwks["keys"]}
    assert set(by_kid["k20261125T130000Z"]) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert by_kid["k20261125T130000Z"]["crv"] == "Ed25519"
    assert set(by_kid["rsa-1"]) == {"kty", "n", "e", "kid", "alg", "use"}
    assert (by_kid["rsa-1"]["alg"], by_kid["rsa-1"]["use"]) == ("RS256", "sig")


def test_rs256_keys_sign_and_verify(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tmp_path.joinpath("rsa-1.pem").write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ring = KeyRing.load(tmp_path)

    token = ring.sign(_claims())

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert _decode(ring, token)["typ"] == "access"


def test_an_empty_directory_or_unknown_active_kid_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NoSigningKeyError):
        KeyRing.load(tmp_path / "missing")
    generate_key(tmp_path, "k1")
    with pytest.raises(NoSigningKeyError):
        KeyRing.load(tmp_path, active_kid="k2")


def test_key_files_are_private_and_other_files_are_ignored(keys_dir: Path) -> None:
    (keys_dir / "README.txt").write_text("not a key")
    (keys_dir / "bad name!.pem").write_text("not a key")

    files = key_files(keys_dir)

    assert list(files) == ["k20261125T130000Z"]
    assert stat.S_IMODE(files["k20261125T130000Z"].stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700


def test_ensure_does_nothing_when_a_key_exists(keys_dir: Path) -> None:
    assert ensure_key(keys_dir, now=T0 + timedelta(days=1)) is None
    assert list(key_files(keys_dir)) == ["k20261125T130000Z"]


def test_rotate_refuses_a_key_that_would_not_be_the_newest(keys_dir: Path) -> None:
    with pytest.raises(KeyRotationError):
        rotate_key(keys_dir, now=T0)
    with pytest.raises(KeyRotationError):
        rotate_key(keys_dir, now=T0 - timedelta(hours=1))
    assert list(key_files(keys_dir)) == ["k20261125T130000Z"]
