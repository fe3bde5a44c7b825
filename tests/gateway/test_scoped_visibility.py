"""A token scoped to a project acts only inside the project's group (gateway.services.tenancy:
``in_scope``, ``scope_condition``, ``acl_subject``; applied by the OCCI entity service, the
catalog, the user mixins and the CDMI service).

alice is in physics (A) and chemistry (B), bob in both, carol in biology. alice has things with
no group, in A and in B; bob has things shared in A and in B. alice's Keystone v3 token scoped to
A sees exactly her things in A (owner rights) and bob's in A (the group policy's rights):
listings, GET, the query interface, mixin collections, actions, links and CDMI by path and by
ID. Every other thing answers 404 on every verb, exactly as an id that exists nowhere (same
status, same body once the ids are blanked), and is left out of every listing. Her Basic
credentials and her unscoped token still see them all; an admin's scoped token sees all.
Over the Flask test client, SQLite, real Redis, no worker."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from werkzeug.test import TestResponse

from auth.principal import Principal
from cdmi import acl, objectid
from gateway.services.catalog import bump_catalog
from gateway.services.tenancy import (
    Tenancy,
    access_key,
    acl_subject,
    in_scope,
    scope_condition,
)
from gateway.store.db import Store
from gateway.store.models import CdmiObjectRow, EntityRow, Image, User
from occi import infrastructure as infra
from tests.auth.test_keystone_scope import v3_token
from tests.gateway.cdmi_client import CONTAINER, OBJECT, VERSION
from tests.gateway.conftest import (
    INFRA,
    Node,
    NodeFactory,
    category,
    compute_categories,
    entity_id,
    path_of,
    text_plain,
)
from tests.gateway.test_tenancy import groups

pytestmark = pytest.mark.redis

A, B = "physics", "chemistry"
HOST = {"host-a": "memory://scoped-visibility?cores=256&memory_mib=262144"}
GROUP = infra.GROUP_ATTRIBUTE
TAGS = "http://example.org/scoped#"
TEXT = {"Content-Type": "text/plain", "Accept": "text/plain"}
URI_LIST = {"Accept": "text/uri-list"}

# holder -> (owner, group): what alice's A-scoped token sees are SEEN, the others are HIDDEN
HOLDERS = {
    "mine": ("alice", ""),
    "minea": ("alice", A),
    "mineb": ("alice", B),
    "bobsa": ("bob", A),
    "bobsb": ("bob", B),
}
SEEN = ("minea", "bobsa")
HIDDEN = ("mine", "mineb", "bobsb")
KINDS = ("compute", "storage", "network", "storagelink", "networkinterface")
ALICE_IN_A = Principal("alice", groups=frozenset({A, B}), scope_group=A)


# --- the rules, as functions ---------------------------------------------------------------


@pytest.mark.parametrize("policy", ["read", "full", "none"])
def test_a_scoped_principal_reaches_its_scope_group_only(policy: str) -> None:
    rules = Tenancy(policy)
    unscoped = Principal("alice", groups=frozenset({A, B}))
    for owner, group in HOLDERS.values():
        assert rules.sees(unscoped, owner, group or None) is (owner == "alice" or policy != "none")
    assert rules.sees(ALICE_IN_A, "alice", A) and rules.may_change(ALICE_IN_A, "alice", A)
    assert rules.sees(ALICE_IN_A, "bob", A) is (policy != "none")
    assert rules.may_change(ALICE_IN_A, "bob", A) is (policy == "full")
    for owner, group in (("alice", None), ("alice", B), ("bob", B), ("bob", None)):
        assert not rules.sees(ALICE_IN_A, owner, group)
        assert not rules.may_change(ALICE_IN_A, owner, group)
        with pytest.raises(LookupError):  # the answer of something missing, not a 403
            rules.check_change(ALICE_IN_A, owner, group, LookupError("missing"))
    admin = Principal("root", groups=frozenset({A}), is_admin=True, scope_group=A)
    assert rules.sees(admin, "bob", B) and rules.may_change(admin, "alice", None)  # all


def test_scope_helpers() -> None:
    assert in_scope(ALICE_IN_A, A) and not in_scope(ALICE_IN_A, B)
    assert not in_scope(ALICE_IN_A, None)
    assert in_scope(Principal("alice", groups=frozenset({A})), None)  # unscoped: no limit
    admin = Principal("root", groups=frozenset({A}), is_admin=True, scope_group=A)
    assert in_scope(admin, B) and scope_condition(admin, EntityRow.group) is None
    assert scope_condition(Principal("bob"), EntityRow.group) is None
    assert acl_subject(ALICE_IN_A).groups == {A}  # an ACE naming chemistry grants it nothing
    assert acl_subject(Principal("alice", groups=frozenset({A, B}))).groups == {A, B}
    named_b = (acl.Ace(acl.ALLOW, B, acl.IDENTIFIER_GROUP, acl.ALL_PERMS),)
    assert not acl.granted(named_b, acl_subject(ALICE_IN_A), "bob", acl.READ_OBJECT, A)
    assert Tenancy.child_group(ALICE_IN_A, A) == A
    assert Tenancy.child_group(Principal("alice", groups=frozenset({A})), B) == B
    keys = {access_key(ALICE_IN_A), access_key(Principal("alice", groups=frozenset({A, B})))}
    keys.add(access_key(Principal("alice", groups=frozenset({A, B}), scope_group=B)))
    assert len(keys) == 3  # the caches never serve one scope's answer to another


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'rules.sqlite3'}")
    store.create_schema()
    yield store
    store.dispose()


def test_sql_conditions_of_a_scoped_principal(store: Store) -> None:
    with store.session(write=True) as session:
        session.add_all([User(name="alice"), User(name="bob")])
        session.flush()
        for holder, (owner, group) in HOLDERS.items():
            session.add(EntityRow(id=holder, kind="k", owner=owner, group=group or None, state="s"))
    for policy, sees, changes in (
        ("read", {"minea", "bobsa"}, {"minea"}),
        ("full", {"minea", "bobsa"}, {"minea", "bobsa"}),
        ("none", {"minea"}, {"minea"}),
    ):
        rules = Tenancy(policy)
        with store.session() as session:

            def ids(where: Any) -> set[str]:
                query = select(EntityRow.id)
                return set(session.scalars(query if where is None else query.where(where)))

            assert ids(rules.visible(ALICE_IN_A, EntityRow.owner, EntityRow.group)) == sees
            assert ids(rules.changeable(ALICE_IN_A, EntityRow.owner, EntityRow.group)) == changes
            unscoped = Principal("alice", groups=frozenset({A, B}))
            everything = set(HOLDERS) if policy != "none" else {"mine", "minea", "mineb"}
            assert ids(rules.visible(unscoped, EntityRow.owner, EntityRow.group)) == everything


# --- the world: things of every holder ------------------------------------------------------


@dataclass
class World:
    node: Node
    policy: str
    token: str = ""  # alice's, scoped to A
    things: dict[str, dict[str, str]] = field(default_factory=dict)  # holder -> kind -> path
    serial: int = 0

    def scoped(
        self, method: str, path: str, body: str | bytes | None = None, **headers: str
    ) -> TestResponse:
        """A request with alice's A-scoped token."""
        return self.node.request(
            method, path, user=None, data=body, headers={"X-Auth-Token": self.token, **headers}
        )

    def make(self, kind: str, body: str, user: str) -> str:
        response = self.node.post_text(f"/{kind}/", body, user=user)
        assert response.status_code == 201, response.get_data(as_text=True)
        return path_of(response.headers["Location"])

    def populate(self) -> None:
        for holder, (owner, group) in HOLDERS.items():
            self.serial += 1
            attrs = {"occi.core.title": "same", GROUP: group}
            compute = self.make("compute", text_plain(compute_categories(), attrs), owner)
            storage = self.make(
                "storage",
                text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 1.0,
                                                                  GROUP: group}),
                owner,
            )  # fmt: skip
            network = self.make(
                "network",
                text_plain(
                    [category("network", INFRA, "kind"),
                     category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")],
                    {"occi.network.address": f"10.77.{self.serial}.0/24", GROUP: group},
                ),
                owner,
            )  # fmt: skip
            things = {"compute": compute, "storage": storage, "network": network}
            for kind, target in (("storagelink", storage), ("networkinterface", network)):
                body = text_plain(
                    [category(kind, INFRA, "kind")],
                    {"occi.core.source": compute, "occi.core.target": target},
                )
                things[kind] = self.make(kind, body, owner)
            self.things[holder] = things


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the conditions are the ones test_tenancy.py runs on both engines."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


@pytest.fixture(params=["read", "full"])
def world(request: pytest.FixtureRequest, make_node: NodeFactory) -> World:
    node = make_node(HOST, auth_methods="local,token", group_policy=request.param)
    groups(node, alice=[A, B], bob=[A, B], carol=["biology"])
    world = World(node, request.param)
    world.token = v3_token(node, "alice", A)
    world.populate()
    return world


def may_change(world: World, holder: str) -> bool:
    return holder == "minea" or (holder == "bobsa" and world.policy == "full")


def expected(world: World, holder: str, *, write: bool, ok: int) -> int:
    if holder in HIDDEN:
        return 404
    return ok if not write or may_change(world, holder) else 403


def blanked(response: TestResponse, *secrets: str) -> tuple[int, str]:
    text = response.get_data(as_text=True)
    for secret in secrets:
        text = text.replace(secret, "<ID>")
    return response.status_code, text


def like_nothing(world: World, response: TestResponse, method: str, path: str, secret: str,
                 body: str | None = None, **headers: str) -> None:  # fmt: skip
    """``response`` (to a request naming ``secret``) is the answer to the same request naming
    something that exists nowhere: nothing tells the two apart."""
    if re.fullmatch(r"[0-9A-F]{48}", secret):
        unknown = objectid.new(world.node.config.cdmi_enterprise_number)
    elif re.fullmatch(r"[0-9a-f-]{36}", secret):
        unknown = str(uuid.uuid4())
    else:
        unknown = f"{secret[:-4]}{uuid.uuid4().hex[:4]}"
    twin = world.scoped(
        method,
        path.replace(secret, unknown),
        body.replace(secret, unknown) if body is not None else None,
        **headers,
    )
    assert blanked(response, secret) == blanked(twin, unknown), (method, path)


# --- OCCI -------------------------------------------------------------------------------------


def action_body(kind: str, term: str) -> str:
    return text_plain([category(term, f"{INFRA[:-1]}/{kind}/action#", "action")])


ACTIONS = {"compute": "start", "storage": "online", "network": "up"}


def test_every_verb_on_entities_out_of_the_scope_is_404(world: World) -> None:
    for holder in HOLDERS:
        for kind in KINDS:
            location = world.things[holder][kind]
            secret = entity_id(location)
            title = text_plain([category(kind, INFRA, "kind")], {"occi.core.title": "renamed"})
            asks: list[tuple[str, str, str | None, bool, int]] = [
                ("GET", location, None, False, 200),
                ("POST", location, title, True, 200),
                ("PUT", location, title, True, 200),
            ]
            if kind in ACTIONS:
                term = ACTIONS[kind]
                asks.append(
                    ("POST", f"{location}?action={term}", action_body(kind, term), True, 200)
                )
            if kind == "compute" and holder in HIDDEN:  # a seen one's console needs a worker
                asks.append(("GET", f"{location}/console", None, False, 200))
            for method, path, body, write, ok in asks:
                response = world.scoped(method, path, body, **TEXT)
                want = expected(world, holder, write=write, ok=ok)
                assert response.status_code == want, (holder, method, path, response.get_data())
                if want == 404 and method != "PUT":  # a PUT to an unknown id creates it
                    like_nothing(world, response, method, path, secret, body, **TEXT)
    # deletes last (links before what they link)
    for kind in KINDS[::-1]:
        for holder in HOLDERS:
            location = world.things[holder][kind]
            response = world.scoped("DELETE", location)
            want = expected(world, holder, write=True, ok=200)
            assert response.status_code == want, (holder, kind, response.get_data())
            if want == 404:
                like_nothing(world, response, "DELETE", location, entity_id(location))
    # alice's own credentials still reach every one of hers (and the shared ones)
    for holder in HIDDEN:
        row = world.node.row(world.things[holder]["compute"])
        assert row is not None and not row.deleting  # nothing hidden was touched
        assert world.node.get(world.things[holder]["compute"], user="alice").status_code == 200


def listed(response: TestResponse) -> set[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {path_of(line) for line in response.get_data(as_text=True).split() if line}


def holders_in(world: World, kind: str, locations: set[str]) -> set[str]:
    return {h for h in HOLDERS if world.things[h][kind] in locations}


def test_listings_show_the_scope_group_only(world: World) -> None:
    unscoped = v3_token(world.node, "alice")
    for kind in KINDS:
        # alice (Basic) lists first: a cached listing or entity never reaches the scoped token
        basic_list = listed(world.node.get(f"/{kind}/", user="alice", headers=URI_LIST))
        assert holders_in(world, kind, basic_list) == set(HOLDERS)
        for holder in HIDDEN:
            assert world.node.get(world.things[holder][kind], user="alice").status_code == 200
            assert world.scoped("GET", world.things[holder][kind]).status_code == 404
        scoped_list = listed(world.scoped("GET", f"/{kind}/", **URI_LIST))
        assert holders_in(world, kind, scoped_list) == set(SEEN), kind
        full = world.scoped("GET", f"/{kind}/", Accept="text/plain").get_data(as_text=True)
        for holder in HOLDERS:
            assert (entity_id(world.things[holder][kind]) in full) is (holder in SEEN), kind
        token_list = world.node.request(
            "GET", f"/{kind}/", user=None, headers={"X-Auth-Token": unscoped, **URI_LIST}
        )
        assert holders_in(world, kind, listed(token_list)) == set(HOLDERS)
    everything = listed(world.scoped("GET", "/", **URI_LIST))
    for kind in KINDS:
        assert holders_in(world, kind, everything) == set(SEEN)
    titled = world.scoped(
        "GET", "/compute/", **URI_LIST, **{"X-OCCI-Attribute": 'occi.core.title="same"'}
    )
    assert holders_in(world, "compute", listed(titled)) == set(SEEN)


def test_collection_wide_writes_stay_in_the_scope(world: World) -> None:
    def row(holder: str, kind: str) -> EntityRow:
        found = world.node.row(world.things[holder][kind])
        assert found is not None
        return found

    body = action_body("network", "down")
    response = world.scoped("POST", "/network/?action=down", body, **TEXT)
    assert response.status_code == 200, response.get_data(as_text=True)
    downed = {h for h in HOLDERS if row(h, "network").state_message == "down queued"}
    assert downed == {h for h in HOLDERS if may_change(world, h)}
    assert world.scoped("DELETE", "/compute/").status_code == 200
    gone = {h for h in HOLDERS if row(h, "compute").deleting}
    assert gone == {h for h in HOLDERS if may_change(world, h)}


Sent = list[tuple[str, tuple[Any, ...]]]


def statements_from(node: Node, table: str, call: Callable[[], TestResponse]) -> Sent:
    """The statements reading ``table`` while ``call`` runs, with their parameters."""
    sent: Sent = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, tuple(parameters or ())))

    event.listen(node.store.engine, "before_cursor_execute", keep)
    try:
        assert call().status_code == 200
    finally:
        event.remove(node.store.engine, "before_cursor_execute", keep)
    return [(s, p) for s, p in sent if f"FROM {table}" in s]


def test_a_scoped_listing_is_still_one_query(world: World) -> None:
    """The scope is a condition of the listing's one SELECT (its group bound as a parameter),
    not a check per row: one statement, scoped or not."""
    for kind in ("compute", "storagelink"):
        ((_, scoped),) = statements_from(
            world.node,
            "entities",
            lambda: world.scoped("GET", f"/{kind}/", **URI_LIST),  # noqa: B023
        )
        assert A in scoped and B not in scoped
        ((_, unscoped),) = statements_from(
            world.node, "entities",
            lambda: world.node.get(f"/{kind}/", user="alice", headers=URI_LIST),  # noqa: B023
        )  # fmt: skip
        assert A in unscoped and B in unscoped  # her groups' shared things
    # a CDMI container's children: one query, the scope in it
    boxes(world)
    children = [
        parameters
        for statement, parameters in statements_from(
            world.node, "cdmi_objects", lambda: world.scoped("GET", "/cdmi/", **VERSION)
        )
        if "cdmi_snapshots" in parameters  # children but the snapshots directory
    ]
    assert len(children) == 1 and A in children[0]


# --- the query interface, mixin collections, saved images -----------------------------------


def add_tag(world: World, holder: str) -> str:
    """A user mixin of ``holder``'s owner in ``holder``'s group; its location."""
    owner, group = HOLDERS[holder]
    body = (
        f'Category: t{holder}; scheme="{TAGS}"; class="mixin"; location="/t{holder}/"\r\n'
        f"X-OCCI-Attribute: {GROUP}={json.dumps(group)}\r\n"
    )
    assert world.node.post_text("/-/", body, user=owner).status_code == 200
    return f"/t{holder}/"


def add_image(world: World, holder: str) -> str:
    owner, group = HOLDERS[holder]
    term = f"img{holder}"
    with world.node.store.session(write=True) as session:
        session.add(Image(term=term, title=term, source="", owner=owner, group=group or None,
                          state="ready"))  # fmt: skip
        bump_catalog(session)
    return term


def test_user_mixins_and_saved_images_of_the_scope_only(world: World) -> None:
    tags = {holder: add_tag(world, holder) for holder in HOLDERS}
    images = {holder: add_image(world, holder) for holder in HOLDERS}
    computes = [world.things[h]["compute"] for h in HOLDERS]
    tagged = world.node.request(  # the admin puts every compute in the minea mixin
        "POST", tags["minea"], user="root",
        headers={"X-OCCI-Location": ", ".join(computes), "Content-Type": "text/occi"},
    )  # fmt: skip
    assert tagged.status_code == 200, tagged.get_data(as_text=True)

    for interface in ("/-/", "/.well-known/org/ogf/occi/-/"):
        scoped = world.scoped("GET", interface, Accept="text/plain").get_data(as_text=True)
        mine = world.node.get(interface, user="alice").get_data(as_text=True)
        for holder in HOLDERS:
            assert (f"Category: t{holder};" in scoped) is (holder in SEEN), holder
            assert (f"Category: {images[holder]};" in scoped) is (holder in SEEN), holder
            assert f"Category: t{holder};" in mine  # her own credentials: all of them

    collection = listed(world.scoped("GET", tags["minea"], **URI_LIST))
    assert holders_in(world, "compute", collection) == set(SEEN)
    assert world.scoped("GET", tags["bobsa"], **URI_LIST).status_code == 200  # bob's, shared
    for holder in HIDDEN:
        for method in ("GET", "POST", "PUT", "DELETE"):
            body = f"{world.things['minea']['compute']}\r\n" if method in ("POST", "PUT") else None
            headers = {"Content-Type": "text/uri-list"} if body else {}
            response = world.scoped(method, tags[holder], body, **headers)
            assert response.status_code == 404, (holder, method)
            like_nothing(world, response, method, tags[holder], f"t{holder}", body, **headers)
        # a compute out of the scope cannot be put into a mixin it sees
        outside = world.things[holder]["compute"]
        response = world.scoped("POST", tags["minea"], f"{outside}\r\n",
                                **{"Content-Type": "text/uri-list"})  # fmt: skip
        assert response.status_code == 404
        like_nothing(world, response, "POST", tags["minea"], entity_id(outside), f"{outside}\r\n",
                     **{"Content-Type": "text/uri-list"})  # fmt: skip
        # nor one of its images used
        compute = text_plain(compute_categories(image=images[holder]), {"occi.core.title": "x"})
        assert world.scoped("POST", "/compute/", compute, **TEXT).status_code == 400
        # a hidden mixin of hers, defined again, is someone else's: 409 as for an outsider
        again = f'Category: t{holder}; scheme="{TAGS}"; class="mixin"; location="/t{holder}/"\r\n'
        assert world.scoped("POST", "/-/", again, **TEXT).status_code == 409
        gone = world.scoped("DELETE", "/-/", f'Category: t{holder}; scheme="{TAGS}"\r\n', **TEXT)
        assert gone.status_code == 404
    compute = text_plain(compute_categories(image=images["minea"]), {"occi.core.title": "x"})
    assert world.scoped("POST", "/compute/", compute, **TEXT).status_code == 201
    removed = world.scoped("DELETE", "/-/", f'Category: tminea; scheme="{TAGS}"\r\n', **TEXT)
    assert removed.status_code == 200, removed.get_data(as_text=True)


def test_links_reach_the_scope_group_only(world: World) -> None:
    made = world.scoped("POST", "/compute/", text_plain(compute_categories()), **TEXT)
    assert made.status_code == 201, made.get_data(as_text=True)
    source = path_of(made.headers["Location"])
    assert world.node.row(source).group == A  # type: ignore[union-attr]
    for holder in HOLDERS:
        for kind, target_kind in (("storagelink", "storage"), ("networkinterface", "network")):
            target = world.things[holder][target_kind]
            body = text_plain(
                [category(kind, INFRA, "kind")],
                {"occi.core.source": source, "occi.core.target": target},
            )
            response = world.scoped("POST", f"/{kind}/", body, **TEXT)
            want = 400 if holder in HIDDEN else (201 if may_change(world, holder) else 403)
            assert response.status_code == want, (holder, kind, response.get_data())
            if want == 400:
                like_nothing(world, response, "POST", f"/{kind}/", entity_id(target), body, **TEXT)
    for holder in HIDDEN:  # from a compute out of the scope; inline, to a storage out of it
        body = text_plain(
            [category("storagelink", INFRA, "kind")],
            {"occi.core.source": world.things[holder]["compute"],
             "occi.core.target": world.things["minea"]["storage"]},
        )  # fmt: skip
        assert world.scoped("POST", "/storagelink/", body, **TEXT).status_code == 400
        link = (
            f'<{world.things[holder]["storage"]}>; rel="{INFRA}storage"; '
            f'category="{INFRA}storagelink"'
        )
        inline = text_plain(compute_categories(), {"occi.core.title": "x"}, [link])
        assert world.scoped("POST", "/compute/", inline, **TEXT).status_code == 400


def test_unscoped_credentials_and_admins_see_everything(world: World) -> None:
    groups(world.node, root=[A])
    admin = v3_token(world.node, "root", A)
    for token in (v3_token(world.node, "alice"), admin):
        for holder in HOLDERS:
            for kind in KINDS:
                response = world.node.request(
                    "GET", world.things[holder][kind], user=None, headers={"X-Auth-Token": token}
                )
                assert response.status_code == 200, (holder, kind)
    for holder in HOLDERS:
        assert world.node.get(world.things[holder]["storage"], user="alice").status_code == 200


# --- CDMI ------------------------------------------------------------------------------------


@dataclass
class Box:
    """A container of a holder in the root, holding ``doc``."""

    name: str
    container_id: str
    doc_id: str


def cdmi_as(world: World, user: str, method: str, path: str, body: Any, media: str) -> TestResponse:
    return world.node.request(
        method, f"/cdmi/{path}", user=user, data=json.dumps(body),
        headers={**VERSION, "Content-Type": media, "Accept": media},
    )  # fmt: skip


def alice_reads(world: World, path: str) -> TestResponse:
    """A CDMI read with alice's own (Basic, unscoped) credentials."""
    return world.node.get(f"/cdmi/{path}", user="alice", headers=VERSION)


def scoped_cdmi(world: World, method: str, path: str, body: Any = None,
                media: str = OBJECT) -> TestResponse:  # fmt: skip
    headers = {**VERSION, "Content-Type": media, "Accept": media} if body is not None else VERSION
    data = json.dumps(body) if body is not None else None
    return world.scoped(method, f"/cdmi/{path}", data, **headers)


def boxes(world: World) -> dict[str, Box]:
    made = {}
    for holder, (owner, group) in HOLDERS.items():
        name = f"box{holder}{uuid.uuid4().hex[:4]}"
        box = cdmi_as(world, owner, "PUT", f"{name}/", {"metadata": {GROUP: group}}, CONTAINER)
        assert box.status_code == 201, box.get_data(as_text=True)
        doc = cdmi_as(world, owner, "PUT", f"{name}/doc", {"value": "secret"}, OBJECT)
        assert doc.status_code == 201, doc.get_data(as_text=True)
        made[holder] = Box(
            name, json.loads(box.get_data())["objectID"], json.loads(doc.get_data())["objectID"]
        )
    return made


def group_of(world: World, object_id: str) -> str | None:
    with world.node.store.session() as session:
        row = session.get(CdmiObjectRow, object_id)
        assert row is not None
        return row.group


def test_cdmi_by_path_and_by_id_reaches_the_scope_group_only(world: World) -> None:
    made = boxes(world)
    root = scoped_cdmi(world, "GET", "")
    assert root.status_code == 200
    children = json.loads(root.get_data())["children"]
    for holder, box in made.items():
        assert (f"{box.name}/" in children) is (holder in SEEN), holder
        reads = [
            (f"{box.name}/", box.name),
            (f"{box.name}/doc", box.name),
            (box.name, box.name),  # no slash: a redirect to what it sees
            (f"cdmi_objectid/{box.container_id}/", box.container_id),
            (f"cdmi_objectid/{box.doc_id}", box.doc_id),
            (f"cdmi_objectid/{box.container_id}/doc", box.container_id),
        ]
        for path, secret in reads:
            response = scoped_cdmi(world, "GET", path)
            want = 301 if path == box.name else 200
            assert response.status_code == (want if holder in SEEN else 404), (holder, path)
            if holder in HIDDEN:
                like_nothing(world, response, "GET", f"/cdmi/{path}", secret, **VERSION)
        plain = world.scoped("GET", f"/cdmi/{box.name}/doc")
        assert plain.status_code == (200 if holder in SEEN else 404)
        assert alice_reads(world, f"{box.name}/doc").status_code == 200

        writes = [
            ("PUT", f"{box.name}/doc", {"value": "changed"}, OBJECT, 204, box.name),
            ("PUT", f"cdmi_objectid/{box.doc_id}", {"value": "changed"}, OBJECT, 204, box.doc_id),
            ("PUT", f"{box.name}/", {"metadata": {"color": "red"}}, CONTAINER, 204, box.name),
            ("PUT", f"{box.name}/new", {"value": "x"}, OBJECT, 201, box.name),
            ("POST", f"{box.name}/", {"value": "x"}, OBJECT, 201, box.name),
        ]
        for method, path, body, media, ok, secret in writes:
            response = scoped_cdmi(world, method, path, body, media)
            want = expected(world, holder, write=True, ok=ok)
            assert response.status_code == want, (holder, method, path, response.get_data())
            if want == 404 and (method, media) != ("PUT", CONTAINER):  # that would make one
                data = json.dumps(body)
                headers = {**VERSION, "Content-Type": media, "Accept": media}
                like_nothing(world, response, method, f"/cdmi/{path}", secret, data, **headers)
            if want == 201:
                assert group_of(world, json.loads(response.get_data())["objectID"]) == A
        # a copy or a move of something out of the scope: as of something that does not exist
        for operation in ("copy", "move"):
            body = {operation: f"/cdmi/{box.name}/doc"}
            response = scoped_cdmi(world, "PUT", f"{made['minea'].name}/{operation}{holder}", body)
            want = expected(world, holder, write=operation == "move", ok=201)
            want = 400 if want == 404 else want
            assert response.status_code == want, (holder, operation, response.get_data())
            if holder in HIDDEN:
                path = f"/cdmi/{made['minea'].name}/{operation}{holder}"
                headers = {**VERSION, "Content-Type": OBJECT, "Accept": OBJECT}
                like_nothing(world, response, "PUT", path, box.name, json.dumps(body), **headers)
    for holder, box in sorted(made.items(), key=lambda item: item[0] == "minea"):  # deletes last
        for path, secret in (
            (f"cdmi_objectid/{box.doc_id}", box.doc_id),
            (f"{box.name}/", box.name),
        ):
            response = scoped_cdmi(world, "DELETE", path)
            want = expected(world, holder, write=True, ok=204)
            assert response.status_code == want, (holder, path, response.get_data())
            if want == 404:
                like_nothing(world, response, "DELETE", f"/cdmi/{path}", secret, **VERSION)
    for holder in HIDDEN:  # all still there for her own credentials
        assert alice_reads(world, f"{made[holder].name}/doc").status_code == 200


def test_a_cdmi_child_made_with_a_scoped_token_is_in_the_scope_group(world: World) -> None:
    made = boxes(world)
    inside = made["minea"].name
    for how, response in (
        ("cdmi", scoped_cdmi(world, "PUT", f"{inside}/child", {"value": "x"})),
        ("post", scoped_cdmi(world, "POST", f"{inside}/", {"value": "x"})),
        ("container", scoped_cdmi(world, "PUT", f"{inside}/sub/", {}, CONTAINER)),
    ):
        assert response.status_code == 201, (how, response.get_data())
        assert group_of(world, json.loads(response.get_data())["objectID"]) == A, how
    plain = world.scoped("PUT", f"/cdmi/{inside}/plain", b"x", **{"Content-Type": "text/plain"})
    assert plain.status_code == 201, plain.get_data(as_text=True)
    with world.node.store.session() as session:
        row = session.scalars(
            select(CdmiObjectRow).where(CdmiObjectRow.path == f"{inside}/plain")
        ).one()
        assert row.group == A and row.owner == "alice"
    deeper = scoped_cdmi(world, "PUT", f"{inside}/sub/leaf", {"value": "x"})
    assert deeper.status_code == 201
    assert group_of(world, json.loads(deeper.get_data())["objectID"]) == A
    outside = made["mineb"].name  # her container in B: absent to the A-scoped token
    for response in (
        scoped_cdmi(world, "PUT", f"{outside}/child", {"value": "x"}),
        scoped_cdmi(world, "POST", f"{outside}/", {"value": "x"}),
        scoped_cdmi(world, "PUT", f"{outside}/sub/", {}, CONTAINER),
        world.scoped("PUT", f"/cdmi/{outside}/plain", b"x", **{"Content-Type": "text/plain"}),
    ):
        assert response.status_code == 404, response.get_data(as_text=True)
    # a child regrouped out of the scope by her own credentials is gone for the token,
    # even in a container it sees (the container's delete right does not reach it)
    moved = cdmi_as(world, "alice", "PUT", f"{inside}/doc", {"metadata": {GROUP: B}}, OBJECT)
    assert moved.status_code == 204, moved.get_data(as_text=True)
    assert scoped_cdmi(world, "GET", f"{inside}/doc").status_code == 404
    assert "doc" not in json.loads(scoped_cdmi(world, "GET", f"{inside}/").get_data())["children"]
    assert scoped_cdmi(world, "DELETE", f"{inside}/doc").status_code == 404
    assert alice_reads(world, f"{inside}/doc").status_code == 200
    # nor does a copy of the container take it along (nor, for anyone, a child they do not see)
    copied = scoped_cdmi(world, "PUT", "copied/", {"copy": f"/cdmi/{inside}/"}, CONTAINER)
    assert copied.status_code == 201, copied.get_data(as_text=True)
    assert "doc" not in json.loads(copied.get_data())["children"]
    assert {"child", "plain", "sub/"} <= set(json.loads(copied.get_data())["children"])
    private = cdmi_as(world, "alice", "PUT", f"{inside}/private", {"metadata": {GROUP: ""}}, OBJECT)
    assert private.status_code == 201
    by_bob = cdmi_as(world, "bob", "PUT", "bobs/", {"copy": f"/cdmi/{inside}/"}, CONTAINER)
    assert by_bob.status_code == 201, by_bob.get_data(as_text=True)
    bobs = set(json.loads(by_bob.get_data())["children"])
    assert "private" not in bobs and {"doc", "child"} <= bobs  # he is in B too


def test_cdmi_objects_by_id_only_of_another_group_are_absent(world: World) -> None:
    made = {}
    for holder, (owner, group) in HOLDERS.items():
        response = cdmi_as(world, owner, "POST", "cdmi_objectid/",
                           {"value": "v", "metadata": {GROUP: group}}, OBJECT)  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)
        made[holder] = json.loads(response.get_data())["objectID"]
    for holder, object_id in made.items():
        response = scoped_cdmi(world, "GET", f"cdmi_objectid/{object_id}")
        assert response.status_code == (200 if holder in SEEN else 404), holder
        if holder in HIDDEN:
            path = f"/cdmi/cdmi_objectid/{object_id}"
            like_nothing(world, response, "GET", path, object_id, **VERSION)
    by_id = scoped_cdmi(world, "POST", "cdmi_objectid/", {"value": "v"})
    assert by_id.status_code == 201
    assert group_of(world, json.loads(by_id.get_data())["objectID"]) == A


def test_a_snapshot_gives_no_one_more_than_the_tree(world: World) -> None:
    """Every copy in a snapshot keeps its original's owner, group and ACL: whoever takes the
    snapshot, a child private to its owner stays private in it (a group member who takes a
    snapshot of a shared container does not become the owner of copies of her private
    things), and what the group shares stays shared."""
    inside = boxes(world)["minea"].name  # alice's container in A, bob a member of A
    private = cdmi_as(world, "alice", "PUT", f"{inside}/private",
                      {"value": "hers", "metadata": {GROUP: ""}}, OBJECT)  # fmt: skip
    assert private.status_code == 201, private.get_data(as_text=True)
    takers = ["alice"] + (["bob"] if world.policy == "full" else [])  # a write of the container
    for taker in takers:
        taken = cdmi_as(world, taker, "PUT", f"{inside}/", {"snapshot": taker}, CONTAINER)
        assert taken.status_code == 204, taken.get_data(as_text=True)
        snapshot = f"{inside}/cdmi_snapshots/{taker}"
        assert cdmi_as(world, "bob", "GET", f"{snapshot}/private", None, OBJECT).status_code == 404
        listed = cdmi_as(world, "bob", "GET", f"{snapshot}/", None, CONTAINER)
        assert listed.status_code == 200, listed.get_data(as_text=True)
        assert json.loads(listed.get_data())["children"] == ["doc"]
        assert cdmi_as(world, "bob", "GET", f"{snapshot}/doc", None, OBJECT).status_code == 200
        assert alice_reads(world, f"{snapshot}/private").status_code == 200
        with world.node.store.session() as session:
            copies = {
                row.name: (row.owner, row.group)
                for row in session.scalars(
                    select(CdmiObjectRow).where(
                        CdmiObjectRow.path.startswith(f"{snapshot}/"),
                        CdmiObjectRow.path != f"{snapshot}/",
                    )
                )
            }
        assert copies == {"private": ("alice", None), "doc": ("alice", A)}, taker
