"""Owner, group and the group policy: the rules as functions, then through the gateway (groups
named at create and changed later, links following their compute, saved images and user
mixins, the caches keyed by membership, the policy ``none``, CDMI groups and ``GROUP@``).

The isolation matrix (test_isolation.py) asks every route; here are the rules behind it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from auth.principal import Principal
from cdmi import acl
from gateway.errors import ConfigurationError, Forbidden, InvalidAttribute, NotFound
from gateway.services.tenancy import Tenancy, access_key
from gateway.store.models import EntityRow, Image, User, UserMixin
from occi import infrastructure as infra
from tests.gateway.cdmi_client import CONTAINER, OBJECT, Cdmi
from tests.gateway.conftest import (
    INFRA,
    Node,
    NodeFactory,
    _password_hash,
    category,
    entity_id,
    path_of,
    text_plain,
)

ALICE = Principal("alice", groups=frozenset({"physics"}))
CAROL = Principal("carol", groups=frozenset({"physics", "chemistry"}))
BOB = Principal("bob")
ROOT = Principal("root", is_admin=True)
HOST = {"host-a": "memory://tenancy?cores=256&memory_mib=262144"}
MISSING = NotFound("no compute x")


# --- the rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "member_sees", "member_changes"),
    [("read", True, False), ("full", True, True), ("none", False, False)],
)
def test_what_a_group_member_may(policy: str, member_sees: bool, member_changes: bool) -> None:
    rules = Tenancy(policy)
    assert rules.sees(CAROL, "alice", "physics") is member_sees
    assert rules.may_change(CAROL, "alice", "physics") is member_changes
    for who in (ALICE, ROOT):  # the owner and admins: everything, whatever the policy
        assert rules.sees(who, "alice", "physics") and rules.may_change(who, "alice", None)
    for owner, group in (("alice", None), ("alice", "biology")):  # not carol's
        assert not rules.sees(CAROL, owner, group) and not rules.may_change(CAROL, owner, group)
    assert not rules.sees(BOB, "alice", "physics")


def test_a_refusal_is_404_for_outsiders_and_403_for_readers() -> None:
    rules = Tenancy("read")
    with pytest.raises(NotFound) as hidden:
        rules.check_change(BOB, "alice", "physics", MISSING)
    assert hidden.value is MISSING  # exactly the answer of a missing entity
    with pytest.raises(Forbidden, match="members of group physics may only read"):
        rules.check_change(CAROL, "alice", "physics", MISSING)
    rules.check_change(ALICE, "alice", "physics", MISSING)
    rules.check_change(ROOT, "alice", None, MISSING)


def test_sql_conditions_select_what_the_rules_say(store: Any) -> None:
    store = store
    rows = [("a1", "alice", "physics"), ("a2", "alice", None), ("b1", "bob", "biology")]
    with store.session(write=True) as session:
        for name in ("alice", "bob"):
            session.add(User(name=name))
        session.flush()
        for entity, owner, group in rows:
            session.add(EntityRow(id=entity, kind="k", owner=owner, group=group, state="s"))
    for policy, carol_sees, carol_changes in (
        ("read", {"a1"}, set()),
        ("full", {"a1"}, {"a1"}),
        ("none", set(), set()),
    ):
        rules = Tenancy(policy)
        with store.session() as session:

            def ids(where: Any) -> set[str]:
                query = select(EntityRow.id)
                return set(session.scalars(query if where is None else query.where(where)))

            assert ids(rules.visible(CAROL, EntityRow.owner, EntityRow.group)) == carol_sees
            assert ids(rules.changeable(CAROL, EntityRow.owner, EntityRow.group)) == carol_changes
            assert ids(rules.visible(ALICE, EntityRow.owner, EntityRow.group)) == {"a1", "a2"}
            assert ids(rules.visible(BOB, EntityRow.owner, EntityRow.group)) == {"b1"}
            assert ids(rules.visible(ROOT, EntityRow.owner, EntityRow.group)) == {"a1", "a2", "b1"}


@pytest.fixture
def store(tmp_path: Any) -> Any:
    from gateway.store.db import Store

    store = Store(f"sqlite:///{tmp_path / 'rules.sqlite3'}")
    store.create_schema()
    yield store
    store.dispose()


def test_new_groups_are_the_creators_or_the_default() -> None:
    private, primary = Tenancy("read", "none"), Tenancy("read", "primary")
    assert private.new_group(ALICE, None) is None
    assert primary.new_group(ALICE, None) == "physics"
    assert primary.new_group(CAROL, None) is None  # two groups: no primary one
    assert primary.new_group(ALICE, "") is None  # asked for none
    assert private.new_group(CAROL, " chemistry ") == "chemistry"
    assert private.new_group(ROOT, "anything") == "anything"  # admins name any group
    with pytest.raises(InvalidAttribute) as refused:
        private.new_group(CAROL, "biology")
    assert "one of your groups (chemistry, physics)" in refused.value.message
    with pytest.raises(InvalidAttribute, match="you belong to no group"):
        private.new_group(BOB, "physics")
    with pytest.raises(InvalidAttribute, match="must be a string"):
        private.new_group(ALICE, 7)
    with pytest.raises(InvalidAttribute, match="control characters"):
        private.new_group(ROOT, "a\nb")


def test_only_owners_and_admins_change_a_group() -> None:
    rules = Tenancy("full")
    assert rules.regroup(ALICE, "alice", None, "physics") == "physics"
    assert rules.regroup(ALICE, "alice", "physics", "") is None
    assert rules.regroup(ROOT, "alice", "physics", "biology") == "biology"
    assert rules.regroup(CAROL, "alice", "physics", "physics") == "physics"  # unchanged: fine
    with pytest.raises(Forbidden, match=r"only the owner \(alice\) or an administrator"):
        rules.regroup(CAROL, "alice", "physics", "chemistry")
    with pytest.raises(InvalidAttribute):
        rules.regroup(ALICE, "alice", "physics", "chemistry")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="group_policy must be one of read, full"):
        Tenancy("write")
    with pytest.raises(ConfigurationError, match="tenancy_default_group"):
        Tenancy("read", "first")


def test_cache_keys_follow_membership_and_admin_rights() -> None:
    keys = {
        access_key(Principal("carol")),
        access_key(Principal("carol", groups=frozenset({"physics"}))),
        access_key(Principal("carol", groups=frozenset({"physics", "chemistry"}))),
        access_key(Principal("carol", is_admin=True)),
    }
    assert len(keys) == 4
    assert access_key(CAROL) == access_key(Principal("carol", groups=frozenset(CAROL.groups)))


@pytest.mark.parametrize(
    ("policy", "read", "write"),
    [("read", True, False), ("full", True, True), ("none", False, False)],
)
def test_the_policy_as_cdmi_aces(policy: str, read: bool, write: bool) -> None:
    aces = (*acl.default(), *Tenancy(policy).group_aces())
    who = acl.Subject("carol", CAROL.groups, False)
    assert acl.allowed(aces, who, "alice", acl.READ_OBJECT, "physics") is read
    assert acl.allowed(aces, who, "alice", acl.WRITE_OBJECT | acl.DELETE, "physics") is write
    assert not acl.allowed(aces, who, "alice", acl.WRITE_ACL, "physics")  # never the ACL
    assert not acl.granted(aces, who, "alice", acl.ALL_PERMS, "biology")  # not her group
    denied = (acl.Ace(acl.DENY, acl.GROUP, 0, acl.READ_OBJECT), *aces)  # the ACL decides first
    assert not acl.allowed(denied, who, "alice", acl.READ_OBJECT, "physics")


# --- through the gateway ------------------------------------------------------------------


def groups(node: Node, **members: list[str]) -> None:
    with node.store.session(write=True) as session:
        if session.get(User, "carol") is None:
            session.add(User(name="carol", password_hash=_password_hash()))
            session.flush()
        for name, names in members.items():
            session.execute(update(User).where(User.name == name).values(groups=names))


@pytest.fixture
def gw(make_node: NodeFactory) -> Node:
    node = make_node(HOST)
    groups(node, alice=["physics"], carol=["physics", "chemistry"])
    return node


def compute(node: Node, user: str = "alice", **attrs: Any) -> Any:
    body = text_plain(
        [
            category("compute", INFRA, "kind"),
            category("debian12", "http://schemas.nimbostratus.org/occi/os_tpl#", "mixin"),
        ],
        {"occi.core.title": "c", **attrs},
    )
    return node.post_text("/compute/", body, user=user)


def attributes(node: Node, location: str, user: str = "root") -> dict[str, Any]:
    document = node.get_json(location, user=user)
    found: dict[str, Any] = document["attributes"]
    return found


def update_attrs(node: Node, location: str, user: str, **attrs: Any) -> Any:
    return node.post_text(path_of(location), text_plain([], attrs), user=user)


def test_group_named_at_create(gw: Node) -> None:
    created = compute(gw, **{"org.nimbostratus.group": "physics"})
    assert created.status_code == 201, created.get_data(as_text=True)
    location = created.headers["Location"]
    attrs = attributes(gw, location)
    assert attrs[infra.GROUP_ATTRIBUTE] == "physics" and attrs[infra.OWNER_ATTRIBUTE] == "alice"
    assert gw.get(location, user="carol").status_code == 200

    refused = compute(gw, **{"org.nimbostratus.group": "chemistry"})
    assert refused.status_code == 400
    assert "it must be one of your groups (physics)" in refused.get_data(as_text=True)
    by_admin = compute(gw, "root", **{"org.nimbostratus.group": "chemistry"})
    assert by_admin.status_code == 201
    assert gw.get(by_admin.headers["Location"], user="carol").status_code == 200
    assert gw.get(by_admin.headers["Location"], user="alice").status_code == 404

    private = compute(gw)  # tenancy_default_group = "none": private
    assert infra.GROUP_ATTRIBUTE not in attributes(gw, private.headers["Location"])
    assert gw.get(private.headers["Location"], user="carol").status_code == 404


def test_the_owner_attribute_is_the_servers(gw: Node) -> None:
    assert compute(gw, **{"org.nimbostratus.owner": "bob"}).status_code == 400
    location = compute(gw, **{"org.nimbostratus.owner": "alice"}).headers["Location"]
    assert (
        update_attrs(gw, location, "alice", **{"org.nimbostratus.owner": "bob"}).status_code == 400
    )
    document = gw.get(location, user="alice", headers={"Accept": "text/plain"})
    echoed = gw.request(
        "PUT",
        path_of(location),
        user="alice",
        data=document.get_data(),
        headers={"Content-Type": "text/plain"},
    )  # a rendering sent back as is
    assert echoed.status_code == 200, echoed.get_data(as_text=True)
    assert gw.row(location).owner == "alice"  # type: ignore[union-attr]


def test_group_changes_by_the_owner_and_links_follow(gw: Node) -> None:
    storage = gw.create_storage(user="alice")
    link = f'<{path_of(storage)}>; rel="{INFRA}storage"; category="{INFRA}storagelink"'
    body = text_plain(
        [
            category("compute", INFRA, "kind"),
            category("debian12", "http://schemas.nimbostratus.org/occi/os_tpl#", "mixin"),
        ],
        links=[link],
    )
    location = gw.create("compute", body, user="alice")
    with gw.store.session() as session:
        link_row = session.scalar(select(EntityRow).where(EntityRow.source == entity_id(location)))
        assert link_row is not None and link_row.group is None
        link_id = link_row.id
    assert gw.get(location, user="carol").status_code == 404  # cached for carol as absent...

    assert (
        update_attrs(gw, location, "alice", **{"org.nimbostratus.group": "physics"}).status_code
        == 200
    )
    assert gw.get(location, user="carol").status_code == 200  # ...until the write
    assert gw.get(f"/storagelink/{link_id}", user="carol").status_code == 200
    with gw.store.session() as session:
        assert session.get(EntityRow, link_id).group == "physics"  # type: ignore[union-attr]

    # a link's group is its compute's
    response = update_attrs(
        gw, f"/storagelink/{link_id}", "alice", **{"org.nimbostratus.group": ""}
    )
    assert response.status_code == 400 and "source compute's" in response.get_data(as_text=True)
    # a member may not regroup (403 under read: she may only read it)
    assert (
        update_attrs(gw, location, "carol", **{"org.nimbostratus.group": "chemistry"}).status_code
        == 403
    )
    assert update_attrs(gw, location, "alice", **{"org.nimbostratus.group": ""}).status_code == 200
    assert gw.get(location, user="carol").status_code == 404
    assert gw.get(f"/storagelink/{link_id}", user="carol").status_code == 404


def test_a_full_member_changes_but_does_not_regroup(make_node: NodeFactory) -> None:
    node = make_node(HOST, group_policy="full")
    groups(node, alice=["physics"], carol=["physics", "chemistry"])
    location = compute(node, **{"org.nimbostratus.group": "physics"}).headers["Location"]
    assert (
        update_attrs(node, location, "carol", **{"occi.core.title": "hers too"}).status_code == 200
    )
    response = update_attrs(node, location, "carol", **{"org.nimbostratus.group": "chemistry"})
    assert response.status_code == 403
    assert "only the owner (alice)" in response.get_data(as_text=True)
    assert node.row(location).group == "physics"  # type: ignore[union-attr]


def test_policy_none_shares_nothing(make_node: NodeFactory) -> None:
    node = make_node(HOST, group_policy="none", tenancy_default_group="primary")
    groups(node, alice=["physics"], carol=["physics"])
    location = compute(node).headers["Location"]
    assert node.row(location).group == "physics"  # type: ignore[union-attr]
    assert node.get(location, user="carol").status_code == 404
    assert (
        node.get("/compute/", user="carol", headers={"Accept": "text/uri-list"}).get_data(
            as_text=True
        )
        == ""
    )
    c = Cdmi(node)
    c.mkdir("shared/")
    assert c.as_user("carol").get("shared/").status_code == 404


def test_caches_follow_the_principals_groups(gw: Node) -> None:
    """The entity cache and the registry cache are keyed by membership: carol's answers
    while in physics are never served to carol out of it (and back)."""
    location = compute(gw, **{"org.nimbostratus.group": "physics"}).headers["Location"]
    gw.post_text(
        "/-/",
        'Category: t; scheme="http://x.org/t#"; class="mixin"; location="/t/"\r\n',
        user="alice",
    )
    with gw.store.session(write=True) as session:
        session.execute(update(UserMixin).values(group="physics"))
    occi = gw.nimbo.occi
    member, former = Principal("carol", groups=frozenset({"physics"})), Principal("carol")
    for _ in range(2):  # the second round is served from the caches
        assert occi.get(member, infra.COMPUTE, entity_id(location)).id == entity_id(location)
        with pytest.raises(NotFound):
            occi.get(former, infra.COMPUTE, entity_id(location))
        assert [e.id for e in occi.collection(member, infra.COMPUTE, full=True)] == [
            entity_id(location)
        ]
        assert occi.collection(former, infra.COMPUTE, full=True) == []
        assert "http://x.org/t#t" in occi.registry(member).mixins
        assert "http://x.org/t#t" not in occi.registry(former).mixins


def test_saved_images_and_user_mixins_are_shared_with_the_group(make_node: NodeFactory) -> None:
    node = make_node(HOST, tenancy_default_group="primary")
    groups(node, alice=["physics"], carol=["physics"])
    location = compute(node).headers["Location"]
    saved = node.action(location, "save", user="alice", attributes={"name": "analysis"})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    with node.store.session() as session:
        image = session.get(Image, "analysis")
        assert image is not None and image.owner == "alice" and image.group == "physics"
    assert node.get("/mixin/os_tpl/analysis/", user="carol").status_code == 200
    assert node.get("/mixin/os_tpl/analysis/", user="bob").status_code == 404

    node.post_text(
        "/-/",
        'Category: t; scheme="http://x.org/t#"; class="mixin"; location="/t/"\r\n',
        user="alice",
    )
    with node.store.session() as session:
        assert session.get(UserMixin, "http://x.org/t#t").group == "physics"  # type: ignore[union-attr]
    tag = 'Category: t; scheme="http://x.org/t#"'
    assert tag in node.get("/-/", user="carol").get_data(as_text=True)
    assert tag not in node.get("/-/", user="bob").get_data(as_text=True)


# --- the group of a user mixin, named at create --------------------------------------------

TAGS = "http://x.org/t#"


def tag(term: str = "t", location: str = "/t/") -> str:
    return f'Category: {term}; scheme="{TAGS}"; class="mixin"; location="{location}"'


def add_mixin(node: Node, user: str = "alice", *, group: str | None = None,
              body: str | None = None) -> Any:
    """POST a user mixin to the query interface, naming ``group`` as for an entity."""
    lines = [body or tag()]
    if group is not None:
        lines.append(f"X-OCCI-Attribute: org.nimbostratus.group={json.dumps(group)}")
    return node.post_text("/-/", "\r\n".join(lines) + "\r\n", user=user)


def mixin_group(node: Node, type_id: str = TAGS + "t") -> str | None:
    with node.store.session() as session:
        row = session.get(UserMixin, type_id)
        assert row is not None, type_id
        return row.group


def listed(node: Node, user: str, term: str = "t") -> bool:
    return f'Category: {term}; scheme="{TAGS}"' in node.get("/-/", user=user).get_data(
        as_text=True
    )


def test_a_user_mixin_takes_the_group_its_creator_names(gw: Node) -> None:
    created = add_mixin(gw, group="physics")  # tenancy_default_group = "none" here
    assert created.status_code == 200, created.get_data(as_text=True)
    assert mixin_group(gw) == "physics"
    location = compute(gw).headers["Location"]
    tagged = gw.request("PUT", "/t/", user="alice", data=f"X-OCCI-Location: {location}\r\n",
                        headers={"Content-Type": "text/plain"})
    assert tagged.status_code == 200, tagged.get_data(as_text=True)
    # the tenancy rules of entities: carol (physics) reads it, bob does not know it
    assert listed(gw, "carol") and not listed(gw, "bob")
    assert gw.get("/t/", user="carol").status_code == 200
    assert gw.get("/t/", user="bob").status_code == 404
    untag = gw.request("DELETE", "/t/", user="carol", data=f"X-OCCI-Location: {location}\r\n",
                       headers={"Content-Type": "text/plain"})
    assert untag.status_code == 403  # group_policy "read": she may only read it
    delete = {"Content-Type": "text/plain"}
    assert gw.request("DELETE", "/-/", user="carol", data=tag(), headers=delete).status_code == 403
    assert gw.request("DELETE", "/-/", user="bob", data=tag(), headers=delete).status_code == 404
    assert listed(gw, "alice")


def test_a_user_mixin_group_is_refused_as_for_an_entity(gw: Node) -> None:
    as_entity = compute(gw, **{"org.nimbostratus.group": "chemistry"})
    as_mixin = add_mixin(gw, group="chemistry")  # not one of alice's groups
    assert as_mixin.status_code == as_entity.status_code == 400
    assert as_mixin.get_data() == as_entity.get_data()  # the same message
    assert "it must be one of your groups (physics)" in as_mixin.get_data(as_text=True)
    assert not listed(gw, "root")  # nothing made
    bob = add_mixin(gw, "bob", group="physics")
    assert bob.status_code == 400 and "you belong to no group" in bob.get_data(as_text=True)
    other = add_mixin(gw, body=tag() + "\r\nX-OCCI-Attribute: occi.core.title=\"x\"")
    assert other.status_code == 400
    assert "takes no attribute but org.nimbostratus.group, not occi.core.title" in (
        other.get_data(as_text=True))
    assert not listed(gw, "root")
    # admins name any group
    assert add_mixin(gw, "root", group="chemistry").status_code == 200
    assert mixin_group(gw) == "chemistry"
    assert listed(gw, "carol") and not listed(gw, "alice")


def test_a_user_mixin_group_in_every_rendering(gw: Node) -> None:
    in_headers = gw.request("POST", "/-/", user="alice", headers={
        "Content-Type": "text/occi", "Category": tag("h", "/h/")[len("Category: "):],
        "X-OCCI-Attribute": 'org.nimbostratus.group="physics"'})
    assert in_headers.status_code == 200, in_headers.get_data(as_text=True)
    assert mixin_group(gw, TAGS + "h") == "physics"
    document = {"mixins": [{"scheme": TAGS, "term": "j", "location": "/j/"}],
                "attributes": {"org.nimbostratus.group": "physics"}}
    in_json = gw.post_json("/-/", document, user="alice")
    assert in_json.status_code == 200, in_json.get_data(as_text=True)
    assert mixin_group(gw, TAGS + "j") == "physics"
    refused = gw.post_json("/-/", {**document, "attributes": {
        "org.nimbostratus.group": "chemistry"}}, user="alice")
    assert refused.status_code == 400
    assert "it must be one of your groups" in refused.get_data(as_text=True)
    one = gw.post_json("/-/", {"scheme": TAGS, "term": "k", "location": "/k/"}, user="alice")
    assert one.status_code == 200 and mixin_group(gw, TAGS + "k") is None  # the default


def test_a_user_mixin_group_defaults_and_changes_by_its_owner(make_node: NodeFactory) -> None:
    node = make_node(HOST, group_policy="full", tenancy_default_group="primary")
    groups(node, alice=["physics"], carol=["physics", "chemistry"])
    assert add_mixin(node).status_code == 200
    assert mixin_group(node) == "physics"  # her only group
    private = add_mixin(node, body=tag("p", "/p/"), group="")
    assert private.status_code == 200 and mixin_group(node, TAGS + "p") is None
    assert not listed(node, "carol", "p")

    # the same definition again, with a group: the owner changes it
    assert add_mixin(node, body=tag("p", "/p/"), group="physics").status_code == 200
    assert mixin_group(node, TAGS + "p") == "physics" and listed(node, "carol", "p")
    assert add_mixin(node, body=tag("p", "/p/")).status_code == 200  # none named: kept
    assert mixin_group(node, TAGS + "p") == "physics"
    assert add_mixin(node, body=tag("p", "/p/"), group="chemistry").status_code == 400
    # a member under "full" changes and deletes it, but it stays alice's definition
    assert add_mixin(node, "carol", body=tag("p", "/p/"), group="").status_code == 409
    assert mixin_group(node, TAGS + "p") == "physics"
    delete = {"Content-Type": "text/plain"}
    gone = node.request("DELETE", "/-/", user="carol", data=tag("p", "/p/"), headers=delete)
    assert gone.status_code == 200 and not listed(node, "alice", "p")


# --- CDMI ---------------------------------------------------------------------------------


def meta(c: Cdmi, path: str) -> dict[str, Any]:
    found: dict[str, Any] = c.read(path)["metadata"]
    return found


def test_cdmi_groups(gw: Node) -> None:
    alice, carol, bob = Cdmi(gw), Cdmi(gw, "carol"), Cdmi(gw, "bob")
    refused = alice.cdmi(
        "PUT", "x/", {"metadata": {"org.nimbostratus.group": "chemistry"}}, media=CONTAINER
    )
    assert refused.status_code == 400 and "one of your groups" in refused.get_data(as_text=True)
    alice.mkdir("lab/", {"metadata": {"org.nimbostratus.group": "physics", "color": "red"}})
    alice.put("lab/data", {"value": "v"})
    assert meta(alice, "lab/")["org.nimbostratus.group"] == "physics"
    assert meta(alice, "lab/data")["org.nimbostratus.group"] == "physics"  # from its container
    with gw.store.session() as session:  # a column, not user metadata
        from gateway.store.models import CdmiObjectRow

        row = session.scalar(select(CdmiObjectRow).where(CdmiObjectRow.path == "lab/"))
        assert row is not None and row.metadata_ == {"color": "red"}

    assert carol.read("lab/data")["value"] == "v"
    assert carol.read("")["children"] == ["lab/"]
    assert carol.put("lab/data", {"value": "mine"}).status_code == 403
    assert bob.get("lab/data").status_code == 404
    assert bob.read("")["children"] == []

    # GROUP@ in an ACL is the object's group; the ACL can deny what the policy grants
    deny = [
        {"acetype": "DENY", "identifier": "GROUP@", "aceflags": "NO_FLAGS", "acemask": "READ_ALL"},
        {
            "acetype": "ALLOW",
            "identifier": "OWNER@",
            "aceflags": "NO_FLAGS",
            "acemask": "ALL_PERMS",
        },
    ]
    assert alice.put("lab/data", {"metadata": {"cdmi_acl": deny}}).status_code == 204
    assert carol.get("lab/data").status_code == 403  # she still holds other rights: 403
    grant = [
        {"acetype": "ALLOW", "identifier": "GROUP@", "aceflags": "NO_FLAGS", "acemask": "RW_ALL"},
        {
            "acetype": "ALLOW",
            "identifier": "OWNER@",
            "aceflags": "NO_FLAGS",
            "acemask": "ALL_PERMS",
        },
    ]
    assert alice.put("lab/data", {"metadata": {"cdmi_acl": grant}}).status_code == 204
    assert carol.put("lab/data", {"value": "ours"}).status_code == 204

    # the group changes by the owner only
    change = {"metadata": {"org.nimbostratus.group": "chemistry"}}
    assert carol.cdmi("PUT", "lab/", change, media=CONTAINER).status_code == 403
    assert alice.cdmi("PUT", "lab/", change, media=CONTAINER).status_code == 400  # not hers
    gone = {"metadata": {"org.nimbostratus.group": ""}}
    assert alice.cdmi("PUT", "lab/", gone, media=CONTAINER).status_code == 204
    assert "org.nimbostratus.group" not in meta(alice, "lab/")
    assert carol.get("lab/").status_code == 404


def test_cdmi_objects_by_id_only_get_the_group_asked(gw: Node) -> None:
    alice = Cdmi(gw)
    created = alice.cdmi(
        "POST",
        "cdmi_objectid/",
        {"value": "x", "metadata": {"org.nimbostratus.group": "physics"}},
        media=OBJECT,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    object_id = json.loads(created.get_data())["objectID"]
    assert Cdmi(gw, "carol").read(f"cdmi_objectid/{object_id}")["value"] == "x"
    assert Cdmi(gw, "bob").get(f"cdmi_objectid/{object_id}").status_code == 404


def test_a_container_owner_may_still_delete_children_she_cannot_see(gw: Node) -> None:
    """A container's DELETE_OBJECT right reaches children of others (the ACL's rule), even
    when she holds no right on the child itself."""
    alice, bob = Cdmi(gw), Cdmi(gw, "bob")
    drop = [
        {
            "acetype": "ALLOW",
            "identifier": "OWNER@",
            "aceflags": "NO_FLAGS",
            "acemask": "ALL_PERMS",
        },
        {
            "acetype": "ALLOW",
            "identifier": "bob",
            "aceflags": "NO_FLAGS",
            "acemask": "ADD_OBJECT, READ_METADATA",
        },
    ]
    alice.mkdir("drop/", {"metadata": {"cdmi_acl": drop}})
    assert bob.put("drop/note", {"value": "for alice"}).status_code == 201
    assert alice.get("drop/note").status_code == 404  # bob's, with his default ACL
    assert alice.request("DELETE", "drop/note").status_code == 204
    assert bob.get("drop/note").status_code == 404


# --- the store of an older release --------------------------------------------------------


def test_an_older_store_gains_the_group_columns(database_url: str) -> None:
    """A store made before groups existed gets the columns (and their index) at start-up;
    what it holds stays, with no group."""
    from sqlalchemy import inspect, text

    from gateway.store.db import Store

    old = Store(database_url)
    old.create_schema()
    with old.session(write=True) as session:
        session.add(User(name="alice"))
        session.flush()
        session.add(EntityRow(id="e1", kind="k", owner="alice", state="inactive"))
    tables = ("entities", "cdmi_objects", "images", "user_mixins")
    with old.engine.begin() as connection:
        # nor one a trigger names: a store from before groups was from before the quota
        # counters too (gateway.store.quota_use)
        for table in ("entities", "cdmi_objects"):
            for trigger in ("insert", "delete", "update"):
                connection.execute(text(
                    f"DROP TRIGGER nimbo_quota_use_{table}_{trigger}" if old.is_sqlite
                    else f"DROP TRIGGER nimbo_quota_use_{trigger} ON {table}"
                ))
        for table in tables:  # SQLite drops no column an index still names
            for index in inspect(connection).get_indexes(table):
                if "group" in index["column_names"]:
                    connection.execute(text(f'DROP INDEX "{index["name"]}"'))
            connection.execute(text(f'ALTER TABLE {table} DROP COLUMN "group"'))
    old.dispose()

    upgraded = Store(database_url)
    upgraded.create_schema()
    upgraded.create_schema()  # a second start finds nothing to do
    with upgraded.engine.connect() as connection:
        inspector = inspect(connection)
        for table in tables:
            assert "group" in {c["name"] for c in inspector.get_columns(table)}
        assert "ix_entities_group" in {i["name"] for i in inspector.get_indexes("entities")}
    with upgraded.session() as session:
        row = session.get(EntityRow, "e1")
        assert row is not None and row.owner == "alice" and row.group is None
    upgraded.dispose()
