"""Keystone v3 federation (gateway.tokens_http): an OpenID Connect access token in at
``/auth/v3/OS-FEDERATION/identity_providers/<idp>/protocols/<protocol>/auth``, an unscoped
token out; ``/auth/v3/auth/projects``; a token rescoped to a project by ``POST
/auth/v3/auth/tokens``. Driven as rOCCI-api's ``KeystoneV3`` handler drives it for ``--auth
oauth2`` (rOCCI-api, lib/occi/api/client/http/authn_plugins/keystone.rb) and by keystoneauth's
``v3oidcaccesstoken`` plugin over real HTTP, against real Redis and a local issuer serving its
JWKS on 127.0.0.1 (tests/auth/jwks_server.py)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from auth.credentials import Credentials
from auth.principal import Principal
from auth.tokens import Federation, TokenAuthenticator, connect
from gateway.errors import NotAuthenticated
from gateway.store.models import User
from tests.auth.jwks_server import AUDIENCE, IdentityProvider, tampered
from tests.auth.keystone import (
    KEYSTONE_URI_REGEXP,
    KEYSTONE_VERSION_REGEXP,
    ROCCI,
    assert_security_headers,
    audited_auth_requests,
    key_of,
    keystone_error,
    stored,
)
from tests.auth.test_oidc import EGI_GROUP, ENTITLEMENTS
from tests.conformance.servers import serving
from tests.gateway.conftest import INFRA, PASSWORD, Node, NodeFactory, basic, category, text_plain

FEDERATION = "/auth/v3/OS-FEDERATION/identity_providers/{idp}/protocols/{protocol}/auth"
EGI_OIDC = FEDERATION.format(idp="egi.eu", protocol="oidc")
KEYSTONE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
GROUPS = ["vo.example.org", "vo.other.eu"]  # what ENTITLEMENTS map to through EGI_GROUP


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the store's engine."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


def federated_node(make_node: NodeFactory, provider: IdentityProvider, **changes: Any) -> Node:
    settings: dict[str, Any] = {
        "auth_methods": "local,oidc,token",
        "oidc_issuer": provider.issuer,
        "oidc_audience": AUDIENCE,
        "oidc_group_pattern": EGI_GROUP,
        **changes,
    }
    return make_node(**settings)


@pytest.fixture
def node(make_node: NodeFactory, identity_provider: IdentityProvider) -> Node:
    return federated_node(make_node, identity_provider)


def access_token(provider: IdentityProvider, **changes: Any) -> str:
    """An access token of ``alice-oidc`` with the EGI entitlements of two groups."""
    return provider.token(provider.claims(eduperson_entitlement=ENTITLEMENTS, **changes))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def federate(node: Node, token: str, path: str = EGI_OIDC, method: str = "POST") -> TestResponse:
    return node.client.open(path, method=method, headers=bearer(token))


def unscoped(node: Node, provider: IdentityProvider) -> str:
    response = federate(node, access_token(provider))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.headers["X-Subject-Token"]


def rescope_body(token: str, **project: Any) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": token}},
            "scope": {"project": project},
        }
    }


def rescope(node: Node, body: Any, headers: dict[str, str] | None = None) -> TestResponse:
    data = body if isinstance(body, str) else json.dumps(body)
    return node.client.post(
        "/auth/v3/auth/tokens",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def scoped(node: Node, token: str, project: str) -> str:
    response = rescope(node, rescope_body(token, id=project))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.headers["X-Subject-Token"]


def occi_get(node: Node, token: str, path: str = "/compute/") -> TestResponse:
    return node.client.get(path, headers={"X-Auth-Token": token, **ROCCI})


# --- the client, step by step as rOCCI-api does it with --auth oauth2 ------------------------


class AuthnError(Exception):
    """rOCCI's Occi::Api::Client::Errors::AuthnError."""


@dataclass
class RocciOauth2:
    """rOCCI-api's Keystone plugin for ``--auth oauth2`` (``@options[:type] == 'oauth2'``,
    ``@options[:token]`` the access token): ``Keystone#setup`` looks for a v3 Keystone only,
    then ``KeystoneV3#set_auth_token``: ``set_oauth2_unscoped_token`` (a GET with the bearer
    token), ``get_first_working_project`` or, with ``ROCCI_CLIENT_KEYSTONE_TENANT``,
    ``set_scoped_token`` at once; ``#authenticate`` GETs ``/-/`` with the token."""

    node: Node
    token: str
    endpoint: str = "http://localhost"
    headers: dict[str, str] = field(default_factory=lambda: dict(ROCCI))
    log: list[tuple[str, str, int]] = field(default_factory=list)

    def call(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> TestResponse:
        response = self.node.client.open(
            url, method=method, headers=headers or self.headers, **kwargs
        )
        self.log.append((method, url.removeprefix(self.endpoint), response.status_code))
        return response

    def req_headers(self) -> dict[str, str]:  # get_req_headers
        return {**self.headers, "Content-Type": "application/json", "Accept": "application/json"}

    def setup(self, tenant: str | None = None) -> None:
        # set_keystone_base_url
        response = self.call("GET", f"{self.endpoint}/-/")
        assert response.status_code == 401
        match = KEYSTONE_URI_REGEXP.match(response.headers["WWW-Authenticate"])
        assert match and match.group(3)
        keystone_url = match.group(3)
        self.headers.pop("X-Auth-Token", None)
        # set_auth_token(tenant, keystone_version = '3')
        response = self.call("GET", keystone_url, headers=self.req_headers())
        assert response.status_code == 300 or 200 <= response.status_code < 300
        if response.status_code == 300:
            versions = sorted(response.get_json()["versions"]["values"], key=lambda v: v["id"])
        else:
            versions = [response.get_json()["version"]]
        for version in versions:
            major = KEYSTONE_VERSION_REGEXP.match(version["id"])
            assert major
            if major.group(1) != "3":
                continue
            for link in version["links"]:
                if link["rel"] != "self":
                    continue
                try:
                    self.v3(link["href"].removesuffix("/"), tenant)
                    return
                except AuthnError:
                    continue
        raise AssertionError("no Keystone v3 worked")

    def v3(self, base_url: str, tenant: str | None) -> None:
        self.set_oauth2_unscoped_token(base_url)
        if tenant:
            self.set_scoped_token(base_url, tenant)
        else:
            self.get_first_working_project(base_url)

    def set_oauth2_unscoped_token(self, base_url: str) -> None:
        headers = {**self.req_headers(), "Authorization": f"Bearer {self.token}"}
        url = f"{base_url}/OS-FEDERATION/identity_providers/egi.eu/protocols/oidc/auth"
        response = self.call("GET", url, headers=headers)
        if response.status_code // 100 != 2 or not response.headers.get("X-Subject-Token"):
            raise AuthnError("Unable to get a token from Keystone, fallback failed!")
        self.headers["X-Auth-Token"] = response.headers["X-Subject-Token"]

    def get_first_working_project(self, base_url: str) -> None:
        response = self.call("GET", f"{base_url}/auth/projects", headers=self.req_headers())
        if response.status_code // 100 != 2 or not response.get_json()["projects"]:
            raise AuthnError("Keystone didn't return any projects, fallback failed!")
        for project in response.get_json()["projects"]:
            try:
                self.set_scoped_token(base_url, project["id"])
                break
            except AuthnError:
                continue

    def set_scoped_token(self, base_url: str, project: str) -> None:
        body = {
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": self.headers["X-Auth-Token"]}},
                "scope": {"project": {"id": project}},
            }
        }
        response = self.call(
            "POST", f"{base_url}/auth/tokens", headers=self.req_headers(), data=json.dumps(body)
        )
        if response.status_code // 100 != 2 or not response.headers.get("X-Subject-Token"):
            raise AuthnError("Unable to get a token from Keystone, fallback failed!")
        self.headers["X-Auth-Token"] = response.headers["X-Subject-Token"]

    def authenticate(self) -> TestResponse:
        return self.call("GET", f"{self.endpoint}/-/")


def test_the_rocci_oauth2_sequence(node: Node, identity_provider: IdentityProvider) -> None:
    client = RocciOauth2(node, access_token(identity_provider))
    client.setup()
    assert client.log == [
        ("GET", "/-/", 401),
        ("GET", "/auth/", 300),
        ("GET", EGI_OIDC, 201),
        ("GET", "/auth/v3/auth/projects", 200),
        ("POST", "/auth/v3/auth/tokens", 201),
    ]
    assert client.authenticate().status_code == 200
    token = client.headers["X-Auth-Token"]
    record = stored(node, token)
    assert (record["name"], record["source"], record["tenant"]) == (
        "alice-oidc",
        "oidc",
        "vo.example.org",  # the first project, sorted
    )
    assert record["federation"] == {"identity_provider": "egi.eu", "protocol": "oidc"}
    assert len(node.connection.keys("nimbo:auth-token:*")) == 2  # unscoped, scoped
    # The scoped token is alice-oidc on OCCI: what it creates is hers.
    assert occi_get(node, token).status_code == 200
    body = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 1.0})
    created = node.client.post(
        "/storage/",
        data=body,
        headers={"X-Auth-Token": token, "Content-Type": "text/plain", **ROCCI},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    row = node.row(created.headers["Location"])
    assert row is not None and row.owner == "alice-oidc"
    with node.store.session() as session:
        user = session.get(User, "alice-oidc")
        assert user is not None and (user.source, sorted(user.groups)) == ("oidc", GROUPS)


def test_the_rocci_oauth2_sequence_with_a_tenant_from_the_environment(
    node: Node, identity_provider: IdentityProvider
) -> None:
    client = RocciOauth2(node, access_token(identity_provider))
    client.setup(tenant="vo.other.eu")  # ROCCI_CLIENT_KEYSTONE_TENANT
    assert [s for _, _, s in client.log] == [401, 300, 201, 201]
    assert stored(node, client.headers["X-Auth-Token"])["tenant"] == "vo.other.eu"
    assert client.authenticate().status_code == 200


def test_keystoneauth_v3oidcaccesstoken_over_http(
    node: Node, identity_provider: IdentityProvider
) -> None:
    """keystoneauth1 (what OpenStack clients use with ``--os-auth-type v3oidcaccesstoken``)
    parses our bodies, scopes by project name and domain, finds the OCCI endpoint in the
    catalog and sends the token on its own."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    with serving(node.app) as url:
        auth = v3.OidcAccessToken(
            auth_url=url + "auth/v3",
            identity_provider="egi.eu",
            protocol="openid",
            access_token=access_token(identity_provider),
            project_name="vo.other.eu",
            project_domain_id="default",
        )
        client = session.Session(auth=auth)
        assert client.get_endpoint(service_type="occi", interface="public") == url
        access = auth.get_access(client)
        assert access.is_federated and access.user_id == "alice-oidc"
        assert (access.project_id, access.project_name) == ("vo.other.eu", "vo.other.eu")
        assert stored(node, access.auth_token)["tenant"] == "vo.other.eu"
        response = client.get(url + "compute/", headers={"Accept": "text/uri-list"})
        assert response.status_code == 200


# --- the documents --------------------------------------------------------------------------


def test_the_federated_token_and_the_projects_in_keystone_s_shapes(
    node: Node, identity_provider: IdentityProvider
) -> None:
    response = federate(node, access_token(identity_provider))
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    token = response.headers["X-Subject-Token"]
    document = response.get_json()["token"]
    assert document == {
        "methods": ["oidc"],
        "user": {
            "id": "alice-oidc",
            "name": "alice-oidc",
            "domain": {"id": "Federated", "name": "Federated"},
            "OS-FEDERATION": {
                "identity_provider": {"id": "egi.eu"},
                "protocol": {"id": "oidc"},
                "groups": [{"id": "vo.example.org"}, {"id": "vo.other.eu"}],
            },
        },
        "issued_at": document["issued_at"],
        "expires_at": document["expires_at"],
    }
    assert KEYSTONE_TIME.match(document["issued_at"]) and KEYSTONE_TIME.match(
        document["expires_at"]
    )
    assert document["issued_at"] < document["expires_at"]
    assert stored(node, token)["tenant"] is None
    projects = node.client.get("/auth/v3/auth/projects", headers={"X-Auth-Token": token})
    assert projects.status_code == 200
    assert projects.get_json() == {
        "projects": [
            {
                "id": name,
                "name": name,
                "enabled": True,
                "domain_id": "default",
                "parent_id": "default",
                "is_domain": False,
                "description": f"group {name}",
            }
            for name in GROUPS
        ],
        "links": {"self": "http://localhost/auth/v3/auth/projects", "previous": None, "next": None},
    }
    legacy = node.client.get("/auth/v3/OS-FEDERATION/projects", headers={"X-Auth-Token": token})
    assert legacy.get_json()["projects"] == projects.get_json()["projects"]
    # The same tenants as v2.0 lists.
    tenants = node.client.get("/auth/v2.0/tenants", headers={"X-Auth-Token": token}).get_json()
    assert [t["id"] for t in tenants["tenants"]] == [
        p["id"] for p in projects.get_json()["projects"]
    ]


def test_the_scoped_token_s_document_and_expiry(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    node = federated_node(make_node, identity_provider, public_url="https://cloud.example.org/occi")
    first = federate(
        node, access_token(identity_provider), FEDERATION.format(idp="egi.eu", protocol="openid")
    )
    token = first.headers["X-Subject-Token"]
    time.sleep(0.05)  # the scoped token is issued later, yet expires at the same moment
    response = rescope(node, rescope_body(token, name="vo.other.eu", domain={"id": "default"}))
    assert response.status_code == 201, response.get_data(as_text=True)
    document = response.get_json()["token"]
    assert document["methods"] == ["token", "openid"]
    assert document["user"]["OS-FEDERATION"]["protocol"] == {"id": "openid"}
    assert document["project"] == {
        "id": "vo.other.eu",
        "name": "vo.other.eu",
        "domain": {"id": "default", "name": "Default"},
    }
    assert document["catalog"] == [
        {
            "id": "occi",
            "type": "occi",
            "name": "nimbostratus",
            "endpoints": [
                {
                    "id": "occi-public",
                    "interface": "public",
                    "region": None,
                    "region_id": None,
                    "url": "https://cloud.example.org/occi/",
                }
            ],
        }
    ]
    assert (document["roles"], document["is_domain"]) == ([], False)
    assert document["issued_at"] > first.get_json()["token"]["issued_at"]
    assert document["expires_at"] == first.get_json()["token"]["expires_at"]
    again = scoped(node, response.headers["X-Subject-Token"], "vo.example.org")
    assert stored(node, again)["expires"] == stored(node, token)["expires"]
    # Keystone v2.0 rescopes a federated token too, and the record keeps where it came from.
    v2 = node.client.post(
        "/auth/v2.0/tokens", json={"auth": {"token": {"id": token}, "tenantName": "vo.other.eu"}}
    )
    assert v2.status_code == 200, v2.get_data(as_text=True)
    record = stored(node, v2.get_json()["access"]["token"]["id"])
    assert record["federation"] == {"identity_provider": "egi.eu", "protocol": "openid"}
    assert record["methods"] == ["token", "openid"]


def test_a_password_token_is_scoped_the_same_way(
    node: Node, identity_provider: IdentityProvider
) -> None:
    with node.store.session(write=True) as session:
        alice = session.get(User, "alice")
        assert alice is not None
        alice.groups = ["physics"]
    password = {
        "methods": ["password"],
        "password": {"user": {"name": "alice", "password": PASSWORD}},
    }
    direct = rescope(
        node, {"auth": {"identity": password, "scope": {"project": {"id": "physics"}}}}
    )
    assert direct.status_code == 201, direct.get_data(as_text=True)
    document = direct.get_json()["token"]
    assert document["methods"] == ["password"] and "OS-FEDERATION" not in document["user"]
    assert document["user"]["domain"] == {"id": "default", "name": "Default"}
    assert document["project"]["id"] == "physics" and document["catalog"][0]["type"] == "occi"
    unscoped_token = rescope(node, {"auth": {"identity": password}}).headers["X-Subject-Token"]
    rescoped = rescope(node, rescope_body(unscoped_token, id="physics"))
    assert rescoped.get_json()["token"]["methods"] == ["token", "password"]
    assert occi_get(node, rescoped.headers["X-Subject-Token"]).status_code == 200
    refused = rescope(node, {"auth": {"identity": password, "scope": {"project": {"id": "cms"}}}})
    assert "User alice is unauthorized for project cms" in keystone_error(refused, 401)


# --- refusals --------------------------------------------------------------------------------


def test_bad_expired_and_missing_access_tokens_get_no_token(
    node: Node, identity_provider: IdentityProvider
) -> None:
    now = int(time.time())
    good = access_token(identity_provider)
    for case, headers, fragment in (
        ("expired", bearer(access_token(identity_provider, exp=now - 120)), "has expired"),
        ("tampered", bearer(tampered(good, sub="mallory")), "signature does not verify"),
        ("audience", bearer(access_token(identity_provider, aud="elsewhere")), "wrong audience"),
        ("not a JWT", bearer("not-a-jwt"), "not a well-formed JWT"),
        ("nothing", {}, "send the access token of identity provider egi.eu as Authorization"),
        ("Basic", basic("alice"), "send the access token of identity provider egi.eu"),
    ):
        for method in ("GET", "POST"):
            response = node.client.open(EGI_OIDC, method=method, headers={**ROCCI, **headers})
            assert fragment in keystone_error(response, 401), (case, method)
            assert response.headers["WWW-Authenticate"] == "Keystone uri='http://localhost/auth/'"
    assert node.connection.keys("nimbo:auth-token:*") == []
    # A token of ours does not get a new one here: tokens are not renewable.
    token = unscoped(node, identity_provider)
    renewal = node.client.get(EGI_OIDC, headers={"X-Auth-Token": token})
    assert "not renewable" in keystone_error(renewal, 401)
    # Beside a good bearer token, an X-Auth-Token (rOCCI keeps one) is not a credential.
    beside = node.client.get(EGI_OIDC, headers={"X-Auth-Token": "junk", **bearer(good)})
    assert beside.status_code == 201
    assert len(node.connection.keys("nimbo:auth-token:*")) == 2


def test_an_unknown_identity_provider_or_protocol_is_404(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    node = federated_node(make_node, identity_provider)
    token = access_token(identity_provider)
    unknown_idp = federate(node, token, FEDERATION.format(idp="elixir", protocol="oidc"))
    assert "unknown identity provider 'elixir': this server knows egi.eu" in keystone_error(
        unknown_idp, 404
    )
    unknown_protocol = federate(node, token, FEDERATION.format(idp="egi.eu", protocol="saml2"))
    assert "has no protocol 'saml2': use openid or oidc" in keystone_error(unknown_protocol, 404)
    assert node.connection.keys("nimbo:auth-token:*") == []
    # Configured otherwise: these names, and only these.
    other = federated_node(
        make_node,
        identity_provider,
        keystone_federation_idps="elixir, egi.eu",
        keystone_federation_protocols="mapped",
    )
    assert (
        federate(other, token, FEDERATION.format(idp="elixir", protocol="mapped")).status_code
        == 201
    )
    assert "has no protocol 'oidc': use mapped" in keystone_error(federate(other, token), 404)


def test_federation_disabled_is_404_saying_so(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    token = access_token(identity_provider)
    without_oidc = make_node(auth_methods="local,token")
    refused = federate(without_oidc, token)
    assert "federation is not enabled" in keystone_error(refused, 404)
    assert "auth_methods does not list 'oidc'" in refused.get_json()["error"]["message"]
    without_idps = federated_node(make_node, identity_provider, keystone_federation_idps="")
    refused = federate(without_idps, token)
    assert "federation is not enabled" in keystone_error(refused, 404)
    # Without the token method there is no Keystone at all: OCCI answers the path.
    no_tokens = federated_node(make_node, identity_provider, auth_methods="local,oidc")
    assert federate(no_tokens, token).status_code == 404
    assert without_oidc.connection.keys("nimbo:auth-token:*") == []


def test_scoping_to_a_project_the_user_is_not_in_is_refused(
    node: Node, identity_provider: IdentityProvider
) -> None:
    token = unscoped(node, identity_provider)
    for body, status, fragment in (
        (rescope_body(token, id="cms"), 401, "User alice-oidc is unauthorized for project cms"),
        (rescope_body(token, id="default"), 401, "its projects are vo.example.org, vo.other.eu"),
        (
            rescope_body(token, name="vo.other.eu", domain={"name": "EGI"}),
            401,
            "no project vo.other.eu in that domain",
        ),
        (rescope_body(token + "x", id="vo.other.eu"), 401, "unknown or expired token"),
        (
            {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}},
            401,
            "not renewable",
        ),
        (
            {
                "auth": {
                    "identity": {"methods": ["token"], "token": {"id": token}},
                    "scope": "unscoped",
                }
            },
            401,
            "not renewable",
        ),
    ):
        response = rescope(node, body, headers=ROCCI)
        assert fragment in keystone_error(response, status), body
        if status == 401:
            assert response.headers["WWW-Authenticate"] == "Keystone uri='http://localhost/auth/'"
    assert len(node.connection.keys("nimbo:auth-token:*")) == 1  # the unscoped one alone


@pytest.mark.parametrize(
    ("scope", "fragment"),
    [
        ({"domain": {"id": "default"}}, "auth.scope names domain: only projects"),
        ({"project": {}}, "auth.scope.project needs an id or a name"),
        ({"project": {"id": 7}}, "auth.scope.project.id must be a non-empty string"),
        ({"project": {"id": "a", "name": "b"}}, "name different projects"),
        ({"project": "a"}, "project must be a JSON object"),
        (["project"], 'auth.scope must be {"project": {"id": ...}} or "unscoped"'),
    ],
)
def test_malformed_scopes_are_400(
    node: Node, identity_provider: IdentityProvider, scope: Any, fragment: str
) -> None:
    token = unscoped(node, identity_provider)
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}, "scope": scope}}
    assert fragment in keystone_error(rescope(node, body), 400)


@pytest.mark.parametrize(
    ("identity", "fragment"),
    [
        ({"methods": ["token"], "token": {}}, "auth.identity.token needs an id"),
        ({"methods": ["token", "password"]}, "names password and token: use one"),
        ({"methods": ["token", "totp"]}, "unsupported identity method(s) totp"),
        ({"methods": []}, "unsupported identity method(s) none"),
    ],
)
def test_malformed_token_identities_are_400(node: Node, identity: Any, fragment: str) -> None:
    body = {"auth": {"identity": identity, "scope": {"project": {"id": "vo.other.eu"}}}}
    assert fragment in keystone_error(rescope(node, body), 400)


def test_revoked_tokens_are_dead_everywhere(
    node: Node, identity_provider: IdentityProvider
) -> None:
    token = unscoped(node, identity_provider)
    scoped_token = scoped(node, token, "vo.example.org")
    assert occi_get(node, scoped_token).status_code == 200
    revoked = node.client.delete(
        "/auth/v3/auth/tokens",
        headers={"X-Auth-Token": scoped_token, "X-Subject-Token": scoped_token},
    )
    assert revoked.status_code == 204
    refused = occi_get(node, scoped_token)
    assert refused.status_code == 401 and "unknown or expired token" in refused.get_data(
        as_text=True
    )
    again = rescope(node, rescope_body(scoped_token, id="vo.other.eu"))
    assert "unknown or expired token" in keystone_error(again, 401)
    # The unscoped token still works until it is revoked in its turn.
    other = scoped(node, token, "vo.other.eu")
    revoked = node.client.delete("/auth/v3/auth/tokens", headers={"X-Auth-Token": token})
    assert revoked.status_code == 204
    for path in ("/auth/v3/auth/projects", "/auth/v3/OS-FEDERATION/projects"):
        response = node.client.get(path, headers={"X-Auth-Token": token})
        assert "unknown or expired token" in keystone_error(response, 401), path
    assert "unknown or expired token" in keystone_error(
        rescope(node, rescope_body(token, id="vo.other.eu")), 401
    )
    assert occi_get(node, other).status_code == 200  # a scoped token lives on (as in Keystone)
    assert not node.connection.exists(key_of(token))


def test_other_methods_and_anonymous_listings(node: Node) -> None:
    for method in ("PUT", "PATCH", "DELETE"):
        response = node.client.open(EGI_OIDC, method=method)
        assert keystone_error(response, 405) == f"{method} is not allowed on {EGI_OIDC}"
        assert response.headers["Allow"] == "GET, HEAD, POST"
    for path in ("/auth/v3/auth/projects", "/auth/v3/OS-FEDERATION/projects"):
        response = node.client.post(path)
        assert keystone_error(response, 405) == f"POST is not allowed on {path}"
        anonymous = node.client.get(path, headers=ROCCI)
        assert "authentication required" in keystone_error(anonymous, 401)
        assert anonymous.headers["WWW-Authenticate"] == "Keystone uri='http://localhost/auth/'"
    # Below the federation root, nothing else is public.
    assert node.client.get(EGI_OIDC + "/more").status_code == 401


def test_the_answers_are_hardened_and_audited_without_tokens(
    node: Node, identity_provider: IdentityProvider
) -> None:
    jwt = access_token(identity_provider)
    issued = federate(node, jwt)
    token = issued.headers["X-Subject-Token"]
    refused = federate(node, access_token(identity_provider, aud="elsewhere"))
    scoped_response = rescope(node, rescope_body(token, id="vo.other.eu"))
    listing = node.client.get("/auth/v3/auth/projects", headers={"X-Auth-Token": token})
    assert_security_headers(issued, refused, scoped_response, listing)
    found, text = audited_auth_requests(node)
    assert found == [
        ("alice-oidc", EGI_OIDC, 201),
        ("", EGI_OIDC, 401),
        ("alice-oidc", "/auth/v3/auth/tokens", 201),
    ]
    for secret in (jwt, token, scoped_response.headers["X-Subject-Token"]):
        assert secret not in text


# --- the token store alone --------------------------------------------------------------------


def test_records_keep_methods_and_federation_and_older_records_still_read(
    redis_url: str,
) -> None:
    connection = connect(redis_url)
    try:
        tokens = TokenAuthenticator(connection, ttl=60, cache_seconds=0)
        alice = Principal("alice-oidc", "Alice", frozenset({"vo"}), source="oidc")
        egi = Federation(identity_provider="egi.eu", protocol="openid")
        issued = tokens.issue(alice, methods=["openid"], federation=egi)
        assert (issued.methods, issued.federation) == (("openid",), egi)
        record = tokens.record(issued.token)
        assert (record.principal, record.tenant, record.methods, record.federation) == (
            alice,
            None,
            ("openid",),
            egi,
        )
        assert record.issued <= record.expires == tokens.expiry(issued.token)
        # A record written before methods and federation were kept (another process, older
        # code, during an upgrade) reads as unrecorded.
        old = {
            "name": "bob",
            "display_name": "Bob",
            "groups": ["g"],
            "admin": False,
            "source": "local",
            "issued": time.time(),
            "expires": time.time() + 30,
            "tenant": "g",
        }
        connection.set(key_of("an-older-token"), json.dumps(old), ex=30)
        older = tokens.record("an-older-token")
        assert (older.principal.name, older.tenant, older.methods, older.federation) == (
            "bob",
            "g",
            (),
            None,
        )
        assert tokens.authenticate(Credentials(auth_token="an-older-token")) == older.principal
        tokens.revoke(issued.token)
        with pytest.raises(NotAuthenticated, match="unknown or expired"):
            tokens.record(issued.token)
    finally:
        connection.close()


def test_an_unreachable_issuer_is_503_not_401(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    token = access_token(identity_provider)
    node = federated_node(make_node, identity_provider)
    identity_provider.stop()
    response = federate(node, token)
    assert "identity provider cannot be reached" in keystone_error(response, 503)
    assert "Retry-After" in response.headers
    assert node.connection.keys("nimbo:auth-token:*") == []
