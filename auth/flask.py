"""The one Flask hook of :mod:`auth`: read credentials, put the principal on ``flask.g``."""

from __future__ import annotations

import base64
import binascii

from flask import Flask, g, request

from auth.local import LocalAuthenticator
from auth.principal import Principal
from gateway.errors import NotAuthenticated


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


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise NotAuthenticated("authentication required")
    return principal


def init_app(
    app: Flask, authenticator: LocalAuthenticator, *, public_paths: tuple[str, ...] = ()
) -> None:
    """Authenticate every request except ``public_paths`` (prefixes)."""

    @app.before_request
    def _authenticate() -> None:
        if request.path.startswith(public_paths) and public_paths:
            return
        credentials = basic_credentials(request.headers.get("Authorization"))
        if credentials is None:
            raise NotAuthenticated("authentication required: HTTP Basic with a nimbostratus user")
        principal = authenticator.authenticate(*credentials)
        if principal is None:
            raise NotAuthenticated("wrong user name or password, or the account is disabled")
        g.principal = principal
