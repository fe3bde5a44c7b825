"""The Keystone v2.0 subset rOCCI clients use (gateway.tokens_http): version discovery,
``POST /auth/v2.0/tokens`` by password, by the request's own credentials (``voms``) and by a
token (rescoping), ``GET /auth/v2.0/tenants``; driven as rOCCI-api's Keystone plugin drives it
(gwdg/rOCCI-api, lib/occi/api/client/http/authn_plugins/keystone.rb), against real Redis."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from gateway.store.models import User
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
from tests.gateway.conftest import PASSWORD, Node, NodeFactory, basic

TRUSTED = "192.0.2.10"
ALICE_DN = "/DC=org/DC=example/O=Example/CN=Alice Smith"
MAP = f'"{ALICE_DN}" asmith,physics,cms\n'


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the store's engine."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


@pytest.fixture
def node(make_node: NodeFactory) -> Node:
    node = make_node(auth_methods="local,token")
    with node.store.session(write=True) as session:
        alice = session.get(User, "alice")
        assert alice is not None
        alice.groups = ["vo.example.org", "physics"]
    return node


def password_body(user: str = "alice", password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"auth": {"passwordCredentials": {"username": user, "password": password}, **extra}}


def post(node: Node, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> TestResponse:
    data = body if isinstance(body, str) else json.dumps(body)
    return node.client.post(
        "/auth/v2.0/tokens",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        **kw,
    )


def token_of(response: TestResponse) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    token: str = response.get_json()["access"]["token"]["id"]
    return token


# --- the client, step by step as rOCCI-api does it --------------------------------------------


@dataclass
class Rocci:
    """rOCCI-api's Keystone plugin: ``Keystone#setup`` then ``#authenticate``, ``KeystoneV2``
    for the version it finds. ``body`` is ``get_keystone_req`` without the tenant; ``environ``
    stands for the TLS connection (a trusted front end's address)."""

    node: Node
    body: dict[str, Any]
    endpoint: str = "http://localhost"
    environ: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=lambda: dict(ROCCI))
    log: list[tuple[str, str, int]] = field(default_factory=list)
    certificate: dict[str, str] = field(default_factory=dict)
    """Front-end headers of a client certificate, sent below /auth/ only (a front end that
    asks for certificates there alone, as keystone-voms sites did)."""

    def call(self, method: str, url: str, **kwargs: Any) -> TestResponse:
        headers = {**self.headers, "Content-Type": "application/json", "Accept": "application/json"}
        if "/auth/" in url:
            headers.update(self.certificate)
        response = self.node.client.open(
            url, method=method, headers=headers, environ_base=self.environ, **kwargs
        )
        self.log.append((method, url, response.status_code))
        return response

    def setup(self, tenant: str | None = None) -> None:
        # set_keystone_base_url
        response = self.call("GET", f"{self.endpoint}/-/")
        if response.status_code // 100 == 2:
            return
        assert response.status_code == 401
        match = KEYSTONE_URI_REGEXP.match(response.headers["WWW-Authenticate"])
        assert match and match.group(3)
        keystone_url = match.group(3)
        self.headers.pop("X-Auth-Token", None)
        # set_auth_token: success or multiple choices
        response = self.call("GET", keystone_url)
        assert response.status_code == 300 or 200 <= response.status_code < 300
        if response.status_code == 300:
            versions = sorted(response.get_json()["versions"]["values"], key=lambda v: v["id"])
        else:
            versions = [response.get_json()["version"]]
        for version in versions:
            major = KEYSTONE_VERSION_REGEXP.match(version["id"])
            assert major
            assert major.group(1) == "2", "v2.0 sorts first and works: v3 is never tried"
            for link in version["links"]:
                if link["rel"] == "self":
                    self.v2(link["href"].removesuffix("/"), tenant)
                    return
        raise AssertionError("no Keystone version worked")

    def v2(self, base_url: str, tenant: str | None) -> None:
        if tenant:
            self.v2_authenticate(base_url, tenant)
            return
        self.v2_authenticate(base_url, None)
        response = self.call("GET", f"{base_url}/tenants")
        assert response.status_code == 200 and response.get_json()["tenants"]
        for found in response.get_json()["tenants"]:
            if self.v2_authenticate(base_url, found["name"]):
                break

    def v2_authenticate(self, base_url: str, tenant: str | None) -> bool:
        body = json.loads(json.dumps(self.body))
        if tenant:
            body["auth"]["tenantName"] = tenant
        response = self.call("POST", f"{base_url}/tokens", data=json.dumps(body))
        if response.status_code // 100 != 2 or not response.get_json().get("access"):
            return False
        self.headers["X-Auth-Token"] = response.get_json()["access"]["token"]["id"]
        return True

    def authenticate(self) -> TestResponse:
        return self.call("GET", f"{self.endpoint}/-/")


# --- discovery ---------------------------------------------------------------------------------


def test_version_discovery_is_public_and_in_keystone_s_shapes(make_node: NodeFactory) -> None:
    node = make_node(auth_methods="local,token", public_url="https://cloud.example.org/occi")
    root = node.client.get("/auth/", headers={"Accept": "application/json"})
    assert root.status_code == 300 and "Location" not in root.headers  # HTTParty follows one
    assert root.headers["Content-Type"] == "application/json"
    values = root.get_json()["versions"]["values"]
    assert [(v["id"], v["status"]) for v in values] == [("v2.0", "stable"), ("v3.0", "stable")]
    assert [v["links"] for v in values] == [
        [{"rel": "self", "href": "https://cloud.example.org/occi/auth/v2.0/"}],
        [{"rel": "self", "href": "https://cloud.example.org/occi/auth/v3/"}],
    ]
    for path, version in (
        ("/auth/v2.0", values[0]),
        ("/auth/v2.0/", values[0]),
        ("/auth/v3", values[1]),
        ("/auth/v3/", values[1]),
    ):
        response = node.client.get(path)
        assert response.status_code == 200, path
        assert response.get_json() == {"version": version}, path
    assert node.client.head("/auth/").status_code == 300
    refused = node.client.post("/auth/v2.0/")
    assert keystone_error(refused, 405) == "POST is not allowed on /auth/v2.0/"
    assert refused.headers["Allow"] == "GET, HEAD"


def test_only_these_views_are_public_below_auth(node: Node) -> None:
    """/auth/ is a public prefix for the app's hook; anything else below it is authenticated
    as any other path (the OCCI views answer it)."""
    anonymous = node.client.get("/auth/elsewhere/")
    assert anonymous.status_code == 401
    assert node.client.get("/auth/elsewhere/", headers=basic("alice")).status_code == 404
    assert node.client.get("/auth/v2.0/tenants").status_code == 401
    assert node.client.get("/auth/v2.0/tokens").status_code == 405


# --- the rOCCI sequences ---------------------------------------------------------------------


def test_the_rocci_password_sequence(node: Node) -> None:
    client = Rocci(node, password_body())
    client.setup()
    assert [(m, u.removeprefix("http://localhost"), s) for m, u, s in client.log] == [
        ("GET", "/-/", 401),
        ("GET", "/auth/", 300),
        ("POST", "/auth/v2.0/tokens", 200),
        ("GET", "/auth/v2.0/tenants", 200),
        ("POST", "/auth/v2.0/tokens", 200),
    ]
    assert client.authenticate().status_code == 200
    token = client.headers["X-Auth-Token"]
    record = stored(node, token)
    assert (record["name"], record["tenant"]) == ("alice", "physics")  # the first, sorted
    assert len(node.connection.keys("nimbo:auth-token:*")) == 2  # unscoped, scoped
    response = node.client.get("/compute/", headers={"X-Auth-Token": token, **ROCCI})
    assert response.status_code == 200


def test_the_shapes_of_tokens_and_tenants(node: Node) -> None:
    unscoped = post(node, password_body())
    access = unscoped.get_json()["access"]
    assert set(access) == {"token", "user", "serviceCatalog", "metadata"}
    assert access["serviceCatalog"] == [] and "tenant" not in access["token"]
    assert access["user"]["name"] == access["user"]["username"] == "alice"
    assert unscoped.headers["Cache-Control"] == "no-store"
    assert access["token"]["issued_at"] < access["token"]["expires"]
    tenants = node.client.get("/auth/v2.0/tenants", headers={"X-Auth-Token": token_of(unscoped)})
    assert tenants.status_code == 200
    assert tenants.get_json() == {
        "tenants": [
            {"id": "physics", "name": "physics", "enabled": True, "description": "group physics"},
            {
                "id": "vo.example.org",
                "name": "vo.example.org",
                "enabled": True,
                "description": "group vo.example.org",
            },
        ],
        "tenants_links": [],
    }
    scoped = post(node, password_body(tenantId="vo.example.org"))
    assert scoped.get_json()["access"]["token"]["tenant"]["name"] == "vo.example.org"
    # bob has no group: one tenant, "default"
    bob = node.client.get("/auth/v2.0/tenants", headers=basic("bob"))
    assert [t["name"] for t in bob.get_json()["tenants"]] == ["default"]
    assert token_of(post(node, password_body("bob", tenantName="default")))
    refused = post(node, password_body("bob", tenantName="physics"), headers=ROCCI)
    assert "User bob is unauthorized for tenant physics" in keystone_error(refused, 401)
    assert refused.headers["WWW-Authenticate"] == "Keystone uri='http://localhost/auth/'"


def test_the_rocci_sequence_with_a_tenant_from_the_environment(node: Node) -> None:
    client = Rocci(node, password_body())
    client.setup(tenant="vo.example.org")  # ROCCI_CLIENT_KEYSTONE_TENANT
    assert [s for _, _, s in client.log] == [401, 300, 200]
    assert stored(node, client.headers["X-Auth-Token"])["tenant"] == "vo.example.org"
    assert client.authenticate().status_code == 200


@pytest.fixture
def x509_node(make_node: NodeFactory, tmp_path: Path) -> Node:
    map_file = tmp_path / "grid-mapfile"
    map_file.write_text(MAP)
    return make_node(
        auth_methods="local,x509,token",
        x509_map_file=str(map_file),
        auth_trusted_proxies=TRUSTED,
    )


def test_the_rocci_voms_sequence_with_a_certificate_from_a_trusted_front_end(
    x509_node: Node,
) -> None:
    proxy = {
        "SSL_CLIENT_S_DN": f"{ALICE_DN}/CN=73519",
        "SSL_CLIENT_I_DN": ALICE_DN,
        "SSL_CLIENT_VERIFY": "SUCCESS",
    }
    # A certificate on every request needs no Keystone: rOCCI stops at the first GET.
    direct = Rocci(x509_node, {"auth": {"voms": True}}, headers={**ROCCI, **proxy})
    direct.environ = {"REMOTE_ADDR": TRUSTED}
    direct.setup()
    assert [s for _, _, s in direct.log] == [200] and "X-Auth-Token" not in direct.headers
    # A front end that asks for it below /auth/ only: the Keystone fallback.
    client = Rocci(x509_node, {"auth": {"voms": True}}, certificate=proxy)
    client.environ = {"REMOTE_ADDR": TRUSTED}
    client.setup()
    assert [(m, u.removeprefix("http://localhost"), s) for m, u, s in client.log] == [
        ("GET", "/-/", 401),
        ("GET", "/auth/", 300),
        ("POST", "/auth/v2.0/tokens", 200),
        ("GET", "/auth/v2.0/tenants", 200),
        ("POST", "/auth/v2.0/tokens", 200),
    ]
    tenants = client.call("GET", "http://localhost/auth/v2.0/tenants").get_json()["tenants"]
    assert [t["name"] for t in tenants] == ["cms", "physics"]
    token = client.headers["X-Auth-Token"]
    record = stored(x509_node, token)
    assert (record["name"], record["source"], record["tenant"]) == ("asmith", "x509", "cms")
    assert client.authenticate().status_code == 200  # the scoped token, no certificate
    assert x509_node.client.get("/-/", headers={"X-Auth-Token": token}).status_code == 200


def test_voms_without_credentials_of_the_request_is_refused(x509_node: Node) -> None:
    voms = {"auth": {"voms": True}}
    certificate = {"SSL_CLIENT_S_DN": ALICE_DN, "SSL_CLIENT_VERIFY": "SUCCESS"}
    bare = post(x509_node, voms, headers=ROCCI)
    assert "authentication required" in keystone_error(bare, 401)
    assert bare.headers["WWW-Authenticate"] == "Keystone uri='http://localhost/auth/'"
    forged = post(x509_node, voms, headers=certificate, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    keystone_error(forged, 401)
    token = token_of(
        post(x509_node, voms, headers=certificate, environ_base={"REMOTE_ADDR": TRUSTED})
    )
    # X-Auth-Token is not a credential of voms: a token does not mint tokens
    renewal = post(
        x509_node, {"auth": {"voms": True, "tenantName": "cms"}}, {"X-Auth-Token": token}
    )
    assert "not renewable" in keystone_error(renewal, 401)
    # Basic on the request counts for voms
    assert token_of(post(x509_node, voms, headers=basic("alice")))


# --- rescoping ---------------------------------------------------------------------------------


def test_rescoping_a_token_keeps_its_expiry(node: Node) -> None:
    first = post(node, password_body())
    token = token_of(first)
    rescoped = post(node, {"auth": {"token": {"id": token}, "tenantName": "physics"}})
    scoped = rescoped.get_json()["access"]["token"]
    assert scoped["tenant"] == {
        "id": "physics",
        "name": "physics",
        "enabled": True,
        "description": "group physics",
    }
    assert scoped["expires"] == first.get_json()["access"]["token"]["expires"]
    assert stored(node, scoped["id"])["expires"] == stored(node, token)["expires"]
    # and again, from the scoped one to another tenant: still the first token's expiry
    again = post(node, {"auth": {"token": {"id": scoped["id"]}, "tenantId": "vo.example.org"}})
    assert again.get_json()["access"]["token"]["expires"] == scoped["expires"]
    keys = node.connection.keys("nimbo:auth-token:*")
    assert len(keys) == 3 and all(0 < node.connection.pttl(k) <= 3600_000 for k in keys)


def test_a_rescoped_token_dies_with_the_original(make_node: NodeFactory) -> None:
    node = make_node(auth_methods="local,token", auth_token_ttl=2)
    token = token_of(post(node, password_body("bob")))
    start = time.monotonic()
    time.sleep(0.5)
    scoped = token_of(post(node, {"auth": {"token": {"id": token}, "tenantName": "default"}}))
    assert 0 < node.connection.pttl(key_of(scoped)) <= 1500  # 2 s from the first one, less 0.5
    assert node.client.get("/-/", headers={"X-Auth-Token": scoped}).status_code == 200
    time.sleep(max(0.0, 2.05 - (time.monotonic() - start)))
    assert node.client.get("/-/", headers={"X-Auth-Token": scoped}).status_code == 401
    expired = post(node, {"auth": {"token": {"id": token}, "tenantName": "default"}})
    assert "unknown or expired token" in keystone_error(expired, 401)


def test_rescoping_refusals(node: Node) -> None:
    token = token_of(post(node, password_body()))
    for body, status, fragment in (
        ({"auth": {"token": {"id": token}}}, 401, "not renewable"),
        ({"auth": {"token": {"id": token + "x"}, "tenantName": "physics"}}, 401, "unknown"),
        ({"auth": {"token": {"id": "x" * 600}, "tenantName": "physics"}}, 401, "unknown"),
        ({"auth": {"token": {"id": token}, "tenantName": "cms"}}, 401, "unauthorized for tenant"),
        ({"auth": {"token": {"id": token}, "tenantName": "default"}}, 401, "its tenants are"),
        ({"auth": {"token": {}, "tenantName": "physics"}}, 400, "auth.token needs an id"),
    ):
        assert fragment in keystone_error(post(node, body), status), body
    revoked = token_of(post(node, password_body()))
    assert node.client.delete("/auth/tokens", headers={"X-Auth-Token": revoked}).status_code == 204
    refused = post(node, {"auth": {"token": {"id": revoked}, "tenantName": "physics"}})
    assert "unknown or expired token" in keystone_error(refused, 401)
    assert len(node.connection.keys("nimbo:auth-token:*")) == 1  # the first token alone


# --- refusals --------------------------------------------------------------------------------


def test_a_wrong_password_gets_no_token(node: Node) -> None:
    refused = post(node, password_body(password="nope"), headers=ROCCI)
    assert keystone_error(refused, 401)
    assert refused.headers["WWW-Authenticate"] == "Keystone uri='http://localhost/auth/'"
    assert node.connection.keys("nimbo:auth-token:*") == []
    # the password of the body is the credential, not the Basic header beside it
    assert post(node, password_body(password="nope"), headers=basic("alice")).status_code == 401


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{not json", "not JSON"),
        ("", 'the body must be {"auth": {...}}'),
        ('["auth"]', "JSON object"),
        ("{}", 'the body must be {"auth": {...}}'),
        ('{"auth": []}', "auth must be a JSON object"),
        ('{"auth": {}}', "exactly one of passwordCredentials, voms (true) or token"),
        ('{"auth": {"voms": true, "token": {"id": "t"}}}', "it has voms, token"),
        ('{"auth": {"voms": "yes"}}', "auth.voms must be true"),
        ('{"auth": {"passwordCredentials": {"username": "alice"}}}', "a username and a password"),
        ('{"auth": {"passwordCredentials": "alice"}}', "passwordCredentials must be a JSON"),
        ('{"auth": {"voms": true, "tenantName": 7}}', "auth.tenantName must be a non-empty"),
        ('{"auth": {"voms": true, "tenantName": "a", "tenantId": "b"}}', "different tenants"),
        ("[" * 40 + "]" * 40, "nested deeper than 32 levels"),
        ('{"auth": ' * 40 + "1" + "}" * 40, "nested deeper than 32 levels"),
    ],
)
def test_malformed_bodies_are_400_saying_what_is_wrong(
    node: Node, body: str, fragment: str
) -> None:
    response = post(node, body)
    assert fragment in keystone_error(response, 400)
    assert node.connection.keys("nimbo:auth-token:*") == []


def test_the_answers_are_hardened_and_audited(node: Node) -> None:
    issued = post(node, password_body(tenantName="physics"))
    refused = post(node, password_body("bob", "nope"))
    discovery = node.client.get("/auth/")
    assert_security_headers(issued, refused, discovery)
    found, text = audited_auth_requests(node)
    assert found == [("alice", "/auth/v2.0/tokens", 200), ("bob", "/auth/v2.0/tokens", 401)]
    assert token_of(issued) not in text and PASSWORD not in text
