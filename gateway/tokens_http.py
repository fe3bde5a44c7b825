"""``/auth/tokens``: issue and revoke ``X-Auth-Token`` values (see :mod:`auth.tokens`).

- ``POST /auth/tokens``: authenticated by any configured method but a token itself (Basic,
  a bearer token, a client certificate); answers ``201`` with ``{"token", "expires", "user",
  "groups"}`` and the token again in ``X-Subject-Token`` (as Keystone v3 does).
- ``POST /auth/v3/auth/tokens``: the same in the shape of Keystone v3, for OCCI clients of the
  EGI world that follow a ``Keystone uri='<base>/auth/'`` challenge: a ``password`` identity
  in the body is checked through the chain as HTTP Basic credentials; without one, the
  request's own credentials count.
- ``DELETE`` on either path revokes the token named by ``X-Subject-Token``, else by
  ``X-Auth-Token`` (holding a token is enough to end it): ``204``.

These paths are public to the app's authentication hook (the body may carry the password), so
every view here authenticates for itself. Errors are JSON in Keystone's shape
(``{"error": {"code", "title", "message"}}``) with the headers the status obliges.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, current_app, request

import auth.flask
from auth.chain import AuthChain
from auth.credentials import Credentials
from auth.principal import Principal
from auth.tokens import IssuedToken, TokenAuthenticator
from gateway import json_limits
from gateway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NimboError,
    NotAuthenticated,
    NotFound,
)
from gateway.hardening import whole_body
from occi.http.errors import extra_headers, status_for

bp = Blueprint("auth_tokens", __name__)

TOKENS = "/auth/tokens"
KEYSTONE_TOKENS = "/auth/v3/auth/tokens"
PUBLIC_PATHS = (TOKENS, KEYSTONE_TOKENS)
"""Paths the app's authentication hook leaves to these views."""
NO_RENEWAL = (
    "a token cannot get a new token (tokens are not renewable): authenticate with "
    "{accepted} other than X-Auth-Token"
)
# Keystone's name of the method that proved each source's identities.
KEYSTONE_METHODS = {"local": "password", "ldap": "password", "oidc": "mapped", "x509": "external"}


def _chain() -> AuthChain:
    chain: AuthChain = current_app.extensions[auth.flask.EXTENSION]
    return chain


def _tokens() -> TokenAuthenticator:
    tokens = _chain().find("token")
    if not isinstance(tokens, TokenAuthenticator):
        raise NotFound("this server issues no tokens (auth_methods does not list 'token')")
    return tokens


def _authenticate(credentials: Credentials) -> Principal:
    """The principal of ``credentials`` by any method but an issued token."""
    if credentials.auth_token is not None and replace(credentials, auth_token=None).empty:
        raise NotAuthenticated(NO_RENEWAL.format(accepted=_chain().accepted()))
    return _chain().authenticate(replace(credentials, auth_token=None))


def _request_credentials() -> Credentials:
    return auth.flask.credentials_from(request.headers, request.environ)


def _timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and ``Z``, as Keystone writes them."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(document: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(document) + "\n", status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def _issued(issued: IssuedToken, document: Any) -> Response:
    return _json(document, 201, {"X-Subject-Token": issued.token})


# --- views --------------------------------------------------------------------------------


@bp.route(TOKENS, methods=["POST"])
def issue() -> Response:
    tokens = _tokens()
    issued = tokens.issue(_authenticate(_request_credentials()))
    principal = issued.principal
    return _issued(
        issued,
        {
            "token": issued.token,
            "expires": _timestamp(issued.expires_at),
            "user": principal.name,
            "groups": sorted(principal.groups),
        },
    )


@bp.route(KEYSTONE_TOKENS, methods=["POST"])
def keystone_issue() -> Response:
    tokens = _tokens()
    credentials = _request_credentials()
    password = _keystone_password(_keystone_body())
    if password is not None:
        credentials = Credentials(remote_addr=credentials.remote_addr, basic=password)
    issued = tokens.issue(_authenticate(credentials))
    principal = issued.principal
    method = "password" if password else KEYSTONE_METHODS.get(principal.source, "external")
    return _issued(
        issued,
        {
            "token": {
                "methods": [method],
                "user": {
                    "id": principal.name,
                    "name": principal.name,
                    "domain": {"id": "default", "name": "Default"},
                },
                "issued_at": _timestamp(issued.issued_at),
                "expires_at": _timestamp(issued.expires_at),
            }
        },
    )


@bp.route(TOKENS, methods=["DELETE"])
@bp.route(KEYSTONE_TOKENS, methods=["DELETE"])
def revoke() -> Response:
    tokens = _tokens()
    token = (
        request.headers.get("X-Subject-Token") or ""
    ).strip() or _request_credentials().auth_token
    if not token:
        raise NotAuthenticated("name the token to revoke in X-Auth-Token (or X-Subject-Token)")
    if not tokens.revoke(token):
        raise NotFound("no such token: it expired or was revoked already")
    return Response(status=204)


@bp.route(TOKENS, methods=["GET", "PUT", "PATCH"])
@bp.route(KEYSTONE_TOKENS, methods=["GET", "PUT", "PATCH"])
def other_methods() -> Response:
    raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}", ("POST", "DELETE"))


# --- the Keystone v3 body -------------------------------------------------------------------


def _keystone_body() -> dict[str, Any] | None:
    raw = whole_body(cache=False)
    if not raw.strip():
        return None
    try:
        document = json_limits.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidRequest('the body must be a JSON object: {"auth": {"identity": ...}}')
    return document


def _keystone_password(document: dict[str, Any] | None) -> tuple[str, str] | None:
    """``(user, password)`` of a Keystone v3 password identity; None when the body has no
    identity (the request's own credentials count then)."""
    if document is None:
        return None
    identity = _object(_object(document, "auth"), "identity")
    if not identity:
        return None
    methods = identity.get("methods")
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise InvalidRequest("auth.identity.methods must be a list of method names")
    if "password" not in methods:
        if "token" in methods:
            raise NotAuthenticated(NO_RENEWAL.format(accepted=_chain().accepted()))
        raise InvalidRequest(
            f"unsupported identity method(s) {', '.join(methods) or 'none'}: use 'password', "
            "or send no identity and authenticate the request itself"
        )
    user = _object(_object(identity, "password"), "user")
    name = user.get("name", user.get("id"))
    password = user.get("password")
    if not isinstance(name, str) or not name or not isinstance(password, str):
        raise InvalidRequest("auth.identity.password.user needs a name (or id) and a password")
    return name, password


def _object(document: dict[str, Any], field: str) -> dict[str, Any]:
    value = document.get(field, {})
    if not isinstance(value, dict):
        raise InvalidRequest(f"{field} must be a JSON object")
    return value


# --- errors ---------------------------------------------------------------------------------


@bp.errorhandler(NimboError)
def _error(error: NimboError) -> Response:
    status = status_for(error)
    if status >= 500:
        current_app.logger.warning("%s %s: %s", request.method, request.path, error.message)
    document = {
        "error": {"code": status, "title": HTTPStatus(status).phrase, "message": error.message}
    }
    return _json(document, status, dict(extra_headers(error, auth.flask.challenge())))
