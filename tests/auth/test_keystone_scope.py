"""A token scoped to a project acts in that project's group (auth.tokens, gateway.tokens_http,
gateway.services.tenancy): Keystone v2.0 tenant-scoped and v3 project-scoped tokens, by
password, rescoped, and through v3 federation as rOCCI's ``--auth oauth2`` gets them; what
they create belongs to the group, naming another group is 403, unscoped tokens act as any
credential, and the isolation rules hold. Over the Flask test client against real Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from auth.credentials import Credentials
from auth.principal import Principal
from auth.tokens import DEFAULT_TENANT, TokenAuthenticator, connect, scoped
from gateway.errors import Forbidden, InvalidAttribute
from gateway.services.tenancy import Tenancy
from gateway.store.models import CdmiObjectRow
from occi import infrastructure as infra
from tests.auth.jwks_server import IdentityProvider
from tests.auth.keystone import keystone_error, stored
from tests.auth.test_keystone_v3_federation import (
    RocciOauth2,
    access_token,
    federated_node,
    rescope,
    rescope_body,
    unscoped,
)
from tests.gateway.cdmi_client import CONTAINER, OBJECT, VERSION
from tests.gateway.conftest import (
    INFRA,
    OCCI_JSON,
    PASSWORD,
    Node,
    NodeFactory,
    basic,
    category,
    compute_categories,
    path_of,
    text_plain,
)
from tests.gateway.test_tenancy import groups, mixin_group, tag

HOST = {"host-a": "memory://keystone-scope?cores=64&memory_mib=65536"}
GROUP = infra.GROUP_ATTRIBUTE
SCOPED_TO = "this token is scoped to project 'physics'"

ALICE = Principal("alice", groups=frozenset({"physics", "chemistry"}))
ROOT = Principal("root", is_admin=True)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the store's engine."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


@pytest.fixture
def node(make_node: NodeFactory) -> Node:
    """alice in physics and chemistry, bob in physics, carol in biology (an outsider to
    physics); group policy ``read``, no default group."""
    node = make_node(HOST, auth_methods="local,token")
    groups(node, alice=["physics", "chemistry"], bob=["physics"], carol=["biology"])
    return node


# --- tokens ---------------------------------------------------------------------------------


def keystone_post(node: Node, path: str, body: Any) -> TestResponse:
    return node.client.post(
        path, data=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def v2_body(user: str, tenant: str | None) -> dict[str, Any]:
    auth: dict[str, Any] = {"passwordCredentials": {"username": user, "password": PASSWORD}}
    return {"auth": auth | ({"tenantName": tenant} if tenant else {})}


def v3_body(user: str, project: str | None) -> dict[str, Any]:
    user_ = {"name": user, "domain": {"id": "default"}, "password": PASSWORD}
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user_}}}
    return {"auth": auth | ({"scope": {"project": {"id": project}}} if project else {})}


def v2_token(node: Node, user: str, tenant: str | None = None) -> str:
    """A Keystone v2.0 token of ``user``, scoped to ``tenant`` if given."""
    response = keystone_post(node, "/auth/v2.0/tokens", v2_body(user, tenant))
    assert response.status_code == 200, response.get_data(as_text=True)
    token: str = response.get_json()["access"]["token"]["id"]
    return token


def v3_token(node: Node, user: str, project: str | None = None) -> str:
    """A Keystone v3 token of ``user``, scoped to ``project`` if given."""
    response = keystone_post(node, "/auth/v3/auth/tokens", v3_body(user, project))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.headers["X-Subject-Token"]


Issue = Callable[..., str]


@pytest.fixture(params=[v2_token, v3_token], ids=["v2.0-tenant", "v3-project"])
def issue(request: pytest.FixtureRequest) -> Issue:
    """Get a scoped token one way or the other: Keystone v2.0 or v3."""
    found: Issue = request.param
    return found


# --- requests with a token ------------------------------------------------------------------


def with_token(
    node: Node, method: str, path: str, token: str, headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> TestResponse:  # fmt: skip
    return node.request(
        method, path, user=None, headers={"X-Auth-Token": token, **(headers or {})}, **kwargs
    )


def create(node: Node, token: str, kind: str, body: str) -> TestResponse:
    return with_token(
        node, "POST", f"/{kind}/", token, headers={"Content-Type": "text/plain"}, data=body
    )


def compute_body(**attributes: Any) -> str:
    return text_plain(compute_categories(), {"occi.core.title": "c", **attributes})


STORAGE = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 1.0})
NETWORK = text_plain(
    [category("network", INFRA, "kind"), category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")],
    {"occi.network.address": "10.9.0.0/24"},
)


def created(response: TestResponse) -> str:
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.headers["Location"]


def group_of(node: Node, location: str) -> str | None:
    """The group as the entity's rendering shows it (to the admin)."""
    value: str | None = node.get_json(location, user="root")["attributes"].get(GROUP)
    return value


def cdmi(
    node: Node, method: str, path: str, token: str, body: Any, media: str = OBJECT
) -> TestResponse:
    headers = {**VERSION, "Content-Type": media, "Accept": media}
    return with_token(node, method, f"/cdmi/{path}", token, headers=headers, data=json.dumps(body))


def cdmi_group(node: Node, object_id: str) -> str | None:
    with node.store.session() as session:
        row = session.get(CdmiObjectRow, object_id)
        assert row is not None
        return row.group


# --- the rules --------------------------------------------------------------------------------


def test_a_principal_is_scoped_to_one_of_its_groups_only() -> None:
    assert scoped(ALICE, "physics").scope_group == "physics"
    assert scoped(ALICE, None).scope_group is None  # unscoped
    assert scoped(ALICE, "biology").scope_group is None  # not hers: never a scope
    assert scoped(ROOT, DEFAULT_TENANT).scope_group is None  # no groups: the default is none
    assert scoped(scoped(ALICE, "physics"), "chemistry").scope_group == "chemistry"
    with pytest.raises(ValueError, match="not one of alice's groups"):
        Principal("alice", groups=frozenset({"physics"}), scope_group="biology")


def test_tenancy_gives_a_scoped_principal_its_scope_group_only() -> None:
    in_physics = scoped(ALICE, "physics")
    for rules in (Tenancy("read", "none"), Tenancy("full", "primary")):
        assert rules.new_group(in_physics, None) == "physics"  # the default: the scope
        assert rules.new_group(in_physics, " physics ") == "physics"
        for other in ("chemistry", ""):  # hers, or none: refused alike
            with pytest.raises(Forbidden, match="scoped to project 'physics'"):
                rules.new_group(in_physics, other)
        assert rules.regroup(in_physics, "alice", None, "physics") == "physics"
        assert rules.regroup(in_physics, "alice", "chemistry", "chemistry") == "chemistry"
        with pytest.raises(Forbidden, match="no group is refused"):
            rules.regroup(in_physics, "alice", "physics", "")
        with pytest.raises(Forbidden, match="only the owner"):  # the owner rule comes first
            rules.regroup(in_physics, "bob", "physics", "chemistry")
    admin = Principal("root", groups=frozenset({"ops"}), is_admin=True, scope_group="ops")
    with pytest.raises(Forbidden, match="scoped to project 'ops'"):  # admins too
        Tenancy().new_group(admin, "anything")
    with pytest.raises(InvalidAttribute, match="one of your groups"):  # unscoped: as before
        Tenancy().new_group(Principal("bob", groups=frozenset({"physics"})), "chemistry")


def test_the_token_store_keeps_the_scope_and_gives_it_back(redis_url: str) -> None:
    connection = connect(redis_url)
    try:
        tokens = TokenAuthenticator(connection, ttl=60, cache_seconds=30)
        issued = tokens.issue(ALICE, tenant="physics")
        assert issued.principal.scope_group == "physics"
        for _ in range(2):  # from Redis, then from the process's cache
            principal = tokens.authenticate(Credentials(auth_token=issued.token))
            assert principal == scoped(ALICE, "physics")
        assert tokens.record(issued.token).tenant == "physics"
        rescoped = tokens.issue(principal, tenant="chemistry")
        assert tokens.authenticate(Credentials(auth_token=rescoped.token)).scope_group == (
            "chemistry"
        )
        plain = tokens.issue(principal)  # a scoped principal's unscoped token: no scope
        assert tokens.authenticate(Credentials(auth_token=plain.token)).scope_group is None
    finally:
        connection.close()


# --- through the gateway ------------------------------------------------------------------------


def test_what_a_scoped_token_creates_belongs_to_its_group(node: Node, issue: Issue) -> None:
    token = issue(node, "alice", "physics")
    assert stored(node, token)["tenant"] == "physics"  # the scope is the token's record's
    compute = created(create(node, token, "compute", compute_body()))
    storage = created(create(node, token, "storage", STORAGE))
    network = created(create(node, token, "network", NETWORK))
    for location in (compute, storage, network):
        assert group_of(node, location) == "physics"
        assert node.row(location).owner == "alice"  # type: ignore[union-attr]
    named = created(create(node, token, "compute", compute_body(**{GROUP: "physics"})))
    assert group_of(node, named) == "physics"  # naming the scope's own group is fine

    mixin = with_token(
        node, "POST", "/-/", token, headers={"Content-Type": "text/plain"}, data=tag() + "\r\n"
    )
    assert mixin.status_code == 200, mixin.get_data(as_text=True)
    assert mixin_group(node) == "physics"

    by_id = cdmi(node, "POST", "cdmi_objectid/", token, {"value": "x"})
    assert by_id.status_code == 201, by_id.get_data(as_text=True)
    assert cdmi_group(node, json.loads(by_id.get_data())["objectID"]) == "physics"
    in_root = cdmi(node, "PUT", "lab/", token, {}, media=CONTAINER)
    assert in_root.status_code == 201, in_root.get_data(as_text=True)
    assert json.loads(in_root.get_data())["metadata"][GROUP] == "physics"

    # the isolation rules hold: bob (physics) reads, may not change; carol sees nothing
    assert node.get(compute, user="bob").status_code == 200
    change = text_plain([], {"occi.core.title": "bob's"})
    assert node.post_text(path_of(compute), change, user="bob").status_code == 403
    assert node.get(compute, user="carol").status_code == 404
    listing = node.get("/compute/", user="carol", headers={"Accept": "text/uri-list"})
    assert listing.get_data(as_text=True) == ""
    assert node.get("/cdmi/lab/", user="carol", headers=VERSION).status_code == 404
    assert node.get("/cdmi/lab/", user="bob", headers=VERSION).status_code == 200
    # the token acts inside its group only: alice's private things are absent to it
    # (tests/gateway/test_scoped_visibility.py asks every route)
    private = node.create_compute(user="alice")
    assert with_token(node, "GET", private, token).status_code == 404
    assert node.get(private, user="alice").status_code == 200


def test_naming_another_group_with_a_scoped_token_is_403(node: Node, issue: Issue) -> None:
    token = issue(node, "alice", "physics")
    before = node.count_entities()
    for asked in ("chemistry", ""):  # one of alice's groups; no group at all
        refused = create(node, token, "compute", compute_body(**{GROUP: asked}))
        assert refused.status_code == 403, refused.get_data(as_text=True)
        message = refused.get_data(as_text=True)
        assert SCOPED_TO in message and f"leave {GROUP} out" in message
    assert node.count_entities() == before

    as_json = with_token(
        node, "POST", "/storage/", token,
        headers={"Content-Type": OCCI_JSON, "Accept": OCCI_JSON},
        data=json.dumps({"kind": f"{INFRA}storage",
                         "attributes": {"occi.storage.size": 1.0, GROUP: "chemistry"}}),
    )  # fmt: skip
    assert as_json.status_code == 403 and SCOPED_TO in as_json.get_json()["message"]

    mixin = with_token(
        node, "POST", "/-/", token, headers={"Content-Type": "text/plain"},
        data=f'{tag()}\r\nX-OCCI-Attribute: {GROUP}="chemistry"\r\n',
    )  # fmt: skip
    assert mixin.status_code == 403 and SCOPED_TO in mixin.get_data(as_text=True)

    container = cdmi(node, "PUT", "lab/", token, {"metadata": {GROUP: "chemistry"}}, CONTAINER)
    assert container.status_code == 403 and SCOPED_TO in container.get_data(as_text=True)
    by_id = cdmi(node, "POST", "cdmi_objectid/", token, {"value": "x", "metadata": {GROUP: ""}})
    assert by_id.status_code == 403

    # a later change: out of the scope's group never; naming the current group changes nothing
    inside = created(create(node, token, "compute", compute_body()))

    def regroup(location: str, group: str) -> TestResponse:
        return with_token(
            node, "POST", path_of(location), token, headers={"Content-Type": "text/plain"},
            data=text_plain([], {GROUP: group}),
        )  # fmt: skip

    assert regroup(inside, "physics").status_code == 200
    for other in ("chemistry", ""):
        moved_out = regroup(inside, other)
        assert moved_out.status_code == 403 and SCOPED_TO in moved_out.get_data(as_text=True)
    assert group_of(node, inside) == "physics"
    # and what is out of the scope cannot be pulled into it: it is absent to the token
    elsewhere = created(node.post_text("/compute/", compute_body(**{GROUP: "chemistry"}),
                                       user="alice"))  # fmt: skip
    assert regroup(elsewhere, "physics").status_code == 404
    assert group_of(node, elsewhere) == "chemistry"


def test_unscoped_tokens_act_as_before(node: Node) -> None:
    native = node.client.post("/auth/tokens", headers=basic("alice"))
    assert native.status_code == 201
    for token in (v2_token(node, "alice"), v3_token(node, "alice"), native.get_json()["token"]):
        private = created(create(node, token, "compute", compute_body()))
        assert group_of(node, private) is None  # tenancy_default_group = "none"
        assert node.get(private, user="bob").status_code == 404
        chemistry = created(create(node, token, "compute", compute_body(**{GROUP: "chemistry"})))
        assert group_of(node, chemistry) == "chemistry"
        refused = create(node, token, "compute", compute_body(**{GROUP: "biology"}))
        assert refused.status_code == 400  # not hers: as for any credential
        assert "one of your groups (chemistry, physics)" in refused.get_data(as_text=True)


def test_the_default_tenant_of_a_user_without_groups_is_no_group(node: Node, issue: Issue) -> None:
    token = issue(node, "root", DEFAULT_TENANT)  # the admin belongs to no group
    assert group_of(node, created(create(node, token, "compute", compute_body()))) is None
    anywhere = created(create(node, token, "compute", compute_body(**{GROUP: "biology"})))
    assert group_of(node, anywhere) == "biology"  # an admin names any group, as before


def test_scoping_to_a_group_the_user_is_not_in_is_refused(node: Node) -> None:
    before = node.connection.keys("nimbo:auth-token:*")
    v2 = keystone_post(node, "/auth/v2.0/tokens", v2_body("alice", "biology"))
    assert "User alice is unauthorized for tenant biology" in keystone_error(v2, 401)
    v3 = keystone_post(node, "/auth/v3/auth/tokens", v3_body("alice", "biology"))
    assert "User alice is unauthorized for project biology" in keystone_error(v3, 401)
    default = keystone_post(node, "/auth/v3/auth/tokens", v3_body("alice", DEFAULT_TENANT))
    assert "its projects are chemistry, physics" in keystone_error(default, 401)
    assert node.connection.keys("nimbo:auth-token:*") == before

    token = v2_token(node, "alice", "physics")  # a token of hers, rescoped out of her groups
    rescoped = keystone_post(
        node, "/auth/v2.0/tokens", {"auth": {"token": {"id": token}, "tenantName": "biology"}}
    )
    assert "unauthorized for tenant biology" in keystone_error(rescoped, 401)
    v3_rescoped = rescope(node, rescope_body(token, id="biology"))
    assert "unauthorized for project biology" in keystone_error(v3_rescoped, 401)


def test_a_rescoped_token_acts_in_its_new_group(node: Node) -> None:
    physics = v2_token(node, "alice", "physics")
    answer = keystone_post(
        node, "/auth/v2.0/tokens", {"auth": {"token": {"id": physics}, "tenantName": "chemistry"}}
    )
    assert answer.status_code == 200
    chemistry = answer.get_json()["access"]["token"]["id"]
    assert group_of(node, created(create(node, chemistry, "storage", STORAGE))) == "chemistry"
    assert group_of(node, created(create(node, physics, "storage", STORAGE))) == "physics"
    as_v3 = rescope(node, rescope_body(chemistry, id="physics"))
    assert as_v3.status_code == 201
    back = as_v3.headers["X-Subject-Token"]
    assert group_of(node, created(create(node, back, "storage", STORAGE))) == "physics"


def test_a_federated_token_scoped_as_rocci_does_creates_in_its_project(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    """rOCCI's ``--auth oauth2`` with ``ROCCI_CLIENT_KEYSTONE_TENANT=vo.other.eu``: an OIDC
    access token, an unscoped federated token, a token scoped to that project; then OCCI."""
    node = federated_node(make_node, identity_provider, hosts=HOST)
    unscoped_token = unscoped(node, identity_provider)
    private = created(create(node, unscoped_token, "compute", compute_body()))
    assert group_of(node, private) is None

    client = RocciOauth2(node, access_token(identity_provider))
    client.setup(tenant="vo.other.eu")
    assert client.authenticate().status_code == 200
    token = client.headers["X-Auth-Token"]
    assert stored(node, token)["tenant"] == "vo.other.eu"
    shared = created(create(node, token, "compute", compute_body()))
    assert group_of(node, shared) == "vo.other.eu"
    other = create(node, token, "compute", compute_body(**{GROUP: "vo.example.org"}))
    assert other.status_code == 403
    assert "scoped to project 'vo.other.eu'" in other.get_data(as_text=True)
