"""Containers: create, read, children and their ranges, nesting, trailing slashes, delete."""

from __future__ import annotations

from conformance.cdmi.base import (
    CONTAINER,
    SUITE,
    VERSION_HEADER,
    Made,
    cdmi,
    cleaned_up,
    create_container,
    create_object,
    created_at_location,
    delete,
    expect_gone,
    expect_last_fields,
    expect_missing_fields,
    get,
    media_type,
    put,
    read,
    refused_create,
    require,
    resolve,
    work_path,
)
from conformance.framework import Context, Level

HEADER_FIELDS = ("objectType", "objectID", "objectName", "parentURI", "capabilitiesURI",
                 "completionStatus")


@SUITE.fixture("nested", writes=True)
def nested(ctx: Context) -> Made:
    """A container in the run's container, holding three data objects a, b, c."""
    ctx.need("work")
    made = create_container(ctx, work_path(ctx, "nested/"))
    for name in ("a", "b", "c"):
        create_object(ctx, work_path(ctx, f"nested/{name}"), {"value": name})
    return made


@SUITE.check("CDMI-CON-001", clause=cdmi("9.2", "create a container (CDMI)"),
             level=Level.MUST, group="containers", writes=True,
             title="PUT with cdmi-container creates a container: 201 and its CDMI body")
def container_create(ctx: Context) -> None:
    made: Made = ctx.need("work", failing=True)
    response, doc = made.response, made.document
    ctx.expect(media_type(response) == CONTAINER, f"Content-Type {CONTAINER}", response)
    ctx.expect(response.headers.get(VERSION_HEADER), f"{VERSION_HEADER} in the answer",
               response)
    expect_missing_fields(ctx, doc, response, HEADER_FIELDS, "fields of the create answer missing")
    ctx.expect(doc.get("objectType") == CONTAINER, f"objectType {CONTAINER}", response)
    ctx.expect(str(doc.get("objectName", "")).endswith("/"), "objectName ends with '/'",
               response)


@SUITE.check("CDMI-CON-002", clause=cdmi("9.3", "read a container (CDMI)"),
             level=Level.MUST, group="containers", writes=True,
             title="a container reads with its header fields, metadata, childrenrange and "
                   "children (the children of a nested container included)")
def container_read(ctx: Context) -> None:
    made: Made = ctx.need("nested")
    doc, response = read(ctx, made.path, accept=CONTAINER)
    expect_missing_fields(ctx, doc, response,
                          (*HEADER_FIELDS, "metadata", "childrenrange", "children"))
    ctx.expect(sorted(doc["children"]) == ["a", "b", "c"], "children a, b, c", response)
    ctx.expect(doc["childrenrange"] == "0-2", "childrenrange 0-2", response)


@SUITE.check("CDMI-CON-003", clause=cdmi("9.3", "read a container (CDMI)"),
             level=Level.SHOULD, group="containers", writes=True,
             title="childrenrange and children are the last fields, in that order")
def container_field_order(ctx: Context) -> None:
    made: Made = ctx.need("nested")
    expect_last_fields(ctx, made.path, CONTAINER, "childrenrange", "children")


@SUITE.check("CDMI-CON-004", clause=cdmi("9.1", "nested containers"), level=Level.MUST,
             group="containers", writes=True,
             title="a nested container is a child of its parent, listed as 'name/'; its "
                   "parentURI resolves to the parent")
def container_nested(ctx: Context) -> None:
    made: Made = ctx.need("nested")
    parent, response = read(ctx, work_path(ctx), accept=CONTAINER)
    ctx.expect("nested/" in parent.get("children", []), "'nested/' among the children",
               response)
    parent_uri = str(made.document.get("parentURI", ""))
    ctx.expect(resolve(ctx, parent_uri).rstrip("/") == ctx.client.url(work_path(ctx))
               .rstrip("/"), f"parentURI {parent_uri!r} names the run's container",
               made.response)


@SUITE.check("CDMI-CON-005", clause=cdmi("9.1", "trailing slash"), level=Level.MUST,
             group="containers", writes=True,
             title="an existing container addressed without its '/' answers 301 with the "
                   "URI with '/' in Location")
def container_no_slash(ctx: Context) -> None:
    made: Made = ctx.need("nested")
    response = get(ctx, made.path.rstrip("/"), accept=CONTAINER)
    ctx.expect_status(response, 301)
    location = response.headers.get("Location", "")
    ctx.expect(location and resolve(ctx, location) == made.url,
               f"Location {made.url}", response)


@SUITE.check("CDMI-CON-006", clause=cdmi("9.1", "trailing slash"), level=Level.MUST,
             group="containers", writes=True,
             title="a CDMI container create without the trailing '/' is refused with 400")
def container_create_no_slash(ctx: Context) -> None:
    refused_create(ctx, "slashless", {}, content=CONTAINER)


@SUITE.check("CDMI-CON-007", clause=cdmi("9.2", "create a container (CDMI)"),
             level=Level.SHOULD, group="containers", writes=True,
             title="a create under a missing parent container is refused with 404")
def container_missing_parent(ctx: Context) -> None:
    ctx.need("work")
    path = work_path(ctx, "absent/child/")
    response = put(ctx, path, {}, content=CONTAINER)
    for made in (work_path(ctx, "absent/"), path):  # the parent, if the server made it too
        cleaned_up(ctx, made, response)
    ctx.expect_status(response, 404)


@SUITE.check("CDMI-CON-008", clause=cdmi("9.5", "delete a container (CDMI)"), level=Level.MUST,
             group="containers", writes=True,
             title="DELETE of an empty container answers 204; it is then gone (404)")
def container_delete_empty(ctx: Context) -> None:
    ctx.need("work")
    made = create_container(ctx, work_path(ctx, "empty/"))
    ctx.expect_status(delete(ctx, made.path), 204)
    expect_gone(ctx, made.path)


@SUITE.check("CDMI-CON-009", clause=cdmi("9.5", "delete a container (CDMI)") + "; notes §7",
             level=Level.MUST, group="containers", writes=True,
             title="DELETE of a non-empty container answers 204 and removes its children")
def container_delete_full(ctx: Context) -> None:
    ctx.need("work")
    made = create_container(ctx, work_path(ctx, "full/"))
    child = create_object(ctx, work_path(ctx, "full/child"), {"value": "x"})
    ctx.expect_status(delete(ctx, made.path), 204)
    expect_gone(ctx, made.path, "GET of the container after the delete")
    expect_gone(ctx, child.path, "GET of its child after the delete")


@SUITE.check("CDMI-CON-010", clause=cdmi("9.3", "read a container (CDMI)"),
             level=Level.SHOULD, group="containers", writes=True,
             title="?childrenrange alone answers the range of all children")
def container_childrenrange(ctx: Context) -> None:
    made: Made = ctx.need("nested")
    doc, response = read(ctx, made.path + "?childrenrange", accept=CONTAINER)
    ctx.expect(doc.get("childrenrange") == "0-2", "childrenrange 0-2", response)
    ctx.expect("children" not in doc, "no children field (it was not asked for)", response)


@SUITE.check("CDMI-CON-011", clause=cdmi("9.1", "reserved names") + "; notes §4",
             level=Level.SHOULD, group="containers", writes=True,
             title="a container named cdmi_... (reserved) is refused with 400")
def container_reserved(ctx: Context) -> None:
    refused_create(ctx, "cdmi_conformance/", {}, content=CONTAINER)


@SUITE.check("CDMI-CON-012", clause=cdmi("7.2", "create a container (HTTP)"),
             level=Level.SHOULD, group="containers", writes=True,
             title="a plain HTTP PUT of a URL ending in '/' creates a container (201)")
def container_plain_create(ctx: Context) -> None:
    ctx.need("work")
    path = work_path(ctx, "plain-dir/")
    ctx.expect_status(cleaned_up(ctx, path, ctx.client.put(path, data=b"")), 201)
    doc, answer = read(ctx, path, accept=CONTAINER)
    ctx.expect(doc.get("objectType") == CONTAINER, "it reads as a container", answer)


# --- capabilities of containers, exercised -----------------------------------------------------


@SUITE.check("CDMI-CAP-010", clause=cdmi("12.1.5", "cdmi_create_container"),
             level=Level.MUST, group="capabilities", writes=True,
             title="cdmi_create_container claimed: a child container can be created")
def claims_create_container(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_create_container")
    ctx.need("nested", failing=True)


@SUITE.check("CDMI-CAP-011", clause=cdmi("12.1.5", "cdmi_list_children"),
             level=Level.MUST, group="capabilities", writes=True,
             title="cdmi_list_children claimed: a container read lists its children")
def claims_list_children(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_list_children")
    made: Made = ctx.need("nested")
    doc, response = read(ctx, made.path + "?children", accept=CONTAINER)
    ctx.expect(sorted(doc.get("children", [])) == ["a", "b", "c"], "children a, b, c",
               response)


@SUITE.check("CDMI-CAP-012", clause=cdmi("12.1.5", "cdmi_list_children_range"),
             level=Level.MUST, group="capabilities", writes=True,
             title="cdmi_list_children_range claimed: ?children:0-1 answers two children "
                   "and childrenrange 0-1")
def claims_children_range(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_list_children_range")
    made: Made = ctx.need("nested")
    doc, response = read(ctx, made.path + "?childrenrange;children:0-1", accept=CONTAINER)
    children = doc.get("children", [])
    ctx.expect(isinstance(children, list) and len(children) == 2
               and set(children) <= {"a", "b", "c"}, "two of the children a, b, c", response)
    ctx.expect(doc.get("childrenrange") == "0-1", "childrenrange 0-1", response)


@SUITE.check("CDMI-CAP-013", clause=cdmi("12.1.5", "cdmi_delete_container"),
             level=Level.MUST, group="capabilities", writes=True,
             title="cdmi_delete_container claimed: a container can be deleted")
def claims_delete_container(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_delete_container")
    ctx.need("work")
    made = create_container(ctx, work_path(ctx, "doomed/"))
    ctx.expect_status(delete(ctx, made.path), 204)


@SUITE.check("CDMI-CAP-014", clause=cdmi("12.1.5", "cdmi_post_dataobject"),
             level=Level.MUST, group="capabilities", writes=True,
             title="cdmi_post_dataobject claimed: POST into a container creates a data "
                   "object (201 + Location)")
def claims_post_dataobject(ctx: Context) -> None:
    require(ctx, ctx.need("container-capabilities"), "cdmi_post_dataobject")
    made: Made = ctx.need("work")
    response = ctx.client.post(made.path, headers={"Content-Type": "text/plain"},
                               data=b"posted")
    location = created_at_location(ctx, response)
    ctx.expect_status(response, 201)
    ctx.expect(location, "a Location", response)
    answer = ctx.client.get(resolve(ctx, location))
    ctx.expect_status(answer, 200, what="GET of the Location")
    ctx.expect(answer.content == b"posted", "the posted bytes", answer)
