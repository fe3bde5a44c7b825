"""Copy, move and snapshot: the ``copy`` and ``move`` fields of a create (data objects and
containers) and the ``snapshot`` field of a container update. Each check runs when the
capability it exercises is claimed (by the container the result lands in; a claimed
capability that does not work is a MUST failure) and is skipped otherwise."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from conformance.cdmi.base import (
    CONTAINER,
    OBJECT,
    SUITE,
    Made,
    capabilities_of,
    cdmi,
    create_container,
    create_object,
    expect_gone,
    put,
    read,
    require,
    resolve,
    try_create,
    value_bytes,
    work_path,
)
from conformance.framework import Context, Level

SNAPSHOTS = "cdmi_snapshots/"
"""Where a container's snapshots live: ``<container>/cdmi_snapshots/<name>/`` (notes §13)."""


def source_uri(ctx: Context, made: Made) -> str:
    """What a ``copy`` or ``move`` field names: the source's path on the server (the spec's
    examples give URIs without the authority: a local copy, not one from a remote cloud)."""
    return urlsplit(made.url).path


def settled(ctx: Context, response: requests.Response, path: str, media: str,
            what: str) -> None:
    """``response`` to a create or update that answered 201/204, or 202 and then completes
    (polled: ``completionStatus`` ``Complete``; ``Error ...`` fails)."""
    ctx.expect_status(response, 201, 202, 204, what=what)
    if response.status_code != 202:
        return

    def complete() -> bool:
        doc, answer = read(ctx, path, accept=media)
        status = str(doc.get("completionStatus", ""))
        ctx.expect(not status.startswith("Error"), f"{what} completes, it is {status!r}", answer)
        return status == "Complete"

    ctx.poll(complete, what=f"{what} to complete")


def value_of(ctx: Context, path: str) -> bytes:
    doc, response = read(ctx, path, accept=OBJECT)
    return value_bytes(ctx, doc, response)


def expect_value(ctx: Context, path: str, wanted: bytes, what: str) -> None:
    got = value_of(ctx, path)
    ctx.expect(got == wanted, f"{what}: {wanted!r}, read {got!r}")


def create_from(ctx: Context, path: str, field: str, source: Made, media: str) -> Made:
    """A create of ``path`` whose body is ``{field: <source>}`` (copy or move); fails unless it
    completes; what it made is read back."""
    response = try_create(ctx, path, {field: source_uri(ctx, source)}, content=media)
    settled(ctx, response, path, media, f"{field} of {source.path} to {path}")
    doc, answer = read(ctx, path, accept=media)
    return Made(path, ctx.client.url(path), answer, doc)


def tree(ctx: Context, name: str) -> tuple[Made, dict[str, bytes]]:
    """A container ``name/`` holding a data object ``a`` and a container ``sub/`` holding
    ``b``: the container and the values by relative path."""
    ctx.need("work")
    made = create_container(ctx, work_path(ctx, f"{name}/"))
    values = {"a": b"alpha", "sub/b": b"beta"}
    create_container(ctx, work_path(ctx, f"{name}/sub/"))
    for relative, value in values.items():
        create_object(ctx, work_path(ctx, f"{name}/{relative}"), {"value": value.decode()})
    return made, values


# --- copy -------------------------------------------------------------------------------------


@SUITE.check("CDMI-COPY-001", clause=cdmi("8.2", "create a data object (CDMI), copy") + ", "
             + cdmi("12.1.5", "cdmi_copy_dataobject"), level=Level.MUST, group="copy-move",
             writes=True,
             title="cdmi_copy_dataobject claimed: a create with copy makes a new object (new "
                   "objectID) with the source's value, mimetype and metadata; the source stays")
def copy_dataobject(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_copy_dataobject")
    source = create_object(ctx, work_path(ctx, "copy-source.txt"), {
        "mimetype": "text/x-conformance", "value": "copy me", "metadata": {"colour": "green"}})
    copy = create_from(ctx, work_path(ctx, "copy.txt"), "copy", source, OBJECT)
    expect_value(ctx, copy.path, b"copy me", "the copy's value")
    ctx.expect(copy.document.get("mimetype") == "text/x-conformance", "the source's mimetype",
               copy.response)
    metadata = copy.document.get("metadata") or {}
    ctx.expect(metadata.get("colour") == "green", "the source's user metadata", copy.response)
    ctx.expect(copy.object_id and copy.object_id != source.object_id,
               f"a new objectID, not the source's {source.object_id}", copy.response)
    expect_value(ctx, source.path, b"copy me", "the source, unchanged")


@SUITE.check("CDMI-COPY-002", clause=cdmi("9.2", "create a container (CDMI), copy") + ", "
             + cdmi("12.1.5", "cdmi_copy_container"), level=Level.MUST, group="copy-move",
             writes=True,
             title="cdmi_copy_container claimed: a create with copy makes a new container with "
                   "copies of all its descendants (new objectIDs); the source stays")
def copy_container(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_copy_container")
    source, values = tree(ctx, "copy-tree")
    copy = create_from(ctx, work_path(ctx, "copied-tree/"), "copy", source, CONTAINER)
    children = copy.document.get("children") or []
    ctx.expect(sorted(children) == ["a", "sub/"], f"children a and sub/, listed {children}",
               copy.response)
    for relative, value in values.items():
        expect_value(ctx, copy.path + relative, value, f"the copy of {relative}")
    copied_a, _ = read(ctx, copy.path + "a", accept=OBJECT)
    source_a, _ = read(ctx, source.path + "a", accept=OBJECT)
    ctx.expect(copy.object_id != source.object_id
               and copied_a.get("objectID") != source_a.get("objectID"),
               "new objectIDs for the container and its descendants", copy.response)
    expect_value(ctx, source.path + "a", values["a"], "the source's child, unchanged")


# --- move -------------------------------------------------------------------------------------


@SUITE.check("CDMI-MOVE-001", clause=cdmi("8.2", "create a data object (CDMI), move") + ", "
             + cdmi("12.1.5", "cdmi_move_dataobject") + ", " + cdmi("5.10", "object ID"),
             level=Level.MUST, group="copy-move", writes=True,
             title="cdmi_move_dataobject claimed: a create with move puts the object at the new "
                   "name with its value and objectID; the source name is gone (404)")
def move_dataobject(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_move_dataobject")
    source = create_object(ctx, work_path(ctx, "move-source.txt"), {"value": "move me"})
    moved = create_from(ctx, work_path(ctx, "moved.txt"), "move", source, OBJECT)
    expect_value(ctx, moved.path, b"move me", "the moved object's value")
    ctx.expect(moved.object_id == source.object_id,
               f"the objectID kept ({source.object_id}), read {moved.object_id}",
               moved.response)
    expect_gone(ctx, source.path, "GET of the source name after the move")


@SUITE.check("CDMI-MOVE-002", clause=cdmi("9.2", "create a container (CDMI), move") + ", "
             + cdmi("12.1.5", "cdmi_move_container") + ", " + cdmi("5.10", "object ID"),
             level=Level.MUST, group="copy-move", writes=True,
             title="cdmi_move_container claimed: a create with move puts the container and its "
                   "descendants at the new name, objectID kept; the source name is gone (404)")
def move_container(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_move_container")
    source, values = tree(ctx, "move-tree")
    moved = create_from(ctx, work_path(ctx, "moved-tree/"), "move", source, CONTAINER)
    for relative, value in values.items():
        expect_value(ctx, moved.path + relative, value, f"the moved {relative}")
    ctx.expect(moved.object_id == source.object_id,
               f"the objectID kept ({source.object_id}), read {moved.object_id}",
               moved.response)
    expect_gone(ctx, source.path, "GET of the source name after the move")


# --- snapshots --------------------------------------------------------------------------------


@SUITE.fixture("snapped", writes=True)
def snapped(ctx: Context) -> Made:
    """A container ``snapped/`` with a data object ``d`` ("before")."""
    ctx.need("work")
    made = create_container(ctx, work_path(ctx, "snapped/"))
    create_object(ctx, made.path + "d", {"value": "before"})
    return made


@SUITE.fixture("snapshot", writes=True)
def snapshot(ctx: Context) -> tuple[Made, str]:
    """A snapshot ``s1`` of ``snapped/``, then ``d`` changed to "after": the container and the
    snapshot's path."""
    made: Made = ctx.need("snapped")
    response = put(ctx, made.path, {"snapshot": "s1"}, content=CONTAINER)
    settled(ctx, response, made.path, CONTAINER, "the snapshot s1")
    ctx.expect_status(put(ctx, made.path + "d", {"value": "after"}), 204,
                      what="update of d after the snapshot")
    return made, _snapshot_path(ctx, made, "s1")


def _claims_snapshot(ctx: Context) -> None:
    """Skip unless the container to be snapshotted claims cdmi_snapshot."""
    require(ctx, capabilities_of(ctx, ctx.need("snapped"), "the container"), "cdmi_snapshot")


def _snapshot_path(ctx: Context, made: Made, name: str) -> str:
    """The snapshot ``name`` of ``made``: as the container's snapshots field names it, else at
    ``cdmi_snapshots/<name>/`` below it."""
    doc, _ = read(ctx, made.path, accept=CONTAINER)
    for uri in _snapshots(doc):
        if uri.rstrip("/").endswith(f"/{name}"):
            return resolve(ctx, uri)
    return made.path + SNAPSHOTS + f"{name}/"


def _snapshots(doc: dict[str, Any]) -> list[str]:
    listed = doc.get("snapshots")
    return [str(x) for x in listed] if isinstance(listed, list) else []


@SUITE.check("CDMI-SNAP-001", clause=cdmi("9.4", "update a container (CDMI), snapshot") + ", "
             + cdmi("14", "CDMI snapshots") + ", " + cdmi("12.1.5", "cdmi_snapshot"),
             level=Level.MUST, group="snapshots",
             writes=True,
             title="cdmi_snapshot claimed: an update with snapshot makes a point-in-time copy: "
                   "the snapshot keeps a child's value from before a later change")
def snapshot_taken(ctx: Context) -> None:
    _claims_snapshot(ctx)
    made, snap = ctx.need("snapshot", failing=True)
    expect_value(ctx, snap + "d", b"before", "the snapshot's copy of d")
    expect_value(ctx, made.path + "d", b"after", "d itself, changed after the snapshot")


@SUITE.check("CDMI-SNAP-002", clause=cdmi("9.3", "read a container (CDMI), snapshots"),
             level=Level.SHOULD, group="snapshots", writes=True,
             title="a container with a snapshot lists it in its snapshots field")
def snapshot_listed(ctx: Context) -> None:
    _claims_snapshot(ctx)
    made, snap = ctx.need("snapshot")
    doc, response = read(ctx, made.path, accept=CONTAINER)
    listed = [resolve(ctx, uri).rstrip("/") for uri in _snapshots(doc)]
    ctx.expect(ctx.client.url(snap).rstrip("/") in listed,
               f"snapshots names {snap}, it lists {doc.get('snapshots')!r}", response)
