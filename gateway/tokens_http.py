"""``/auth/tokens``: issue and revoke ``X-Auth-Token`` values (see :mod:`auth.tokens`).

- ``POST /auth/tokens``: authenticated by any configured method but a token itself (Basic,
  a bearer token, a client certificate); answers ``201`` with ``{"token", "expires", "user",
  "groups"}`` and the token again in ``X-Subject-Token`` (as Keystone v3 does).
- ``POST /auth/v3/auth/tokens``: the same in the shape of Keystone v3, for OCCI clients of the
  EGI world that follow a ``Keystone uri='<base>/auth/'`` challenge: a ``password`` identity
  in the body is checked through the chain as HTTP Basic credentials; without one, the
  request's own credentials count; a ``token`` identity with a project scope *rescopes* a
  token (below). ``auth.scope.project`` (``id``, or ``name`` in domain ``default``) scopes
  the new token to one of the principal's projects, which are its tenants, and adds a
  catalog whose ``occi`` endpoint is this server's OCCI root. A request with a token scoped
  to a project (v3) or tenant (v2.0) acts in that group: what it creates belongs to it, and
  naming another group is ``403`` (:func:`auth.tokens.scoped`,
  :func:`gateway.services.tenancy.check_scope`); an unscoped token acts as any credential.
- ``DELETE`` on either path revokes the token named by ``X-Subject-Token``, else by
  ``X-Auth-Token`` (holding a token is enough to end it): ``204``.
- The part of Keystone v2.0 that rOCCI-api's Keystone plugin uses (gwdg/rOCCI-api,
  ``lib/occi/api/client/http/authn_plugins/keystone.rb``, classes ``Keystone`` and
  ``KeystoneV2``): after a 401 whose ``WWW-Authenticate`` matches
  ``/^(Keystone|snf-auth) uri=(["'])(.+)(["'])$/`` it GETs the uri and takes ``300`` as a
  list (``versions.values``, sorted by ``id``, so v2.0 comes first) and any other success as
  one ``version``; it follows each version's ``self`` link (trailing ``/`` chomped), POSTs
  ``<self>/tokens`` with ``{"auth": {"voms": true}}`` (x509: the credentials are the client
  certificate) or ``{"auth": {"passwordCredentials": {...}}}``, reads
  ``access.token.id``, GETs ``<self>/tenants`` with it as ``X-Auth-Token`` and POSTs the
  same body again with ``tenantName`` for the first tenant that works (with the
  environment's ``ROCCI_CLIENT_KEYSTONE_TENANT`` it does that at once). Here:

  * ``GET /auth/``: ``300`` with both versions; ``GET /auth/v2.0``, ``/auth/v3`` (with or
    without ``/``): ``200`` with one (shapes of Keystone's version discovery).
  * ``POST /auth/v2.0/tokens``: ``200`` with ``{"access": {"token", "user",
    "serviceCatalog": [], "metadata"}}`` (Identity API v2.0, "Authenticate"). Credentials:
    ``passwordCredentials`` (checked through the chain as HTTP Basic), ``voms: true`` (the
    request's own: a client certificate, from TLS or a trusted front end, or Basic or a
    bearer token; never its ``X-Auth-Token``, which rOCCI sends along), or ``token: {"id"}``
    with a tenant: *rescoping*, which gives a token expiring with the one presented (a token
    still cannot renew itself). ``tenantName``/``tenantId`` (the same value here) scopes the
    token to one of the principal's tenants (:func:`auth.tokens.tenants_of`: its groups, else
    ``default``); another is ``401`` as Keystone answers it.
  * ``GET /auth/v2.0/tenants``: ``{"tenants": [...], "tenants_links": []}`` for the
    request's principal (an ``X-Auth-Token`` or any other configured method).

Keystone v3 federation, as rOCCI-api's ``KeystoneV3`` handler drives it for ``--auth oauth2``
(``set_oauth2_unscoped_token``, ``get_first_working_project``, ``set_scoped_token``) and as
keystoneauth's ``v3oidcaccesstoken`` plugin does:

* ``GET`` or ``POST /auth/v3/OS-FEDERATION/identity_providers/<idp>/protocols/<protocol>/auth``
  with ``Authorization: Bearer <access token>`` (nothing else counts: not an
  ``X-Auth-Token``, not Basic): the token is verified by the ``oidc`` method of the chain;
  ``201`` with an *unscoped* token in ``X-Subject-Token`` and Keystone's body of a federated
  token (``methods: [<protocol>]``, the user's ``OS-FEDERATION`` attributes). ``<idp>`` and
  ``<protocol>`` must be listed in ``keystone_federation_idps`` and
  ``keystone_federation_protocols`` (names for every configured OIDC issuer: a token of any
  of them is accepted at any of these names); ``404`` otherwise, and when ``oidc`` is not
  among ``auth_methods``.
* ``GET /auth/v3/auth/projects`` (also ``/auth/v3/OS-FEDERATION/projects``): the request
  principal's projects, the same list as the v2.0 tenants, in v3's shape.
* ``POST /auth/v3/auth/tokens`` with ``methods: ["token"]`` and a project scope: a token
  scoped to that project, expiring with the token presented, rendered with the
  ``OS-FEDERATION`` attributes of the token it descends from. A scope is required: a token
  gets no unscoped token (tokens are not renewable).

The ``/auth/`` paths are public to the app's authentication hook (a body may carry the
password, discovery is anonymous), so every view here authenticates for itself, and
:func:`_authenticate_the_rest` authenticates any other request whose path begins with
``/auth/`` (an OCCI mixin location, say) as the hook would have. Errors are JSON in
Keystone's shape (``{"error": {"code", "title", "message"}}``) with the headers the status
obliges.
"""

from __future__ import annotations

import json
from dataclasses import replace
from http import HTTPStatus
from typing import Any, cast

from flask import Blueprint, Response, current_app, g, request

import auth.flask
from auth.chain import AuthChain
from auth.credentials import Credentials
from auth.principal import Principal
from auth.tokens import Federation, IssuedToken, TokenAuthenticator, TokenRecord, tenants_of
from gateway import json_limits, keystone
from gateway.config import Config
from gateway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NimboError,
    NotAuthenticated,
    NotFound,
)
from gateway.hardening import base_url, whole_body
from occi.http.errors import extra_headers, status_for

bp = Blueprint("auth_tokens", __name__)

AUTH = keystone.AUTH
TOKENS = "/auth/tokens"
KEYSTONE_TOKENS = "/auth/v3/auth/tokens"
V2 = "/auth/v2.0"
V3 = "/auth/v3"
V2_TOKENS = V2 + "/tokens"
V2_TENANTS = V2 + "/tenants"
V3_PROJECTS = V3 + "/auth/projects"
V3_FEDERATION_PROJECTS = V3 + "/OS-FEDERATION/projects"
FEDERATION_AUTH = V3 + "/OS-FEDERATION/identity_providers/<idp>/protocols/<protocol>/auth"
PUBLIC_PATHS = (AUTH,)
"""Prefixes the app's authentication hook leaves alone: the views of this blueprint
authenticate for themselves, :func:`_authenticate_the_rest` any other request below them."""
NO_RENEWAL = (
    "a token cannot get a new token (tokens are not renewable): authenticate with "
    "{accepted} other than X-Auth-Token"
)
NO_UNSCOPED = (
    "a token only gets a token scoped to one of its tenants (auth.tenantName), which expires "
    "with it: tokens are not renewable"
)
NO_UNSCOPED_V3 = (
    "a token only gets a token scoped to one of its projects (auth.scope.project), which "
    "expires with it: tokens are not renewable"
)
NO_BEARER = (
    "send the access token of identity provider {idp} as Authorization: Bearer <token>{more}"
)
# Keystone's name of the method that proved each source's identities.
KEYSTONE_METHODS = {"local": "password", "ldap": "password", "oidc": "mapped", "x509": "external"}


def _chain() -> AuthChain:
    chain: AuthChain = current_app.extensions[auth.flask.EXTENSION]
    return chain


def _config() -> Config:
    return cast(Config, current_app.extensions["nimbostratus"].config)


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def _method_of(principal: Principal) -> str:
    """Keystone's name of the method that proved ``principal`` (not a password in a body)."""
    return KEYSTONE_METHODS.get(principal.source, "external")


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


def _rescoping(token: str, remote_addr: str) -> tuple[Principal, TokenRecord]:
    """The principal of ``token`` and the token's record, for a token scoped from it.

    The chain first (a wrong token counts as a refusal, a disabled account is refused), then
    Redis itself: a token revoked in another process is not rescoped."""
    principal = _chain().authenticate(Credentials(remote_addr=remote_addr, auth_token=token))
    return principal, _tokens().record(token)


def _rescoped_methods(record: TokenRecord) -> tuple[str, ...]:
    """Keystone's methods of a token scoped from ``record``'s: ``token`` and the methods
    that proved the identity in the first place."""
    return ("token", *(m for m in record.methods if m != "token"))


def _check_tenant(principal: Principal, tenant: str, *, noun: str) -> None:
    """Keystone answers a tenant (v2.0) or project (v3) the user has no role on with 401."""
    if tenant not in tenants_of(principal):
        raise NotAuthenticated(
            f"User {principal.name} is unauthorized for {noun} {tenant}: "
            f"its {noun}s are {', '.join(tenants_of(principal))}"
        )


def _request_credentials() -> Credentials:
    return auth.flask.credentials_from(request.headers, request.environ)


def _audit_name(name: str) -> None:
    """Have the audit log name the user a body's password is tried for, as it names the user
    of a Basic header (the password is never recorded)."""
    g.nimbo_audit = {**g.get("nimbo_audit", {}), "principal": name}


def _json(document: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(document) + "\n", status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def _issued(issued: IssuedToken, document: Any) -> Response:
    return _json(document, 201, {"X-Subject-Token": issued.token})


def _base_url() -> str:
    return base_url().rstrip("/")


# --- the guard of the public prefix ----------------------------------------------------------


@bp.before_app_request
def _authenticate_the_rest() -> None:
    """Authenticate a request below :data:`AUTH` that is not for a view of this blueprint,
    as the app's hook does every request outside :data:`PUBLIC_PATHS`: the prefix is public
    for these views only."""
    if request.path.startswith(PUBLIC_PATHS) and request.blueprint != bp.name:
        g.principal = _chain().authenticate(_request_credentials())


# --- views --------------------------------------------------------------------------------


@bp.route(TOKENS, methods=["POST"])
def issue() -> Response:
    tokens = _tokens()
    principal = _authenticate(_request_credentials())
    issued = tokens.issue(principal, methods=(_method_of(principal),))
    return _issued(
        issued,
        {
            "token": issued.token,
            "expires": keystone.timestamp(issued.expires_at),
            "user": principal.name,
            "groups": sorted(principal.groups),
        },
    )


def _issue_keystone(
    token: str | None,
    password: tuple[str, str] | None,
    scope: str | None,
    noun: str,
    unscoped: str,
) -> IssuedToken:
    """The token a Keystone request (v2.0 or v3) asks for, scoped to the tenant or project
    ``scope`` (a ``noun``). Who it is for: the holder of ``token``, rescoped (only with a
    scope, else 401 ``unscoped``: tokens are not renewable; the new one expires with it and
    keeps its methods and federation), or the owner of ``password``, or else whoever the
    request's own credentials name (rOCCI's voms: its certificate, without the X-Auth-Token
    it sends along)."""
    tokens = _tokens()  # 404 where none are issued, before any password is checked
    credentials = _request_credentials()
    until: float | None = None
    federation: Federation | None = None
    if token is not None:
        if scope is None:
            raise NotAuthenticated(unscoped)
        principal, record = _rescoping(token, credentials.remote_addr)
        until, federation, methods = record.expires, record.federation, _rescoped_methods(record)
    elif password is not None:
        _audit_name(password[0])
        principal = _authenticate(
            Credentials(remote_addr=credentials.remote_addr, basic=password)
        )
        methods = ("password",)
    else:
        principal = _authenticate(credentials)
        methods = (_method_of(principal),)
    if scope is not None:
        _check_tenant(principal, scope, noun=noun)
    return tokens.issue(
        principal, tenant=scope, until=until, methods=methods, federation=federation
    )


@bp.route(KEYSTONE_TOKENS, methods=["POST"])
def keystone_issue() -> Response:
    body = keystone.parse_v3(_keystone_body())
    issued = _issue_keystone(body.token, body.password, body.project, "project", NO_UNSCOPED_V3)
    return _issued(issued, {"token": keystone.v3_token(issued, _base_url())})


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


# --- Keystone version discovery ---------------------------------------------------------------


@bp.route(AUTH, methods=["GET"])
def versions() -> Response:
    values = [keystone.version(v, _base_url()) for v in keystone.VERSIONS]
    return _json({"versions": {"values": values}}, 300)


@bp.route(V2, methods=["GET"])
@bp.route(V2 + "/", methods=["GET"])
def version_v2() -> Response:
    return _json({"version": keystone.version("v2.0", _base_url())}, 200)


@bp.route(V3, methods=["GET"])
@bp.route(V3 + "/", methods=["GET"])
def version_v3() -> Response:
    return _json({"version": keystone.version("v3", _base_url())}, 200)


@bp.route(AUTH, methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route(V2, methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route(V2 + "/", methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route(V3, methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route(V3 + "/", methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route(V2_TENANTS, methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route(V3_PROJECTS, methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route(V3_FEDERATION_PROJECTS, methods=["POST", "PUT", "PATCH", "DELETE"])
def read_only() -> Response:
    raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}", ("GET", "HEAD"))


# --- Keystone v2.0 tokens and tenants -------------------------------------------------------


@bp.route(V2_TOKENS, methods=["POST"])
def v2_issue() -> Response:
    body = keystone.parse_v2(_keystone_body())
    issued = _issue_keystone(body.token, body.password, body.tenant, "tenant", NO_UNSCOPED)
    return _json(keystone.v2_access(issued), 200)


@bp.route(V2_TENANTS, methods=["GET"])
def v2_tenants() -> Response:
    principal = _chain().authenticate(_request_credentials())
    tenants = [keystone.tenant_document(name, principal) for name in tenants_of(principal)]
    return _json({"tenants": tenants, "tenants_links": []}, 200)


@bp.route(V2_TOKENS, methods=["GET", "PUT", "PATCH", "DELETE"])
def v2_other_methods() -> Response:
    raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}", ("POST",))


# --- Keystone v3 federation and projects ---------------------------------------------------


@bp.route(FEDERATION_AUTH, methods=["GET", "POST"])
def federation_issue(idp: str, protocol: str) -> Response:
    """An unscoped token for an identity provider's access token (Keystone's federated
    authentication, ``OS-FEDERATION``)."""
    tokens = _tokens()
    federation = _federation(idp, protocol)
    credentials = _request_credentials()
    if credentials.bearer is None:
        more = (
            " (an X-Auth-Token gets no new token: tokens are not renewable)"
            if credentials.auth_token is not None
            else ""
        )
        raise NotAuthenticated(NO_BEARER.format(idp=idp, more=more))
    principal = _chain().authenticate(
        Credentials(remote_addr=credentials.remote_addr, bearer=credentials.bearer)
    )
    issued = tokens.issue(principal, methods=(protocol,), federation=federation)
    return _issued(issued, {"token": keystone.v3_token(issued, _base_url())})


def _federation(idp: str, protocol: str) -> Federation:
    """``idp`` and ``protocol`` of a federation URL, if this server serves them."""
    if _chain().find("oidc") is None:
        raise NotFound(
            "Keystone federation is not enabled on this server: it needs OpenID Connect "
            "(auth_methods does not list 'oidc')"
        )
    idps = _names(_config().keystone_federation_idps)
    if not idps:
        raise NotFound(
            "Keystone federation is not enabled on this server (no identity provider is "
            "configured in keystone_federation_idps)"
        )
    if idp not in idps:
        raise NotFound(f"unknown identity provider {idp!r}: this server knows {', '.join(idps)}")
    protocols = _names(_config().keystone_federation_protocols)
    if protocol not in protocols:
        raise NotFound(
            f"identity provider {idp!r} has no protocol {protocol!r}: use "
            f"{' or '.join(protocols) or 'none (keystone_federation_protocols is empty)'}"
        )
    return Federation(identity_provider=idp, protocol=protocol)


@bp.route(V3_PROJECTS, methods=["GET"])
@bp.route(V3_FEDERATION_PROJECTS, methods=["GET"])
def v3_projects() -> Response:
    """The projects the request's principal may scope a token to: its tenants."""
    principal = _chain().authenticate(_request_credentials())
    projects = [keystone.project_document(name, principal) for name in tenants_of(principal)]
    links = {"self": _base_url() + request.path, "previous": None, "next": None}
    return _json({"projects": projects, "links": links}, 200)


@bp.route(FEDERATION_AUTH, methods=["PUT", "PATCH", "DELETE"])
def federation_other_methods(idp: str, protocol: str) -> Response:
    raise MethodNotAllowed(
        f"{request.method} is not allowed on {request.path}", ("GET", "HEAD", "POST")
    )


# --- request bodies ------------------------------------------------------------------------


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
