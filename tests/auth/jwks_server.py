"""A local OpenID Connect issuer for the OIDC tests: keys the tests make, tokens they sign.

:class:`IdentityProvider` serves ``/.well-known/openid-configuration`` and ``/jwks`` over real
HTTP on ``127.0.0.1`` (``http.server`` in a thread), publishes the public halves of its keys,
and signs tokens with the private halves. It counts what it serves, so tests can prove how
often the gateway fetched the keys, and it can be stopped to play an unreachable issuer.
Forged tokens (``alg: none``, HS256 with the public key as the secret) are built by hand here,
since PyJWT rightly refuses to make them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "nimbostratus-test"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@functools.cache
def rsa_key(number: int) -> rsa.RSAPrivateKey:
    """The ``number``-th RSA test key (2048 bits; made once per session: they cost ~0.1 s)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key(number: int) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(document: dict[str, Any]) -> str:
    return b64url(json.dumps(document, separators=(",", ":")).encode())


class IdentityProvider:
    """An issuer at ``http://127.0.0.1:<port>`` with one RSA key ``rsa-0`` published.

    Providers of different ``key_set`` hold different key pairs under the same key ids
    (``rsa-0`` of one is not ``rsa-0`` of another); those of one set share them."""

    def __init__(self, *, key_set: int = 0) -> None:
        self._key_base = 1000 * key_set
        self.private: dict[str, PrivateKey] = {}
        self.published: list[str] = []
        self.served: Counter[str] = Counter()
        self._key_numbers = Counter[str]()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.add_key("RSA")
        self.start()

    # --- HTTP ---------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    def start(self) -> None:
        """Serve (again, on the same port after a stop)."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.served[self.path] += 1
                document = provider.document(self.path)
                body = json.dumps(document).encode() if document is not None else b"{}"
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = self._thread = None

    def document(self, path: str) -> dict[str, Any] | None:
        if path == "/.well-known/openid-configuration":
            return {
                "issuer": self.issuer,
                "jwks_uri": self.jwks_url,
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }
        if path == "/jwks":
            return {"keys": [self.jwk(kid) for kid in self.published]}
        return None

    @property
    def jwks_fetches(self) -> int:
        return self.served["/jwks"]

    # --- keys ---------------------------------------------------------------------------

    def add_key(self, kind: str = "RSA", *, publish: bool = True) -> str:
        """Make (or reuse) a key of ``kind`` (RSA or EC); its kid, e.g. ``rsa-1``."""
        number = self._key_numbers[kind]
        self._key_numbers[kind] += 1
        kid = f"{kind.lower()}-{number}"
        number += self._key_base
        self.private[kid] = rsa_key(number) if kind == "RSA" else ec_key(number)
        if publish:
            self.published.append(kid)
        return kid

    def rotate(self, kind: str = "RSA") -> str:
        """Publish a new key in place of every old one; its kid."""
        kid = self.add_key(kind, publish=False)
        self.published = [kid]
        return kid

    def jwk(self, kid: str) -> dict[str, Any]:
        key = self.private[kid]
        if isinstance(key, rsa.RSAPrivateKey):
            document = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            document = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return {**document, "kid": kid, "use": "sig"}

    def public_pem(self, kid: str = "rsa-0") -> bytes:
        return (
            self.private[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    # --- tokens -------------------------------------------------------------------------

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Good claims for user ``alice-oidc``; a change to None removes that claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "alice-oidc",
            "name": "Alice Example",
            "exp": now + 300,
            "iat": now,
            "nbf": now,
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = "rsa-0",
        alg: str | None = None,
        key: str | None = None,
    ) -> str:
        """A token signed with key ``key`` (default: ``kid``'s), named ``kid`` in its header."""
        private = self.private[key or kid or "rsa-0"]
        alg = alg or ("RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256")
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(
            self.claims() if claims is None else claims, private, algorithm=alg, headers=headers
        )

    def unsigned(self, claims: dict[str, Any] | None = None, kid: str = "rsa-0") -> str:
        """An ``alg: none`` token (no signature)."""
        header = {"alg": "none", "typ": "JWT", "kid": kid}
        return f"{_segment(header)}.{_segment(claims or self.claims())}."

    def hmac_with_public_key(self, claims: dict[str, Any] | None = None, kid: str = "rsa-0") -> str:
        """HS256 with the published public key (PEM) as the secret: the RS/HS confusion."""
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        signing_input = f"{_segment(header)}.{_segment(claims or self.claims())}"
        mac = hmac.new(self.public_pem(kid), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"


def tampered(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_segment(claims)}.{signature}"
