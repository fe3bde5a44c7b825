from __future__ import annotations

import pytest

from cdmi import acl
from gateway.errors import InvalidRequest

ALICE = acl.Subject("alice", frozenset({"physics"}), False)
BOB = acl.Subject("bob", frozenset(), False)
ADMIN = acl.Subject("root", frozenset(), True)


def ace(kind: str, who: str, mask: str, flags: str = "0x00") -> dict[str, str]:
    return {"acetype": kind, "identifier": who, "aceflags": flags, "acemask": mask}


def test_hex_and_names_parse_the_same() -> None:
    by_hex = acl.parse([ace("0x00", "bob", "0x00000009", "0x03")])
    by_name = acl.parse([ace("ALLOW", "bob", "READ_OBJECT, READ_METADATA",
                             "OBJECT_INHERIT|CONTAINER_INHERIT")])
    assert by_hex == by_name
    assert by_hex[0].to_json() == ace("0x00", "bob", "0x00000009", "0x03")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": 1}, "array"),
        ([1], "not an object"),
        ([{"acetype": "0x0"}], "lacks"),
        ([ace("0x05", "bob", "0x1")], "ALLOW, DENY or AUDIT"),
        ([ace("0x00", "bob", "FLY")], "unknown acemask"),
        ([ace("0x00", "", "0x1")], "identifier"),
        ([ace("0x00", "bob", "0xZZ")], "not hex"),
    ],
)
def test_bad_acls_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        acl.parse(value)


def test_first_matching_ace_decides_each_bit() -> None:
    aces = acl.parse([ace("DENY", "bob", "WRITE_OBJECT"), ace("ALLOW", "EVERYONE@", "RW")])
    assert acl.allowed(aces, BOB, "alice", acl.READ_OBJECT)
    assert not acl.allowed(aces, BOB, "alice", acl.WRITE_OBJECT)
    assert acl.allowed(aces, ALICE, "alice", acl.WRITE_OBJECT)


def test_undecided_bits_are_denied_and_admins_pass() -> None:
    aces = acl.default()
    assert acl.allowed(aces, ALICE, "alice", acl.ALL_PERMS)
    assert not acl.allowed(aces, BOB, "alice", acl.READ_OBJECT)
    assert acl.allowed(aces, ADMIN, "alice", acl.ALL_PERMS)


def test_groups_need_the_group_flag() -> None:
    aces = acl.parse([ace("ALLOW", "physics", "READ_OBJECT", "IDENTIFIER_GROUP")])
    assert acl.allowed(aces, ALICE, "carol", acl.READ_OBJECT)
    assert not acl.allowed(aces, BOB, "carol", acl.READ_OBJECT)


def test_inheritance() -> None:
    parent = acl.parse([
        ace("ALLOW", "OWNER@", "ALL_PERMS", "OBJECT_INHERIT, CONTAINER_INHERIT"),
        ace("ALLOW", "bob", "READ_OBJECT", "OBJECT_INHERIT"),
        ace("ALLOW", "carol", "READ_OBJECT", "CONTAINER_INHERIT, NO_PROPAGATE"),
        ace("ALLOW", "dave", "READ_OBJECT"),
    ])
    objects = acl.inherited(parent, container=False)
    assert [a.identifier for a in objects] == ["OWNER@", "bob"]
    assert all(a.flags == acl.INHERITED for a in objects)
    containers = acl.inherited(parent, container=True)
    assert [a.identifier for a in containers] == ["OWNER@", "bob", "carol"]
    bob = containers[1]
    assert bob.flags & acl.INHERIT_ONLY  # passes on to objects, does not apply to the container
    assert not acl.allowed(containers, BOB, "alice", acl.READ_OBJECT)
    assert containers[2].flags == acl.INHERITED  # no propagation further down
    assert acl.allowed(acl.inherited(containers, container=False), BOB, "x", acl.READ_OBJECT)


def test_root_lets_everyone_list_and_create_but_passes_nothing_on() -> None:
    root = acl.root()
    assert acl.allowed(root, BOB, acl.OWNER, acl.ADD_SUBCONTAINER | acl.LIST_CONTAINER)
    assert not acl.allowed(root, BOB, "administrator", acl.DELETE)
    assert acl.inherited(root, container=True) == ()
