"""Data objects in both modes: CDMI (JSON value in UTF-8 or base 64) and plain HTTP (raw bytes
with their Content-Type, byte ranges), update and delete; capabilities of data objects."""

from __future__ import annotations

import base64

from conformance.cdmi.base import (
    BINARY_VALUE,
    OBJECT,
    SUITE,
    TEXT_VALUE,
    Made,
    cdmi,
    create_object,
    delete,
    document,
    expect_gone,
    expect_last_fields,
    expect_missing_fields,
    get,
    media_type,
    plain_create,
    put,
    read,
    refused_create,
    require,
    value_bytes,
    work_path,
)
from conformance.framework import Context, Level

HEADER_FIELDS = ("objectType", "objectID", "objectName", "parentURI", "capabilitiesURI",
                 "completionStatus", "mimetype", "metadata")
PLAIN_VALUE = b"The quick brown fox jumps over the lazy dog"


@SUITE.fixture("binary-object", writes=True)
def binary_object(ctx: Context) -> Made:
    """A data object made in CDMI with a base 64 value (all 256 byte values)."""
    ctx.need("work")
    return create_object(ctx, work_path(ctx, "binary.bin"), {
        "mimetype": "application/octet-stream", "valuetransferencoding": "base64",
        "value": base64.b64encode(BINARY_VALUE).decode()})


@SUITE.fixture("plain-object", writes=True)
def plain_object(ctx: Context) -> Made:
    """A data object made by a plain HTTP PUT (text/plain)."""
    ctx.need("work")
    return plain_create(ctx, work_path(ctx, "plain.txt"), PLAIN_VALUE,
                        what="plain HTTP PUT of a new data object")


# --- CDMI content type --------------------------------------------------------------------------


@SUITE.check("CDMI-OBJ-001", clause=cdmi("8.2", "create a data object (CDMI)"),
             level=Level.MUST, group="dataobjects", writes=True,
             title="PUT with cdmi-object creates a data object: 201 and its CDMI body")
def object_create(ctx: Context) -> None:
    made: Made = ctx.need("text-object", failing=True)
    doc, response = made.document, made.response
    ctx.expect(media_type(response) == OBJECT, f"Content-Type {OBJECT}", response)
    expect_missing_fields(ctx, doc, response, HEADER_FIELDS, "fields of the create answer missing")
    ctx.expect(doc.get("objectType") == OBJECT, f"objectType {OBJECT}", response)
    ctx.expect(doc.get("objectName") == "text.txt", "objectName text.txt", response)
    ctx.expect(doc.get("completionStatus") == "Complete", "completionStatus Complete",
               response)


@SUITE.check("CDMI-OBJ-002", clause=cdmi("8.3", "read a data object (CDMI)"),
             level=Level.MUST, group="dataobjects", writes=True,
             title="a UTF-8 data object reads back: value, valuetransferencoding utf-8, "
                   "valuerange, mimetype")
def object_read(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("value") == TEXT_VALUE, "the value written", response)
    ctx.expect(doc.get("valuetransferencoding") == "utf-8", "valuetransferencoding utf-8",
               response)
    ctx.expect(doc.get("valuerange") == f"0-{len(TEXT_VALUE) - 1}",
               f"valuerange 0-{len(TEXT_VALUE) - 1}", response)
    ctx.expect(doc.get("mimetype") == "text/plain", "mimetype text/plain", response)


@SUITE.check("CDMI-OBJ-003", clause=cdmi("8.3", "read a data object (CDMI)"),
             level=Level.SHOULD, group="dataobjects", writes=True,
             title="valuerange and value are the last fields, in that order")
def object_field_order(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    expect_last_fields(ctx, made.path, OBJECT, "valuerange", "value")


@SUITE.check("CDMI-OBJ-004", clause=cdmi("8.2", "valuetransferencoding"), level=Level.MUST,
             group="dataobjects", writes=True,
             title="a base64 value round-trips every byte; it reads with valuetransferencoding "
                   "base64")
def object_base64(ctx: Context) -> None:
    made: Made = ctx.need("binary-object", failing=True)
    doc, response = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("valuetransferencoding") == "base64", "valuetransferencoding base64",
               response)
    ctx.expect(value_bytes(ctx, doc, response) == BINARY_VALUE, "the bytes written", response)
    plain = ctx.client.get(made.path)
    ctx.expect_status(plain, 200, what="plain GET of the base64 object")
    ctx.expect(plain.content == BINARY_VALUE, "the bytes written, raw", plain)


@SUITE.check("CDMI-OBJ-005", clause=cdmi("8.2", "valuetransferencoding"), level=Level.MUST,
             group="dataobjects", writes=True,
             title="multi-byte UTF-8 round-trips; valuerange counts bytes")
def object_unicode(ctx: Context) -> None:
    ctx.need("work")
    text = "h\u00e9llo \u2603 \U0001f600"
    made = create_object(ctx, work_path(ctx, "unicode.txt"), {"value": text})
    doc, response = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("value") == text, "the text written", response)
    size = len(text.encode())
    ctx.expect(doc.get("valuerange") == f"0-{size - 1}", f"valuerange 0-{size - 1}", response)


@SUITE.check("CDMI-OBJ-006", clause=cdmi("8.4", "update a data object (CDMI)"),
             level=Level.MUST, group="dataobjects", writes=True,
             title="PUT of a new value answers 204; the value changes, absent fields stay")
def object_update(ctx: Context) -> None:
    ctx.need("work")
    made = create_object(ctx, work_path(ctx, "update.txt"),
                         {"value": "before", "mimetype": "text/x-conformance"})
    response = put(ctx, made.path, {"value": "after"})
    ctx.expect_status(response, 204)
    doc, answer = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("value") == "after", "the new value", answer)
    ctx.expect(doc.get("mimetype") == "text/x-conformance", "the mimetype kept", answer)


@SUITE.check("CDMI-OBJ-007", clause=cdmi("8.5", "delete a data object (CDMI)"),
             level=Level.MUST, group="dataobjects", writes=True,
             title="DELETE of a data object answers 204; it is then gone (404)")
def object_delete(ctx: Context) -> None:
    ctx.need("work")
    made = create_object(ctx, work_path(ctx, "delete.txt"), {"value": "x"})
    ctx.expect_status(delete(ctx, made.path, accept=OBJECT), 204)
    expect_gone(ctx, made.path)


@SUITE.check("CDMI-OBJ-008", clause=cdmi("8.2", "valuetransferencoding"), level=Level.MUST,
             group="dataobjects", writes=True,
             title="a value that is not base 64 under valuetransferencoding base64 is 400")
def object_bad_base64(ctx: Context) -> None:
    refused_create(ctx, "bad64.bin", {"valuetransferencoding": "base64", "value": "not base64 !!"})


@SUITE.check("CDMI-OBJ-009", clause=cdmi("8.2", "create a data object (CDMI)"),
             level=Level.SHOULD, group="dataobjects", writes=True,
             title="a create without value and mimetype makes an empty text/plain object")
def object_defaults(ctx: Context) -> None:
    ctx.need("work")
    made = create_object(ctx, work_path(ctx, "empty.txt"), {})
    doc, response = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("value") == "", "an empty value", response)
    ctx.expect(doc.get("mimetype") == "text/plain", "mimetype text/plain", response)


# --- plain HTTP -----------------------------------------------------------------------------


@SUITE.check("CDMI-HTTP-001", clause=cdmi("6.2", "create a data object (HTTP)") + ", "
             + cdmi("6.3", "read a data object (HTTP)"),
             level=Level.MUST, group="plain-http", writes=True,
             title="a plain PUT creates (201); a plain GET answers the bytes with their "
                   "Content-Type")
def plain_round_trip(ctx: Context) -> None:
    made: Made = ctx.need("plain-object", failing=True)
    response = ctx.client.get(made.path)
    ctx.expect_status(response, 200)
    ctx.expect(response.content == PLAIN_VALUE, "the bytes written", response)
    ctx.expect(media_type(response) == "text/plain", "Content-Type text/plain", response)


@SUITE.check("CDMI-HTTP-002", clause=cdmi("8.3", "read a data object (CDMI)"),
             level=Level.MUST, group="plain-http", writes=True,
             title="a plainly written object reads in CDMI with its mimetype and value")
def plain_read_as_cdmi(ctx: Context) -> None:
    made: Made = ctx.need("plain-object")
    doc, response = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("mimetype") == "text/plain", "mimetype text/plain", response)
    ctx.expect(value_bytes(ctx, doc, response) == PLAIN_VALUE, "the bytes written", response)


@SUITE.check("CDMI-HTTP-003", clause=cdmi("5.13.3", "range support"), level=Level.MUST,
             group="plain-http", writes=True,
             title="Range: bytes=4-8 answers 206 with Content-Range bytes 4-8/<size> and "
                   "those bytes")
def plain_range(ctx: Context) -> None:
    made: Made = ctx.need("plain-object")
    response = ctx.client.get(made.path, headers={"Range": "bytes=4-8"})
    ctx.expect_status(response, 206)
    wanted = f"bytes 4-8/{len(PLAIN_VALUE)}"
    ctx.expect(response.headers.get("Content-Range", "").strip() == wanted,
               f"Content-Range {wanted}", response)
    ctx.expect(response.content == PLAIN_VALUE[4:9], f"the bytes {PLAIN_VALUE[4:9]!r}",
               response)


@SUITE.check("CDMI-HTTP-004", clause="RFC 7233 §4.4; " + cdmi("5.13.3", "range support"),
             level=Level.SHOULD, group="plain-http", writes=True,
             title="a Range past the end answers 416")
def plain_range_unsatisfiable(ctx: Context) -> None:
    made: Made = ctx.need("plain-object")
    response = ctx.client.get(made.path, headers={"Range": "bytes=1000-2000"})
    ctx.expect_status(response, 416)


@SUITE.check("CDMI-HTTP-005", clause=cdmi("6.4", "update a data object (HTTP)"),
             level=Level.MUST, group="plain-http", writes=True,
             title="a plain PUT of an existing object replaces its bytes and type (2xx)")
def plain_update(ctx: Context) -> None:
    ctx.need("work")
    path = plain_create(ctx, work_path(ctx, "plain-update"), b"one").path
    second = ctx.client.put(path, headers={"Content-Type": "application/json"},
                            data=b'{"two": 2}')
    ctx.expect_status(second, 204, 200, 201, what="plain update")
    response = ctx.client.get(path)
    ctx.expect_status(response, 200)
    ctx.expect(response.content == b'{"two": 2}', "the new bytes", response)
    ctx.expect(media_type(response) == "application/json", "the new Content-Type", response)


@SUITE.check("CDMI-HTTP-006", clause=cdmi("6.5", "delete a data object (HTTP)"),
             level=Level.MUST, group="plain-http", writes=True,
             title="a plain DELETE answers 204; the object is then gone (404)")
def plain_delete(ctx: Context) -> None:
    ctx.need("work")
    path = plain_create(ctx, work_path(ctx, "plain-delete"), b"bye").path
    ctx.expect_status(ctx.client.delete(path), 204)
    ctx.expect_status(ctx.client.get(path), 404, what="GET after the delete")


@SUITE.check("CDMI-HTTP-007", clause=cdmi("6.2", "create a data object (HTTP)"),
             level=Level.SHOULD, group="plain-http", writes=True,
             title="plain binary content reads in CDMI as base64")
def plain_binary_as_base64(ctx: Context) -> None:
    ctx.need("work")
    path = plain_create(ctx, work_path(ctx, "plain.bin"), BINARY_VALUE,
                        "application/octet-stream").path
    doc, response = read(ctx, path, accept=OBJECT)
    ctx.expect(doc.get("valuetransferencoding") == "base64", "valuetransferencoding base64",
               response)
    ctx.expect(value_bytes(ctx, doc, response) == BINARY_VALUE, "the bytes written", response)


@SUITE.check("CDMI-HTTP-008", clause=cdmi("6.4", "update a data object (HTTP), "
                                          "Content-Range"),
             level=Level.MAY, group="plain-http", writes=True,
             title="a plain PUT with Content-Range bytes 2-4/<size> writes those bytes only")
def plain_partial_write(ctx: Context) -> None:
    ctx.need("work")
    path = plain_create(ctx, work_path(ctx, "plain-partial"), b"abcdefgh").path
    response = ctx.client.put(path, headers={"Content-Type": "text/plain",
                                             "Content-Range": "bytes 2-4/8"}, data=b"XYZ")
    ctx.expect_status(response, 204, 200)
    answer = ctx.client.get(path)
    ctx.expect(answer.content == b"abXYZfgh", "abXYZfgh", answer)


# --- capabilities of data objects, exercised ---------------------------------------------------


@SUITE.check("CDMI-CAP-020", clause=cdmi("12.1.4", "cdmi_read_value_range"),
             level=Level.MUST, group="capabilities", writes=True,
             title="cdmi_read_value_range claimed: ?value:2-5 reads those bytes (valuerange "
                   "2-5) and Range: bytes=2-5 answers 206")
def claims_read_value_range(ctx: Context) -> None:
    require(ctx, ctx.need("object-capabilities"), "cdmi_read_value_range")
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, made.path + "?valuerange;valuetransferencoding;value:2-5",
                         accept=OBJECT)
    wanted = TEXT_VALUE.encode()[2:6]
    ctx.expect(value_bytes(ctx, doc, response) == wanted, f"the bytes {wanted!r}", response)
    ctx.expect(doc.get("valuerange") == "2-5", "valuerange 2-5", response)
    plain = ctx.client.get(made.path, headers={"Range": "bytes=2-5"})
    ctx.expect_status(plain, 206, what="plain GET with Range: bytes=2-5")
    ctx.expect(plain.content == wanted, f"the bytes {wanted!r}", plain)


@SUITE.check("CDMI-CAP-021", clause=cdmi("12.1.4", "cdmi_modify_value_range"),
             level=Level.MUST, group="capabilities", writes=True,
             title="cdmi_modify_value_range claimed: PUT ?value:2-4 with a base64 value "
                   "writes those bytes only")
def claims_modify_value_range(ctx: Context) -> None:
    require(ctx, ctx.need("object-capabilities"), "cdmi_modify_value_range")
    ctx.need("work")
    made = create_object(ctx, work_path(ctx, "ranged.txt"), {"value": "abcdefgh"})
    response = put(ctx, made.path + "?value:2-4", {
        "valuetransferencoding": "base64", "value": base64.b64encode(b"XYZ").decode()})
    ctx.expect_status(response, 204)
    plain = ctx.client.get(made.path)
    ctx.expect_status(plain, 200)
    ctx.expect(plain.content == b"abXYZfgh", "abXYZfgh", plain)


@SUITE.check("CDMI-CAP-022", clause=cdmi("12.1.4", "cdmi_read_value"), level=Level.MUST,
             group="capabilities", writes=True,
             title="cdmi_read_value claimed: ?value answers the value")
def claims_read_value(ctx: Context) -> None:
    require(ctx, ctx.need("object-capabilities"), "cdmi_read_value")
    made: Made = ctx.need("text-object")
    response = get(ctx, made.path + "?value", accept=OBJECT)
    ctx.expect_status(response, 200)
    ctx.expect(document(ctx, response).get("value") == TEXT_VALUE, "the value", response)


@SUITE.check("CDMI-CAP-023", clause=cdmi("12.1.4", "cdmi_modify_value"), level=Level.MUST,
             group="capabilities", writes=True,
             title="cdmi_modify_value claimed: a value update is stored")
def claims_modify_value(ctx: Context) -> None:
    require(ctx, ctx.need("object-capabilities"), "cdmi_modify_value")
    ctx.need("work")
    made = create_object(ctx, work_path(ctx, "modify.txt"), {"value": "old"})
    ctx.expect_status(put(ctx, made.path, {"value": "new"}), 204)
    doc, response = read(ctx, made.path, accept=OBJECT)
    ctx.expect(doc.get("value") == "new", "the new value", response)
