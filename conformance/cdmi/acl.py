"""ACL effects between two users (CDMI 1.1.1 §16.1): given credentials for a second user
(``--user2``/``--password2`` or ``--token2``/``--bearer2`` with ``--principal2``), the second
user is kept out of the first user's objects until an ACE lets them in, and then only as far
as it does. Without a second user these checks are skipped."""

from __future__ import annotations

from typing import Any

from conformance.cdmi.base import (
    OBJECT,
    SUITE,
    Made,
    cdmi,
    create_container,
    create_object,
    get,
    headers,
    put,
    read,
    try_create,
    work_path,
)
from conformance.framework import Context, Level
from conformance.http import Client

HINT = "give --user2/--password2 (or --token2/--bearer2 and --principal2)"
CLAUSE = cdmi("16.1", "access control")
ALL_PERMS = "0x001F07FF"
READ_ALL = "0x00000009"  # READ_OBJECT | READ_METADATA
TRAVERSE = "0x00000020"


def ace(identifier: str, mask: str, flags: str = "0x00") -> dict[str, str]:
    return {"acetype": "0x00", "identifier": identifier, "aceflags": flags, "acemask": mask}


OWNER_ONLY = [ace("OWNER@", ALL_PERMS, "0x03")]


def second_user(ctx: Context) -> tuple[Client, str]:
    """The second user's client and ACL name (the check is skipped without one)."""
    peer = ctx.peer("user2", hint=HINT)
    if not peer.principal:
        ctx.skip("the second user's name is unknown: give --principal2")
    if peer.principal == ctx.client.principal:
        ctx.skip("the second user is the first user")
    return peer, peer.principal


def set_acl(ctx: Context, made: Made, acl: list[dict[str, str]]) -> None:
    response = put(ctx, made.path + "?metadata:cdmi_acl", {"metadata": {"cdmi_acl": acl}})
    ctx.expect_status(response, 204, what=f"the owner setting the ACL of {made.path}")


def kept_out(ctx: Context, response: Any, what: str) -> None:
    ctx.expect_status(response, 403, 404, what=what)


@SUITE.fixture("acl-container", writes=True)
def acl_container(ctx: Context) -> Made:
    """A container of the first user where the second may traverse, not list or read."""
    peer, name = second_user(ctx)
    del peer
    ctx.need("work")
    return create_container(ctx, work_path(ctx, "acl/"), {"metadata": {"cdmi_acl": [
        *OWNER_ONLY, ace(name, TRAVERSE)]}})


@SUITE.fixture("private-object", writes=True)
def private_object(ctx: Context) -> Made:
    ctx.need("acl-container")
    return create_object(ctx, work_path(ctx, "acl/private.txt"), {"value": "private"})


@SUITE.fixture("shared-object", writes=True)
def shared_object(ctx: Context) -> Made:
    """An object the first user shares with the second for reading (READ_OBJECT and
    READ_METADATA, no writing)."""
    _, name = second_user(ctx)
    ctx.need("acl-container")
    made = create_object(ctx, work_path(ctx, "acl/shared.txt"), {"value": "shared"})
    set_acl(ctx, made, [*OWNER_ONLY, ace(name, READ_ALL)])
    return made


@SUITE.check("CDMI-ACL-001", clause=CLAUSE, level=Level.MUST, group="acl", writes=True,
             title="user 2 cannot read user 1's private object (403 or 404), in CDMI or "
                   "plain HTTP")
def acl_private(ctx: Context) -> None:
    peer, _ = second_user(ctx)
    made: Made = ctx.need("private-object")
    kept_out(ctx, get(ctx, made.path, accept=OBJECT, client=peer), "user 2's CDMI read")
    kept_out(ctx, peer.get(made.path), "user 2's plain read")


@SUITE.check("CDMI-ACL-002", clause=CLAUSE, level=Level.MUST, group="acl", writes=True,
             title="after an ACE granting user 2 READ_OBJECT, user 2 reads the value")
def acl_granted(ctx: Context) -> None:
    peer, _ = second_user(ctx)
    made: Made = ctx.need("shared-object")
    doc, response = read(ctx, made.path, accept=OBJECT, client=peer)
    ctx.expect(doc.get("value") == "shared", "the value", response)
    plain = peer.get(made.path)
    ctx.expect_status(plain, 200, what="user 2's plain read")
    ctx.expect(plain.content == b"shared", "the value, raw", plain)


@SUITE.check("CDMI-ACL-003", clause=CLAUSE, level=Level.MUST, group="acl", writes=True,
             title="a READ grant does not let user 2 write (403); the value is unchanged")
def acl_no_write(ctx: Context) -> None:
    peer, _ = second_user(ctx)
    made: Made = ctx.need("shared-object")
    response = put(ctx, made.path, {"value": "defaced"}, client=peer)
    ctx.expect_status(response, 403, what="user 2's CDMI update")
    plain = peer.put(made.path, headers={"Content-Type": "text/plain"}, data=b"defaced")
    ctx.expect_status(plain, 403, what="user 2's plain update")
    doc, answer = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("value") == "shared", "the value unchanged", answer)


@SUITE.check("CDMI-ACL-004", clause=CLAUSE, level=Level.MUST, group="acl", writes=True,
             title="a READ grant does not let user 2 delete (403); the object stays")
def acl_no_delete(ctx: Context) -> None:
    peer, _ = second_user(ctx)
    made: Made = ctx.need("shared-object")
    ctx.expect_status(peer.delete(made.path, headers=headers()), 403,
                      what="user 2's delete")
    ctx.expect_status(get(ctx, made.path), 200, what="the owner's read after it")


@SUITE.check("CDMI-ACL-005", clause=CLAUSE, level=Level.MUST, group="acl", writes=True,
             title="user 2 cannot create in user 1's container without ADD_OBJECT (403)")
def acl_no_create(ctx: Context) -> None:
    peer, _ = second_user(ctx)
    ctx.need("acl-container")
    response = try_create(ctx, work_path(ctx, "acl/intruder.txt"), {"value": "x"}, client=peer)
    kept_out(ctx, response, "user 2's create")


@SUITE.check("CDMI-ACL-006", clause=CLAUSE, level=Level.MUST, group="acl", writes=True,
             title="when the owner takes the grant back, user 2 is kept out again")
def acl_revoked(ctx: Context) -> None:
    peer, name = second_user(ctx)
    ctx.need("acl-container")
    made = create_object(ctx, work_path(ctx, "acl/revoked.txt"), {"value": "soon private"})
    set_acl(ctx, made, [*OWNER_ONLY, ace(name, READ_ALL)])
    ctx.expect_status(get(ctx, made.path, accept=OBJECT, client=peer), 200,
                      what="user 2's read while granted")
    set_acl(ctx, made, OWNER_ONLY)
    kept_out(ctx, get(ctx, made.path, accept=OBJECT, client=peer),
             "user 2's read after the revocation")


@SUITE.check("CDMI-ACL-007", clause=CLAUSE, level=Level.SHOULD, group="acl", writes=True,
             title="an OBJECT_INHERIT grant on a container lets user 2 read objects made "
                   "in it later")
def acl_inherited(ctx: Context) -> None:
    peer, name = second_user(ctx)
    ctx.need("work")
    create_container(ctx, work_path(ctx, "team/"), {"metadata": {"cdmi_acl": [
        *OWNER_ONLY, ace(name, TRAVERSE), ace(name, READ_ALL, "0x01")]}})
    made = create_object(ctx, work_path(ctx, "team/report.txt"), {"value": "report"})
    doc, response = read(ctx, made.path, accept=OBJECT, client=peer)
    ctx.expect(doc.get("value") == "report", "the value", response)


@SUITE.check("CDMI-ACL-008", clause=CLAUSE, level=Level.SHOULD, group="acl", writes=True,
             title="the owner reads the ACL back in cdmi_acl, with user 2's ACE")
def acl_read_back(ctx: Context) -> None:
    _, name = second_user(ctx)
    made: Made = ctx.need("shared-object")
    doc, response = read(ctx, made.path + "?metadata:cdmi_acl", accept=OBJECT)
    acl = doc.get("metadata", {}).get("cdmi_acl")
    ctx.expect(isinstance(acl, list), "cdmi_acl is an array of ACEs", response)
    ctx.expect(any(isinstance(e, dict) and e.get("identifier") == name for e in acl),
               f"an ACE for {name}", response)

