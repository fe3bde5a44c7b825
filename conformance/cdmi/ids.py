"""Object IDs: their format and CRC (checked by the suite itself), access under
``cdmi_objectid/`` for data objects and containers, corrupted IDs, ID-only objects."""

from __future__ import annotations

import requests

from conformance.cdmi import objectid
from conformance.cdmi.base import (
    CAPABILITY,
    CONTAINER,
    OBJECT,
    SUITE,
    TEXT_VALUE,
    Made,
    cdmi,
    create_object,
    created_at_location,
    document,
    get,
    headers,
    put,
    read,
    require,
    resolve,
    work_path,
)
from conformance.framework import Context, Level

BY_ID = "cdmi_objectid/"


def checked_id(ctx: Context, object_id: str, response: requests.Response,
               what: str) -> objectid.ObjectId:
    """``object_id`` decoded, or the check fails with ``what`` (which ID) and why."""
    try:
        return objectid.check(object_id)
    except ValueError as exc:
        ctx.fail(f"{what}: {exc}", response)


@SUITE.check("CDMI-ID-001", clause=cdmi("5.11", "CDMI object ID format"), level=Level.MUST,
             group="objectids",
             title="the objectID of cdmi_capabilities/ is well-formed (length, reserved "
                   "bytes, enterprise number, CRC-16)")
def id_format_capabilities(ctx: Context) -> None:
    doc, response = read(ctx, "cdmi_capabilities/", accept=CAPABILITY)
    checked_id(ctx, str(doc.get("objectID", "")), response,
               f"objectID {doc.get('objectID')!r}")


@SUITE.check("CDMI-ID-002", clause=cdmi("5.11", "CDMI object ID format"), level=Level.MUST,
             group="objectids", writes=True,
             title="the objectIDs of a container and of data objects are well-formed and "
                   "distinct")
def id_format_objects(ctx: Context) -> None:
    made = [ctx.need("work"), ctx.need("text-object"), ctx.need("binary-object")]
    ids = [checked_id(ctx, m.object_id, m.response, f"objectID {m.object_id!r} of {m.path}")
           .text.upper() for m in made]
    ctx.expect(len(set(ids)) == len(ids), f"distinct objectIDs, got {ids}", made[-1].response)


@SUITE.check("CDMI-ID-003", clause=cdmi("5.10", "object ID"), level=Level.MUST,
             group="objectids", writes=True,
             title="GET cdmi_objectid/<ID> of a data object answers what its path answers")
def id_read_object(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    by_path, _ = read(ctx, made.path, accept=OBJECT)
    by_id, response = read(ctx, BY_ID + made.object_id, accept=OBJECT)
    for name in ("objectID", "objectType", "value", "mimetype"):
        ctx.expect(by_id.get(name) == by_path.get(name), f"{name} as read by path", response)
    plain = ctx.client.get(BY_ID + made.object_id)
    ctx.expect_status(plain, 200, what="plain GET by ID")
    ctx.expect(plain.content == TEXT_VALUE.encode(), "the value, raw", plain)


@SUITE.check("CDMI-ID-004", clause=cdmi("5.10", "object ID"), level=Level.MUST,
             group="objectids", writes=True,
             title="a container is read by ID at cdmi_objectid/<ID>/ (with '/')")
def id_read_container(ctx: Context) -> None:
    made: Made = ctx.need("work")
    doc, response = read(ctx, BY_ID + made.object_id + "/", accept=CONTAINER)
    ctx.expect(doc.get("objectID") == made.object_id, "the container's objectID", response)
    ctx.expect(doc.get("objectType") == CONTAINER, f"objectType {CONTAINER}", response)


@SUITE.check("CDMI-ID-005", clause=cdmi("5.11", "CDMI object ID format") + "; notes §5",
             level=Level.MUST, group="objectids", writes=True,
             title="an ID with one digit changed (CRC mismatch) is not found (404 or 400)")
def id_corrupted(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    response = get(ctx, BY_ID + objectid.corrupt(made.object_id), accept=OBJECT)
    ctx.expect_status(response, 404, 400)


@SUITE.check("CDMI-ID-006", clause=cdmi("5.11", "CDMI object ID format"),
             level=Level.SHOULD, group="objectids", writes=True,
             title="IDs are read case-insensitively (lower-case ID answers the object)")
def id_lower_case(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, BY_ID + made.object_id.lower(), accept=OBJECT)
    ctx.expect(str(doc.get("objectID", "")).upper() == made.object_id.upper(),
               "the object's objectID", response)


@SUITE.check("CDMI-ID-007", clause=cdmi("5.10", "object ID"), level=Level.MUST,
             group="objectids", writes=True,
             title="an update by ID (PUT cdmi_objectid/<ID>) is seen by path; the ID stays")
def id_update(ctx: Context) -> None:
    ctx.need("work")
    made = create_object(ctx, work_path(ctx, "by-id.txt"), {"value": "first"})
    ctx.expect_status(put(ctx, BY_ID + made.object_id, {"value": "second"}), 204)
    doc, response = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("value") == "second", "the value written by ID", response)
    ctx.expect(doc.get("objectID") == made.object_id, "the same objectID", response)


@SUITE.check("CDMI-ID-008", clause=cdmi("12.1.1", "cdmi_post_dataobject_by_ID"),
             level=Level.MUST, group="objectids", writes=True,
             title="cdmi_post_dataobject_by_ID claimed: POST cdmi_objectid/ makes an object "
                   "read at the Location by ID")
def id_post(ctx: Context) -> None:
    require(ctx, ctx.need("system-capabilities"), "cdmi_post_dataobject_by_ID")
    response = ctx.client.post(BY_ID, headers=headers(content=OBJECT, accept=OBJECT),
                               data='{"value": "anonymous"}')
    location = created_at_location(ctx, response)
    ctx.expect_status(response, 201, 202)
    doc = document(ctx, response)
    ctx.expect(location.rstrip("/").endswith(str(doc.get("objectID"))),
               "Location ends with the new objectID", response)
    answer = get(ctx, resolve(ctx, location), accept=OBJECT)
    ctx.expect_status(answer, 200, what="GET of the Location")
    ctx.expect(document(ctx, answer).get("value") == "anonymous", "the value", answer)
