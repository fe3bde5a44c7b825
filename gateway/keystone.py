"""Keystone's documents, for :mod:`gateway.tokens_http`: the bodies of v2.0 and v3 token
requests parsed into :class:`V2Auth` and :class:`V3Auth`, and the version, tenant, project,
token and catalog documents rendered the way Keystone renders them. Pure functions: no Flask,
no I/O (the views pass the base URL in); a body that asks for something malformed is an
:class:`~gateway.errors.InvalidRequest` saying what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auth.principal import Principal
from auth.tokens import IssuedToken
from gateway.errors import InvalidRequest, NotAuthenticated

AUTH = "/auth/"
"""Where the Keystone API lives below the base URL (the challenge names it)."""
V2_METHODS = "passwordCredentials, voms (true) or token (with tenantName)"
V3_METHODS = ("password", "token")
DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
"""Keystone's default domain: the one of local users and of every project here."""
FEDERATED_DOMAIN = {"id": "Federated", "name": "Federated"}
"""The domain Keystone gave users that exist only through federation."""


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and ``Z``, as Keystone writes them."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- version discovery ----------------------------------------------------------------------

# Identity API version documents as Keystone serves them at its root (300 Multiple Choices,
# no Location: HTTParty would follow one) and at each version's root (200).
# Path below AUTH -> (id, updated). rOCCI reads the id's major number and the self link.
VERSIONS = {"v2.0": ("v2.0", "2014-04-17T00:00:00Z"), "v3": ("v3.0", "2013-03-06T00:00:00Z")}


def version(path: str, base_url: str) -> dict[str, Any]:
    """The version document of ``path`` (a key of :data:`VERSIONS`) below ``base_url``."""
    version_id, updated = VERSIONS[path]
    media_type = f"application/vnd.openstack.identity-{path}+json"
    return {
        "id": version_id,
        "status": "stable",
        "updated": updated,
        "media-types": [{"base": "application/json", "type": media_type}],
        "links": [{"rel": "self", "href": f"{base_url}{AUTH}{path}/"}],
    }


# --- v2.0 -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class V2Auth:
    """What a Keystone v2.0 ``POST /tokens`` body asks for: exactly one of ``password``,
    ``voms`` and ``token``, and perhaps a tenant."""

    password: tuple[str, str] | None = None
    voms: bool = False
    token: str | None = None
    tenant: str | None = None


def parse_v2(document: dict[str, Any] | None) -> V2Auth:
    """What the v2.0 body ``document`` asks for."""
    if document is None or "auth" not in document:
        raise InvalidRequest(f'the body must be {{"auth": {{...}}}} with {V2_METHODS}')
    auth_ = _object(document, "auth")
    given = [m for m in ("passwordCredentials", "voms", "token") if m in auth_]
    if len(given) != 1:
        raise InvalidRequest(
            f"auth needs exactly one of {V2_METHODS}; it has {', '.join(given) or 'none'}"
        )
    tenant = _v2_tenant(auth_)
    if "voms" in auth_:
        if auth_["voms"] is not True:
            raise InvalidRequest("auth.voms must be true (the credentials are the request's own)")
        return V2Auth(voms=True, tenant=tenant)
    if "token" in auth_:
        token_id = _object(auth_, "token").get("id")
        if not isinstance(token_id, str) or not token_id:
            raise InvalidRequest("auth.token needs an id (a token this server issued)")
        return V2Auth(token=token_id, tenant=tenant)
    credentials = _object(auth_, "passwordCredentials")
    name = credentials.get("username", credentials.get("userId"))
    password = credentials.get("password")
    if not isinstance(name, str) or not name or not isinstance(password, str):
        raise InvalidRequest("auth.passwordCredentials needs a username and a password")
    return V2Auth(password=(name, password), tenant=tenant)


def _v2_tenant(auth_: dict[str, Any]) -> str | None:
    """The tenant of ``tenantName`` and/or ``tenantId`` (one value: ids are names here)."""
    values = []
    for field in ("tenantName", "tenantId"):
        value = auth_.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise InvalidRequest(f"auth.{field} must be a non-empty string")
        values.append(value)
    if len(set(values)) > 1:
        raise InvalidRequest("auth.tenantName and auth.tenantId name different tenants")
    return values[0] if values else None


def v2_access(issued: IssuedToken) -> dict[str, Any]:
    """Identity API v2.0's answer to "Authenticate": the token, its tenant, the user."""
    principal = issued.principal
    token: dict[str, Any] = {
        "id": issued.token,
        "issued_at": timestamp(issued.issued_at),
        "expires": timestamp(issued.expires_at),
    }
    if issued.tenant is not None:
        token["tenant"] = tenant_document(issued.tenant, principal)
    return {
        "access": {
            "token": token,
            "user": {
                "id": principal.name,
                "name": principal.name,
                "username": principal.name,
                "roles": [],
                "roles_links": [],
            },
            "serviceCatalog": [],
            "metadata": {"is_admin": int(principal.is_admin), "roles": []},
        }
    }


def tenant_document(name: str, principal: Principal) -> dict[str, Any]:
    """A tenant document; its id is its name (a group's name is unique and stable)."""
    description = f"group {name}" if name in principal.groups else f"{principal.name} alone"
    return {"id": name, "name": name, "enabled": True, "description": description}


# --- v3 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class V3Auth:
    """What a Keystone v3 ``POST /auth/tokens`` body asks for: a ``password`` or a ``token``
    identity, or none (the request's own credentials count), and perhaps a project."""

    password: tuple[str, str] | None = None
    token: str | None = None
    project: str | None = None


def parse_v3(document: dict[str, Any] | None) -> V3Auth:
    """What the v3 body ``document`` asks for (None: no body)."""
    if document is None:
        return V3Auth()
    auth_ = _object(document, "auth")
    project = _v3_project(auth_)
    identity = _object(auth_, "identity")
    if not identity:
        return V3Auth(project=project)
    methods = identity.get("methods")
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise InvalidRequest("auth.identity.methods must be a list of method names")
    unsupported = [m for m in methods if m not in V3_METHODS]
    if unsupported or not methods:
        raise InvalidRequest(
            f"unsupported identity method(s) {', '.join(unsupported) or 'none'}: use 'password', "
            "'token' (with a project scope), or send no identity and authenticate the request "
            "itself"
        )
    if len(set(methods)) > 1:
        raise InvalidRequest("auth.identity.methods names password and token: use one of them")
    if methods[0] == "token":
        token_id = _object(identity, "token").get("id")
        if not isinstance(token_id, str) or not token_id:
            raise InvalidRequest("auth.identity.token needs an id (a token this server issued)")
        return V3Auth(token=token_id, project=project)
    user = _object(_object(identity, "password"), "user")
    name = user.get("name", user.get("id"))
    password = user.get("password")
    if not isinstance(name, str) or not name or not isinstance(password, str):
        raise InvalidRequest("auth.identity.password.user needs a name (or id) and a password")
    return V3Auth(password=(name, password), project=project)


def _v3_project(auth_: dict[str, Any]) -> str | None:
    """The project of ``auth.scope`` (an id, or a name in the default domain); None when
    the body asks for no scope."""
    scope = auth_.get("scope")
    if scope is None or scope == "unscoped":
        return None
    if not isinstance(scope, dict):
        raise InvalidRequest('auth.scope must be {"project": {"id": ...}} or "unscoped"')
    others = sorted(k for k in scope if k != "project")
    if others:
        raise InvalidRequest(
            f"auth.scope names {', '.join(others)}: only projects (the user's groups) are "
            'served, as {"project": {"id": ...}}'
        )
    project = _object(scope, "project")
    values = {}
    for field in ("id", "name"):
        value = project.get(field)
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidRequest(f"auth.scope.project.{field} must be a non-empty string")
        if value is not None:
            values[field] = value
    if not values:
        raise InvalidRequest("auth.scope.project needs an id or a name")
    if len(set(values.values())) > 1:
        raise InvalidRequest("auth.scope.project's id and name name different projects")
    if "id" not in values:  # a name is unique within its domain only
        domain = _object(project, "domain")
        if (
            domain.get("id", DEFAULT_DOMAIN["id"]) != DEFAULT_DOMAIN["id"]
            or domain.get("name", DEFAULT_DOMAIN["name"]) != DEFAULT_DOMAIN["name"]
        ):
            raise NotAuthenticated(
                f"no project {values['name']} in that domain: every project here is in "
                f"domain {DEFAULT_DOMAIN['id']} ({DEFAULT_DOMAIN['name']})"
            )
    return next(iter(values.values()))


def v3_token(issued: IssuedToken, base_url: str) -> dict[str, Any]:
    """Keystone v3's ``token`` document of ``issued``: a project scope brings the project and
    a catalog, a federated origin the user's ``OS-FEDERATION`` attributes."""
    principal = issued.principal
    user: dict[str, Any] = {"id": principal.name, "name": principal.name}
    user["domain"] = dict(DEFAULT_DOMAIN if issued.federation is None else FEDERATED_DOMAIN)
    if issued.federation is not None:
        user["OS-FEDERATION"] = {
            "identity_provider": {"id": issued.federation.identity_provider},
            "protocol": {"id": issued.federation.protocol},
            "groups": [{"id": group} for group in sorted(principal.groups)],
        }
    token: dict[str, Any] = {
        "methods": list(issued.methods),
        "user": user,
        "issued_at": timestamp(issued.issued_at),
        "expires_at": timestamp(issued.expires_at),
    }
    if issued.tenant is not None:
        project = {"id": issued.tenant, "name": issued.tenant, "domain": dict(DEFAULT_DOMAIN)}
        token["project"] = project
        token["is_domain"] = False
        token["roles"] = []
        token["catalog"] = catalog(base_url)
    return token


def catalog(base_url: str) -> list[dict[str, Any]]:
    """The service catalog of a scoped token: the OCCI root at ``base_url``."""
    endpoint = {
        "id": "occi-public",
        "interface": "public",
        "region": None,
        "region_id": None,
        "url": base_url + "/",
    }
    return [{"id": "occi", "type": "occi", "name": "nimbostratus", "endpoints": [endpoint]}]


def project_document(name: str, principal: Principal) -> dict[str, Any]:
    """A v3 project document: a tenant (its id is its name) in the default domain."""
    return {
        "id": name,
        "name": name,
        "enabled": True,
        "domain_id": DEFAULT_DOMAIN["id"],
        "parent_id": DEFAULT_DOMAIN["id"],
        "is_domain": False,
        "description": tenant_document(name, principal)["description"],
    }


def _object(document: dict[str, Any], field: str) -> dict[str, Any]:
    value = document.get(field, {})
    if not isinstance(value, dict):
        raise InvalidRequest(f"{field} must be a JSON object")
    return value
