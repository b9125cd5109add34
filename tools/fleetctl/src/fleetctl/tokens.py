"""A real, throw-away token issuer for tests: Ed25519 keys, a JWKS served over HTTP on loopback.

Services verify tokens by fetching the auth service's JWKS; tests that are not about auth use this
issuer instead, so the verification path they exercise (HTTP fetch, kid lookup, signature, claims)
is the real one. It also answers the client credentials grant at `token_url` as auth does (any
client secret), so a service under test gets its service tokens over HTTP too.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm


class TestTokenIssuer:
    __test__ = False  # not a pytest test class

    issuer = "fleet-auth"
    audience = "fleet"

    def __init__(self) -> None:
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self.active_kid = self.rotate()
        self.jwks_requests = 0
        self.token_requests = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.jwks_requests += 1
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                issuer.token_requests += 1
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                caller, audience = form["client_id"][0], form["audience"][0]
                body = json.dumps(
                    {
                        "access_token": issuer.issue_service(caller=caller, audience=audience),
                        "token_type": "bearer",
                        "expires_in": issuer.service_ttl,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def jwks_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1/auth/jwks"

    @property
    def token_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1/auth/token"

    service_ttl = 300

    def issue_service(self, *, caller: str, audience: str, ttl: int | None = None) -> str:
        """A service's token (`typ: service`) of `caller` for `audience`, as auth issues it."""
        return self.issue(
            subject=caller,
            ttl=self.service_ttl if ttl is None else ttl,
            aud=audience,
            client_id=caller,
            typ="service",
        )

    def rotate(self) -> str:
        """Add a new signing key and make it the active one; old keys stay published."""
        kid = f"test-{uuid.uuid4().hex[:8]}"
        self._keys[kid] = Ed25519PrivateKey.generate()
        self.active_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self._keys.items():
            jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": keys}

    def issue(
        self,
        *,
        subject: str | None = None,
        roles: Iterable[str] = (),
        ttl: int = 900,
        kid: str | None = None,
        key: Ed25519PrivateKey | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token; `key` signs with a key the JWKS does not know (a forgery)."""
        now = int(time.time())
        kid = kid or self.active_kid
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject or str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "roles": list(roles),
            "typ": "access",
            **claims,
        }
        signer = key or self._keys.get(kid) or self._keys[self.active_kid]
        return jwt.encode(payload, signer, algorithm="EdDSA", headers={"kid": kid})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
