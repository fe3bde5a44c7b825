"""Issued tokens (auth.tokens, gateway.tokens_http): POST /auth/tokens with any other method,
X-Auth-Token on OCCI requests, revocation, expiry, the Keystone v3 alias that EGI clients
follow from a ``Keystone uri='…'`` challenge (its v2.0 part: test_keystone_v2.py); tokens
live in the real Redis the tests use, so two gateways on it accept each other's tokens."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from auth.credentials import Credentials
from auth.principal import Principal
from auth.tokens import UNKNOWN, TokenAuthenticator, connect
from gateway.errors import NotAuthenticated, ServiceUnavailable
from gateway.store.models import User
from tests.auth.jwks_server import AUDIENCE, IdentityProvider
from tests.gateway.conftest import (
    INFRA,
    PASSWORD,
    Node,
    NodeFactory,
    basic,
    category,
    text_plain,
)
from tests.services import start_redis

KEYSTONE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the store's engine."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


@pytest.fixture
def node(make_node: NodeFactory) -> Node:
    return make_node(auth_methods="local,token")


def issue(node: Node, headers: dict[str, str]) -> TestResponse:
    return node.client.post("/auth/tokens", headers=headers)


def token_of(node: Node, user: str = "alice") -> str:
    response = issue(node, basic(user))
    assert response.status_code == 201, response.get_data(as_text=True)
    token: str = response.get_json()["token"]
    return token


def with_token(node: Node, method: str, path: str, token: str, **kwargs: Any) -> TestResponse:
    headers = {"X-Auth-Token": token, **kwargs.pop("headers", {})}
    return node.request(method, path, user=None, headers=headers, **kwargs)


def keystone(user: str, password: str) -> dict[str, Any]:
    identity = {"methods": ["password"], "password": {"user": {"name": user, "password": password}}}
    return {"auth": {"identity": identity}}


# --- issue, use, revoke, expire -------------------------------------------------------------


def test_a_token_issued_for_basic_credentials_works_as_x_auth_token(node: Node) -> None:
    response = issue(node, basic("alice"))
    assert response.status_code == 201
    document = response.get_json()
    assert set(document) == {"token", "expires", "user", "groups"}
    assert document["user"] == "alice" and document["groups"] == []
    assert response.headers["X-Subject-Token"] == document["token"]
    assert response.headers["Cache-Control"] == "no-store"
    assert len(document["token"]) >= 43 and KEYSTONE_TIME.match(document["expires"])
    token = document["token"]
    assert with_token(node, "GET", "/compute/", token).status_code == 200
    body = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 1.0})
    created = with_token(
        node, "POST", "/storage/", token, data=body, headers={"Content-Type": "text/plain"}
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    row = node.row(created.headers["Location"])
    assert row is not None and row.owner == "alice"


def test_redis_holds_a_hash_of_the_token_never_the_token(node: Node) -> None:
    token = token_of(node)
    keys = node.connection.keys("nimbo:auth-token:*")
    assert len(keys) == 1 and token.encode() not in keys[0]
    stored = node.connection.get(keys[0])
    assert stored is not None and token.encode() not in stored
    assert json.loads(stored)["name"] == "alice"
    assert 3590 < node.connection.ttl(keys[0]) <= 3600


def test_a_revoked_token_is_refused(node: Node) -> None:
    token = token_of(node)
    assert with_token(node, "GET", "/compute/", token).status_code == 200
    revoked = node.client.delete("/auth/tokens", headers={"X-Auth-Token": token})
    assert revoked.status_code == 204
    refused = with_token(node, "GET", "/compute/", token)
    assert refused.status_code == 401
    assert UNKNOWN in refused.get_data(as_text=True)
    again = node.client.delete("/auth/tokens", headers={"X-Auth-Token": token})
    assert again.status_code == 404


def test_a_token_expires(make_node: NodeFactory) -> None:
    node = make_node(auth_methods="local,token", auth_token_ttl=1)
    token = token_of(node)
    assert with_token(node, "GET", "/compute/", token).status_code == 200
    time.sleep(1.1)
    refused = with_token(node, "GET", "/compute/", token)
    assert refused.status_code == 401
    assert "unknown or expired token: get a new one with POST /auth/tokens" in refused.get_data(
        as_text=True
    )


def test_a_token_cannot_mint_tokens(node: Node) -> None:
    token = token_of(node)
    for path, body in (("/auth/tokens", None), ("/auth/v3/auth/tokens", None)):
        refused = node.client.post(path, headers={"X-Auth-Token": token}, data=body)
        assert refused.status_code == 401, path
        assert "not renewable" in refused.get_json()["error"]["message"]
        assert "Keystone uri=" in refused.headers["WWW-Authenticate"]
    by_body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}
    refused = node.client.post(
        "/auth/v3/auth/tokens", json=by_body, headers={"X-Auth-Token": token}
    )
    assert refused.status_code == 401 and "not renewable" in refused.get_data(as_text=True)
    # Keystone v2.0: a token gets a token only to rescope it, expiring with it
    # (tests/auth/test_keystone_v2.py); unscoped, or as the credential of voms, it gets none.
    for v2_body in ({"auth": {"token": {"id": token}}}, {"auth": {"voms": True}}):
        refused = node.client.post(
            "/auth/v2.0/tokens", json=v2_body, headers={"X-Auth-Token": token}
        )
        assert refused.status_code == 401, v2_body
        assert "not renewable" in refused.get_json()["error"]["message"]
    assert len(node.connection.keys("nimbo:auth-token:*")) == 1  # only the first one


def test_wrong_credentials_get_no_token(node: Node) -> None:
    refused = node.client.post("/auth/tokens", headers={"Authorization": "Basic YWxpY2U6bm8="})
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == 401
    assert refused.headers["WWW-Authenticate"].startswith('Basic realm="nimbostratus"')
    bare = node.client.post("/auth/tokens")
    assert bare.status_code == 401 and "authentication required" in bare.get_data(as_text=True)
    assert node.connection.keys("nimbo:auth-token:*") == []


def test_a_disabled_account_loses_its_tokens(node: Node) -> None:
    token = token_of(node, "bob")
    with node.store.session(write=True) as session:
        user = session.get(User, "bob")
        assert user is not None
        user.disabled = True
    node.nimbo.accounts.forget("bob")
    assert with_token(node, "GET", "/compute/", token).status_code == 401


def test_only_post_and_delete(node: Node) -> None:
    response = node.client.get("/auth/tokens", headers=basic("alice"))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, DELETE"


# --- the challenge and the Keystone v3 alias ------------------------------------------------


def test_the_401_challenge_carries_basic_and_keystone(make_node: NodeFactory) -> None:
    node = make_node(auth_methods="local,token")
    response = node.client.get("/compute/")
    assert response.status_code == 401
    assert response.headers.get_all("WWW-Authenticate") == [
        "Basic realm=\"nimbostratus\", Keystone uri='http://localhost/auth/'"
    ]
    rocci = {"User-Agent": "rOCCI-cli/4.3.13 rOCCI-api/4.3.13 OCCI/1.1"}
    assert node.client.get("/compute/", headers=rocci).headers.get_all("WWW-Authenticate") == [
        "Keystone uri='http://localhost/auth/'"  # rOCCI matches the whole value
    ]
    basic_only = make_node(auth_methods="local")
    assert basic_only.client.get("/compute/", headers=rocci).headers["WWW-Authenticate"] == (
        'Basic realm="nimbostratus"'
    )
    public = make_node(auth_methods="local,token", public_url="https://cloud.example.org/occi")
    assert public.client.get("/compute/").headers["WWW-Authenticate"] == (
        "Basic realm=\"nimbostratus\", Keystone uri='https://cloud.example.org/occi/auth/'"
    )


def test_keystone_v3_password_body(node: Node) -> None:
    challenge = node.client.get("/compute/").headers["WWW-Authenticate"]
    uri = re.search(r"Keystone uri='([^']+)'", challenge)
    assert uri is not None
    url = uri.group(1) + "v3/auth/tokens"
    response = node.client.post(url, json=keystone("alice", PASSWORD))
    assert response.status_code == 201, response.get_data(as_text=True)
    token = response.headers["X-Subject-Token"]
    document = response.get_json()["token"]
    assert document["methods"] == ["password"]
    assert document["user"]["name"] == document["user"]["id"] == "alice"
    assert KEYSTONE_TIME.match(document["expires_at"]) and KEYSTONE_TIME.match(
        document["issued_at"]
    )
    assert document["issued_at"] < document["expires_at"]
    assert with_token(node, "GET", "/compute/", token).status_code == 200
    revoked = node.client.delete(url, headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert revoked.status_code == 204
    assert with_token(node, "GET", "/compute/", token).status_code == 401


def test_keystone_v3_refusals(node: Node) -> None:
    wrong = node.client.post("/auth/v3/auth/tokens", json=keystone("alice", "nope"))
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["title"] == "Unauthorized"
    assert "Keystone uri=" in wrong.headers["WWW-Authenticate"]
    for body, fragment in (
        ("{not json", "not JSON"),
        ('["a list"]', "JSON object"),
        ('{"auth": {"identity": {"methods": ["totp"]}}}', "unsupported identity method"),
        ('{"auth": {"identity": {"methods": ["password"], "password": {}}}}', "name (or id)"),
        ('{"auth": "x"}', "auth must be a JSON object"),
    ):
        refused = node.client.post(
            "/auth/v3/auth/tokens", data=body, content_type="application/json"
        )
        assert refused.status_code == 400, body
        assert fragment in refused.get_json()["error"]["message"], body


def test_keystone_v3_with_the_requests_own_credentials(node: Node) -> None:
    response = node.client.post("/auth/v3/auth/tokens", headers=basic("bob"))
    assert response.status_code == 201
    assert response.get_json()["token"]["user"]["name"] == "bob"
    token = response.headers["X-Subject-Token"]
    assert with_token(node, "GET", "/compute/", token).status_code == 200


def test_the_password_in_the_body_never_reaches_the_app_hook(node: Node) -> None:
    """/auth/ paths are public to the before-request hook: the body's password is checked once,
    by the view, and a body-only request is not refused for lack of headers."""
    response = node.client.post("/auth/v3/auth/tokens", json=keystone("bob", PASSWORD))
    assert response.status_code == 201


# --- more than one gateway, other methods, Redis down ---------------------------------------


def test_two_gateways_on_one_redis_accept_each_others_tokens(make_node: NodeFactory) -> None:
    first = make_node(auth_methods="local,token")
    second = make_node(auth_methods="local,token", auth_token_cache_seconds=1)
    token = token_of(first)
    assert with_token(second, "GET", "/compute/", token).status_code == 200
    assert first.client.delete("/auth/tokens", headers={"X-Auth-Token": token}).status_code == 204
    assert with_token(first, "GET", "/compute/", token).status_code == 401
    # The other process remembers the token for auth_token_cache_seconds at most.
    assert with_token(second, "GET", "/compute/", token).status_code == 200
    time.sleep(1.05)
    assert with_token(second, "GET", "/compute/", token).status_code == 401


def test_a_bearer_token_can_get_an_x_auth_token(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    node = make_node(
        auth_methods="local,oidc,token",
        oidc_issuer=identity_provider.issuer,
        oidc_audience=AUDIENCE,
        oidc_groups_claim="groups",
    )
    jwt = identity_provider.token(identity_provider.claims(groups=["vo.example.org"]))
    response = issue(node, {"Authorization": f"Bearer {jwt}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["user"] == "alice-oidc"
    assert response.get_json()["groups"] == ["vo.example.org"]
    keystone_response = node.client.post(
        "/auth/v3/auth/tokens", headers={"Authorization": f"Bearer {jwt}"}
    )
    assert keystone_response.get_json()["token"]["methods"] == ["mapped"]
    token = response.get_json()["token"]
    assert with_token(node, "GET", "/compute/", token).status_code == 200
    assert node.client.get("/compute/").headers["WWW-Authenticate"] == (
        'Basic realm="nimbostratus", Bearer realm="nimbostratus", '
        "Keystone uri='http://localhost/auth/'"
    )


def test_without_the_token_method_nothing_is_issued(make_node: NodeFactory) -> None:
    node = make_node()
    assert issue(node, basic("alice")).status_code == 404  # OCCI: no such collection
    assert node.connection.keys("nimbo:auth-token:*") == []


def test_redis_down_is_503_for_tokens_only(make_node: NodeFactory, tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    server = start_redis(tmp_path / "redis")
    try:
        node = make_node(redis=server.url, auth_methods="local,token", auth_token_cache_seconds=0)
        token = token_of(node)
        server.stop()
        response = with_token(node, "GET", "/compute/", token)
        assert response.status_code == 503
        assert "token store (Redis) is unavailable" in response.get_data(as_text=True)
        assert node.get("/compute/", user="alice").status_code == 200
        assert issue(node, basic("alice")).status_code == 503
    finally:
        server.stop()


# --- the authenticator alone ----------------------------------------------------------------


def test_the_authenticator_alone(redis_url: str) -> None:
    connection = connect(redis_url)
    try:
        tokens = TokenAuthenticator(connection, ttl=60, cache_seconds=0)
        alice = Principal("alice", "Alice", frozenset({"g"}), is_admin=True, source="ldap")
        issued = tokens.issue(alice)
        assert tokens.authenticate(Credentials(auth_token=issued.token)) == alice
        assert tokens.authenticate(Credentials(basic=("alice", "pw"))) is None
        with pytest.raises(NotAuthenticated, match="unknown or expired"):
            tokens.authenticate(Credentials(auth_token=issued.token + "x"))
        with pytest.raises(NotAuthenticated, match="unknown or expired"):
            tokens.authenticate(Credentials(auth_token="x" * 10000))
        assert tokens.expiry(issued.token) == pytest.approx(issued.expires_at.timestamp(), abs=1e-5)
        scoped = tokens.issue(alice, tenant="g", until=time.time() + 5)
        assert scoped.tenant == "g" and tokens.expiry(scoped.token) <= time.time() + 5
        capped = tokens.issue(alice, until=time.time() + 7200)  # the ttl caps ``until``
        assert tokens.expiry(capped.token) <= time.time() + 60
        with pytest.raises(NotAuthenticated, match="unknown or expired"):
            tokens.issue(alice, until=time.time() - 1)
        assert tokens.revoke(issued.token) and not tokens.revoke(issued.token)
        with pytest.raises(NotAuthenticated, match="unknown or expired"):
            tokens.expiry(issued.token)
        with pytest.raises(NotAuthenticated, match="unknown or expired"):
            tokens.expiry("x" * 10000)
    finally:
        connection.close()
    dead = connect(f"unix://{Path(redis_url.removeprefix('unix://')).parent / 'none.sock'}")
    with pytest.raises(ServiceUnavailable, match="token store"):
        TokenAuthenticator(dead, ttl=60).authenticate(Credentials(auth_token="abc"))
    dead.close()
