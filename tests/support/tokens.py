"""Tokens for auth tests: HS256 and RS256 JWTs minted with PyJWT, and a JWKS server on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://issuer.example.test/"
AUDIENCE = "memory-service"
SECRET = "hs256-test-secret-" + "0123456789abcdef" * 3


def claims(
    sub: str | None,
    *,
    roles: Iterable[str] = (),
    expires_in: float = 600,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    drop: Iterable[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Claims of a token for ``sub`` that the test server accepts, unless changed by the arguments."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": sub,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + int(expires_in),
        "roles": list(roles),
        **extra,
    }
    for name in drop:
        payload.pop(name, None)
    return payload


def hs256(sub: str | None, *, secret: str = SECRET, **kwargs: Any) -> str:
    """An HS256 token for ``sub``; see ``claims`` for the arguments."""
    return jwt.encode(claims(sub, **kwargs), secret, algorithm="HS256")


def unsigned(sub: str) -> str:
    """A token with ``alg: none``: it must never be accepted."""
    return jwt.encode(claims(sub), key=None, algorithm="none")


def hs256_env(**overrides: str) -> dict[str, str]:
    """Environment that turns auth on with HS256 tokens from ``hs256``."""
    return {"AUTH_JWT_SECRET": SECRET, "AUTH_JWT_ISSUER": ISSUER, "AUTH_JWT_AUDIENCE": AUDIENCE, **overrides}


class RsaKey:
    """A fresh RSA key pair (2048 bits) that signs RS256 tokens."""

    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or uuid.uuid4().hex
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_pem(self) -> str:
        return (
            self._private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK, as an identity provider publishes it."""
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, sub: str | None, *, kid: str | None = None, **kwargs: Any) -> str:
        """An RS256 token for ``sub``; see ``claims`` for the arguments."""
        return jwt.encode(claims(sub, **kwargs), self._private, algorithm="RS256", headers={"kid": kid or self.kid})


class JwksServer:
    """Serves ``{"keys": [...]}`` at ``/jwks.json`` on a free loopback port; a context manager."""

    def __init__(self, keys: Iterable[RsaKey]) -> None:
        self.document = {"keys": [key.jwk() for key in keys]}
        self.requests = 0
        document, server = self.document, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(document).encode() if self.path == "/jwks.json" else b"{}"
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="jwks", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/jwks.json"

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def bearer(token: str) -> Mapping[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}
