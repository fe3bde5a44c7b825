"""Field selection, user and storage-system metadata, and refusals of malformed requests."""

from __future__ import annotations

import json
from typing import Any

from conformance.cdmi.base import (
    CONTAINER,
    OBJECT,
    SUITE,
    TEXT_VALUE,
    TIME,
    Made,
    cdmi,
    claims,
    create_object,
    expect_gone,
    get,
    headers,
    put,
    read,
    refused_create,
    require,
    try_create,
    value_bytes,
    work_path,
)
from conformance.framework import Context, Level

STORAGE_METADATA = ("cdmi_size", "cdmi_ctime", "cdmi_atime", "cdmi_mtime", "cdmi_acount",
                    "cdmi_mcount")


# --- field selection ----------------------------------------------------------------------------


@SUITE.check("CDMI-FLD-001", clause=cdmi("8.3", "read a data object (CDMI), fields"),
             level=Level.MUST, group="fields", writes=True,
             title="?objectName;metadata answers those fields and not the value")
def fields_named(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, made.path + "?objectName;metadata", accept=OBJECT)
    ctx.expect(doc.get("objectName") == "text.txt", "objectName", response)
    ctx.expect(isinstance(doc.get("metadata"), dict), "metadata", response)
    ctx.expect("value" not in doc, "no value (not asked for)", response)
    ctx.expect(set(doc) <= {"objectName", "metadata"}, "only the fields asked for", response)


@SUITE.check("CDMI-FLD-002", clause=cdmi("9.3", "read a container (CDMI), fields"),
             level=Level.MUST, group="fields", writes=True,
             title="?children:0-1 answers the first two children only")
def fields_children(ctx: Context) -> None:
    made: Made = ctx.need("nested")
    doc, response = read(ctx, made.path + "?children:0-1", accept=CONTAINER)
    children = doc.get("children")
    ctx.expect(isinstance(children, list) and len(children) == 2, "two children", response)
    whole, _ = read(ctx, made.path + "?children", accept=CONTAINER)
    ctx.expect(children == whole.get("children", [])[:2],
               "the first two of the full listing", response)


@SUITE.check("CDMI-FLD-003", clause=cdmi("8.3", "read a data object (CDMI), value ranges"),
             level=Level.MUST, group="fields", writes=True,
             title="?value:0-9 answers the first ten bytes (when cdmi_read_value_range is "
                   "claimed)")
def fields_value_range(ctx: Context) -> None:
    require(ctx, ctx.need("object-capabilities"), "cdmi_read_value_range")
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, made.path + "?valuetransferencoding;value:0-9", accept=OBJECT)
    ctx.expect(value_bytes(ctx, doc, response) == TEXT_VALUE.encode()[:10],
               "the first ten bytes", response)


@SUITE.check("CDMI-FLD-004", clause=cdmi("8.3", "read a data object (CDMI), metadata:"),
             level=Level.SHOULD, group="fields", writes=True,
             title="?metadata:col answers the metadata items starting with 'col' only")
def fields_metadata_prefix(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, made.path + "?metadata:col", accept=OBJECT)
    ctx.expect(doc.get("metadata") == {"colour": "blue"}, "metadata {'colour': 'blue'}",
               response)


# --- metadata ---------------------------------------------------------------------------------


@SUITE.check("CDMI-MD-001", clause=cdmi("16.2", "user metadata"), level=Level.MUST,
             group="metadata", writes=True,
             title="user metadata given at create is read back")
def metadata_user(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, made.path + "?metadata", accept=OBJECT)
    metadata = doc.get("metadata", {})
    ctx.expect(metadata.get("colour") == "blue" and metadata.get("shape") == "round",
               "colour=blue, shape=round", response)


def user_metadata_after_update(ctx: Context, name: str, metadata: dict[str, str], query: str,
                               update: dict[str, str]) -> tuple[dict[str, str], Any]:
    """Create ``name`` with user ``metadata``, update it (PUT ``<path><query>`` with ``update``
    as its metadata, 204); the user metadata it then reads with and the read's answer."""
    ctx.need("work")
    made = create_object(ctx, work_path(ctx, name), {"value": "v", "metadata": metadata})
    ctx.expect_status(put(ctx, made.path + query, {"metadata": update}), 204)
    doc, response = read(ctx, made.path + "?metadata", accept=OBJECT)
    user = {k: v for k, v in doc.get("metadata", {}).items() if not k.startswith("cdmi_")}
    return user, response


@SUITE.check("CDMI-MD-002", clause=cdmi("8.4", "update a data object (CDMI), metadata"),
             level=Level.MUST, group="metadata", writes=True,
             title="an update with metadata replaces the user metadata")
def metadata_replace(ctx: Context) -> None:
    user, response = user_metadata_after_update(ctx, "meta-replace.txt",
                                                {"old": "1", "kept": "no"}, "", {"new": "2"})
    ctx.expect(user == {"new": "2"}, "user metadata {'new': '2'} only", response)


@SUITE.check("CDMI-MD-003", clause=cdmi("8.4", "update a data object (CDMI), metadata:"),
             level=Level.SHOULD, group="metadata", writes=True,
             title="?metadata:<name> updates set that item and leave the others")
def metadata_merge(ctx: Context) -> None:
    user, response = user_metadata_after_update(ctx, "meta-merge.txt", {"a": "1", "b": "2"},
                                                "?metadata:b", {"b": "3"})
    ctx.expect(user == {"a": "1", "b": "3"}, "user metadata {'a': '1', 'b': '3'}", response)


@SUITE.check("CDMI-MD-004", clause=cdmi("16.3", "storage system metadata"),
             level=Level.MUST, group="metadata", writes=True,
             title="the storage-system metadata the object's capabilities claim are present "
                   "(cdmi_size, cdmi_ctime, ...), with cdmi_size right")
def metadata_storage(ctx: Context) -> None:
    capabilities = ctx.need("object-capabilities")
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, made.path, accept=OBJECT)
    metadata = doc.get("metadata", {})
    claimed = [n for n in STORAGE_METADATA if claims(capabilities, n)]
    missing = [n for n in claimed if n not in metadata]
    ctx.expect(not missing, f"claimed storage-system metadata missing: {missing}", response)
    if "cdmi_size" in claimed:
        ctx.expect(metadata["cdmi_size"] == str(len(TEXT_VALUE.encode())),
                   f"cdmi_size {len(TEXT_VALUE.encode())} (a string)", response)


@SUITE.check("CDMI-MD-005", clause=cdmi("5.14", "time representations"), level=Level.MUST,
             group="metadata", writes=True,
             title="cdmi_ctime, cdmi_atime and cdmi_mtime are UTC times with six fraction "
                   "digits")
def metadata_times(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    doc, response = read(ctx, made.path, accept=OBJECT)
    metadata = doc.get("metadata", {})
    times = {n: metadata[n] for n in ("cdmi_ctime", "cdmi_atime", "cdmi_mtime")
             if n in metadata}
    if not times:
        ctx.skip("the object carries no time metadata (not claimed)")
    wrong = {n: v for n, v in times.items() if not isinstance(v, str) or not TIME.match(v)}
    ctx.expect(not wrong, f"times not in YYYY-MM-DDThh:mm:ss.ssssssZ: {wrong}", response)


@SUITE.check("CDMI-MD-006", clause=cdmi("16.3", "storage system metadata"),
             level=Level.MUST, group="metadata", writes=True,
             title="a client cannot set cdmi_size: it is ignored or refused (400)")
def metadata_read_only(ctx: Context) -> None:
    ctx.need("work")
    path = work_path(ctx, "meta-size.txt")
    response = try_create(ctx, path, {"value": "four", "metadata": {"cdmi_size": "999"}})
    if response.status_code == 400:
        return
    ctx.expect_status(response, 201, 400)
    doc, answer = read(ctx, path, accept=OBJECT)
    size = doc.get("metadata", {}).get("cdmi_size")
    ctx.expect(size in (None, "4"), "cdmi_size is the real size (4), not 999", answer)


@SUITE.check("CDMI-MD-007", clause=cdmi("16.2", "user metadata"), level=Level.SHOULD,
             group="metadata", writes=True,
             title="user metadata named cdmi_... (reserved) is refused with 400")
def metadata_reserved(ctx: Context) -> None:
    refused_create(ctx, "meta-reserved.txt", {"value": "v", "metadata": {"cdmi_conformance": "x"}})


@SUITE.check("CDMI-MD-008", clause=cdmi("16.3", "storage system metadata"),
             level=Level.SHOULD, group="metadata", writes=True,
             title="an update moves cdmi_mtime forward and leaves cdmi_ctime")
def metadata_mtime(ctx: Context) -> None:
    ctx.need("work")
    made = create_object(ctx, work_path(ctx, "meta-times.txt"), {"value": "one"})
    before, _ = read(ctx, made.path + "?metadata", accept=OBJECT)
    if "cdmi_mtime" not in before.get("metadata", {}):
        ctx.skip("the object carries no cdmi_mtime (not claimed)")
    ctx.expect_status(put(ctx, made.path, {"value": "two"}), 204)
    after, answer = read(ctx, made.path + "?metadata", accept=OBJECT)
    old, new = before["metadata"], after.get("metadata", {})
    ctx.expect(new.get("cdmi_mtime", "") > old["cdmi_mtime"], "a later cdmi_mtime", answer)
    ctx.expect(new.get("cdmi_ctime") == old.get("cdmi_ctime"), "the same cdmi_ctime", answer)


@SUITE.check("CDMI-MD-009", clause=cdmi("16.3", "storage system metadata") + "; notes §9",
             level=Level.SHOULD, group="metadata", writes=True,
             title="cdmi_owner names the object's owner")
def metadata_owner(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    owner = made.document.get("metadata", {}).get("cdmi_owner")
    ctx.expect(isinstance(owner, str) and owner, "a cdmi_owner", made.response)
    principal = ctx.client.principal
    if principal:
        ctx.expect(owner == principal, f"cdmi_owner {principal!r}", made.response)


# --- refusals ---------------------------------------------------------------------------------


def refused(ctx: Context, name: str, body: str) -> None:
    """A CDMI create of ``name`` with ``body`` must be 400 and make nothing."""
    expect_gone(ctx, refused_create(ctx, name, body), "GET after the refused create")


@SUITE.check("CDMI-ERR-001", clause=cdmi("8.2", "create a data object (CDMI)"),
             level=Level.MUST, group="errors", writes=True,
             title="a body that is not JSON is refused with 400 and creates nothing")
def error_bad_json(ctx: Context) -> None:
    refused(ctx, "bad-json", '{"value": "unterminated')


@SUITE.check("CDMI-ERR-002", clause=cdmi("8.2", "create a data object (CDMI)"),
             level=Level.MUST, group="errors", writes=True,
             title="a JSON body that is not an object is refused with 400")
def error_not_object(ctx: Context) -> None:
    refused(ctx, "bad-array", '["value", "x"]')


@SUITE.check("CDMI-ERR-003", clause=cdmi("8.2", "create a data object (CDMI)") +
             "; notes §1", level=Level.MUST, group="errors", writes=True,
             title="value together with copy (two operations) is refused with 400")
def error_two_operations(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    refused(ctx, "two-ops", json.dumps({"value": "x", "copy": made.path}))


@SUITE.check("CDMI-ERR-004", clause=cdmi("8.3", "read a data object (CDMI)"),
             level=Level.MUST, group="errors",
             title="GET of an object that does not exist answers 404")
def error_not_found(ctx: Context) -> None:
    name = f"{ctx.settings.prefix}-absent/none"
    ctx.expect_status(get(ctx, name, accept=OBJECT), 404)


@SUITE.check("CDMI-ERR-005", clause=cdmi("5.13.6", "reserved characters") + "; notes §4",
             level=Level.SHOULD, group="errors", writes=True,
             title="a name with an encoded '/' (%2F) is refused with 400")
def error_encoded_slash(ctx: Context) -> None:
    refused_create(ctx, "a%2Fb", {"value": "x"})


@SUITE.check("CDMI-ERR-006", clause=cdmi("5.12", "security"), level=Level.SHOULD,
             group="errors",
             title="a request without credentials is refused with 401 and a challenge")
def error_anonymous(ctx: Context) -> None:
    if not ctx.client.authenticated:
        ctx.skip("the run sends no credentials (or only a client certificate)")
    response = ctx.client.get("", headers=headers(accept=CONTAINER), anonymous=True)
    ctx.expect_status(response, 401)
    ctx.expect(response.headers.get("WWW-Authenticate"), "a WWW-Authenticate challenge",
               response)
