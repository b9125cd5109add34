"""The key ring: every key of the directory verifies and is published, the active one signs.

Verification follows the same rules as `chassis.tokens.JwksVerifier` (asymmetric algorithms only,
a known kid whose algorithm matches the header, iss/aud/exp/iat/sub required, `typ: access`), so a
token the auth service accepts is exactly a token the gateway accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from auth.keyfiles import key_files
from chassis.tokens import InvalidTokenError, decode_claims, unverified_header

MIN_RSA_BITS = 2048


class NoSigningKeyError(RuntimeError):
    """The key directory is empty or the configured active kid is missing."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: Ed25519PrivateKey | RSAPrivateKey

    @classmethod
    def from_pem(cls, kid: str, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if isinstance(key, Ed25519PrivateKey):
            return cls(kid, "EdDSA", key)
        if isinstance(key, RSAPrivateKey) and key.key_size >= MIN_RSA_BITS:
            return cls(kid, "RS256", key)
        msg = f"key {kid!r} must be Ed25519 or RSA >= {MIN_RSA_BITS} bits"
        raise ValueError(msg)

    @property
    def public_key(self) -> Ed25519PublicKey | RSAPublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        public = self.public_key
        if isinstance(public, Ed25519PublicKey):
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        jwk = {k: v for k, v in jwk.items() if k != "key_ops"}  # RFC 7517: not with `use`
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


class KeyRing:
    def __init__(self, keys: Iterable[SigningKey], *, active_kid: str | None = None) -> None:
        self._keys = {key.kid: key for key in keys}
        if not self._keys:
            msg = "no signing key: run `python -m auth keys ensure` first"
            raise NoSigningKeyError(msg)
        kid = active_kid or max(self._keys)
        if kid not in self._keys:
            msg = f"the active key {kid!r} is not in the key directory"
            raise NoSigningKeyError(msg)
        self.active = self._keys[kid]

    @classmethod
    def load(cls, directory: Path, *, active_kid: str | None = None) -> KeyRing:
        files = key_files(directory)
        keys = [SigningKey.from_pem(kid, path.read_bytes()) for kid, path in sorted(files.items())]
        return cls(keys, active_kid=active_kid)

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [self._keys[kid].public_jwk() for kid in self.kids]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        key = self.active
        return jwt.encode(
            dict(claims), key.private_key, algorithm=key.algorithm, headers={"kid": key.kid}
        )

    def decode(self, token: str, *, issuer: str, audience: str, leeway: float) -> dict[str, Any]:
        """The verified claims of an access token; InvalidTokenError (401) for anything else."""
        alg, kid = unverified_header(token)
        key = self._keys.get(kid)
        if key is None:
            raise InvalidTokenError("Token is signed with an unknown key.")
        if key.algorithm != alg:
            raise InvalidTokenError("Token algorithm does not match its key.")
        return decode_claims(
            token, key=key.public_key, alg=alg, issuer=issuer, audience=audience, leeway=leeway
        )
