"""The one Flask hook of :mod:`auth`: read credentials, run the chain, set ``g.principal``."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Protocol

from flask import Flask, current_app, g, has_app_context, request

from auth.chain import AuthChain
from auth.credentials import Credentials
from auth.principal import Principal
from auth.x509 import FrontEnd, X509Authenticator, client_certificate
from gateway.errors import NotAuthenticated
from gateway.hardening import base_url as public_base_url

EXTENSION = "nimbostratus.auth"
ROCCI = re.compile(r"\brOCCI", re.IGNORECASE)  # rOCCI-cli, rOCCI-api, rOCCI-core
FRONT_END = "nimbostratus.auth.front_end"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic …`` value, or None."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` value, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class HeaderLookup(Protocol):
    def get(self, key: str) -> str | None: ...


def credentials_from(
    headers: HeaderLookup, environ: Mapping[str, Any], front_end: FrontEnd | None = None
) -> Credentials:
    """What a request offers, from its headers and WSGI environment.

    A client certificate is read from the TLS layer or, with ``front_end`` (default: the
    current app's, see :func:`init_app`), from the headers of a trusted front end."""
    authorization = headers.get("Authorization")
    if front_end is None and has_app_context():
        front_end = current_app.extensions.get(FRONT_END)
    certificate = client_certificate(headers, environ, front_end)
    return Credentials(
        remote_addr=str(environ.get("REMOTE_ADDR") or ""),
        basic=basic_credentials(authorization),
        bearer=bearer_token(authorization),
        auth_token=(headers.get("X-Auth-Token") or "").strip() or None,
        client_dn=certificate[0] if certificate else None,
        client_issuer_dn=certificate[1] if certificate else None,
    )


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise NotAuthenticated("authentication required")
    return principal


def challenge() -> str:
    """The ``WWW-Authenticate`` value of a 401 from the current app.

    Every configured method's challenge, in chain order, except for rOCCI clients (the EGI
    world's ``occi`` command): they match the header against
    ``/^(Keystone|snf-auth) uri=(["'])(.+)(["'])$/``, so when the token method is configured
    they get its Keystone challenge alone, as rOCCI-server sent it."""
    chain: AuthChain = current_app.extensions[EXTENSION]
    base_url = public_base_url()
    token = chain.find("token")
    if token is not None and ROCCI.search(request.headers.get("User-Agent", "")):
        keystone = token.challenge(base_url)
        if keystone:
            return keystone
    return chain.challenge(base_url)


def init_app(app: Flask, chain: AuthChain, *, public_paths: tuple[str, ...] = ()) -> None:
    """Authenticate every request except ``public_paths`` (prefixes)."""
    app.extensions[EXTENSION] = chain
    x509 = chain.find("x509")  # the front ends whose certificate headers it believes
    app.extensions[FRONT_END] = x509.front_end if isinstance(x509, X509Authenticator) else None

    @app.before_request
    def _authenticate() -> None:
        if public_paths and request.path.startswith(public_paths):
            return
        g.principal = chain.authenticate(credentials_from(request.headers, request.environ))
