"""Version negotiation, media types and the capabilities tree (read-only checks first)."""

from __future__ import annotations

from typing import Any

import requests

from conformance.cdmi.base import (
    CAPABILITY,
    CONTAINER,
    OBJECT,
    QUEUE,
    SUITE,
    VERSION_CLAUSE,
    VERSION_HEADER,
    Made,
    cdmi,
    claims,
    document,
    get,
    headers,
    keys_in_order,
    media_type,
    read,
    refused_create,
    resolve,
)
from conformance.framework import Context, Level

CAPABILITIES = "cdmi_capabilities/"
ARRAY_CAPABILITIES = frozenset({"cdmi_encryption", "cdmi_value_hash",
                                "cdmi_sanitization_method", "cdmi_authentication_methods"})


def versions_of(response: requests.Response) -> list[str]:
    """The versions the answer's version header names."""
    header = response.headers.get(VERSION_HEADER, "")
    return [v.strip() for v in header.split(",") if v.strip()]


def ask_version(ctx: Context, version: str, status: int) -> requests.Response:
    """GET cdmi_capabilities/ naming ``version`` (a list, perhaps); fails unless ``status``."""
    response = ctx.client.get(CAPABILITIES, headers=headers(version=version))
    ctx.expect_status(response, status)
    return response


def expect_cdmi_type(ctx: Context, doc: dict[str, Any], response: requests.Response,
                     media: str) -> None:
    """``response`` is a ``media`` answer (Content-Type) holding a ``media`` object."""
    ctx.expect(media_type(response) == media, f"Content-Type {media}", response)
    ctx.expect(doc.get("objectType") == media, f"objectType {media}", response)


# --- versions ---------------------------------------------------------------------------------


@SUITE.check("CDMI-VER-001", clause=VERSION_CLAUSE, level=Level.MUST, group="versions",
             title="a 1.1.1 request is served and the answer names version 1.1.1")
def version_111(ctx: Context) -> None:
    response = ask_version(ctx, "1.1.1", 200)
    ctx.expect(versions_of(response) == ["1.1.1"], f"{VERSION_HEADER}: 1.1.1 in the answer",
               response)


@SUITE.check("CDMI-VER-002", clause=VERSION_CLAUSE, level=Level.MUST, group="versions",
             title="a version list ('1.1, 1.1.1') is served; the answer names one of them")
def version_list(ctx: Context) -> None:
    response = ask_version(ctx, "1.1, 1.1.1", 200)
    echoed = versions_of(response)
    ctx.expect(len(echoed) == 1 and echoed[0] in ("1.1", "1.1.1"),
               f"{VERSION_HEADER} in the answer names one offered version", response)


@SUITE.check("CDMI-VER-003", clause=VERSION_CLAUSE, level=Level.SHOULD, group="versions",
             title="of a version list the highest common version is chosen (1.1.1)")
def version_highest(ctx: Context) -> None:
    response = ask_version(ctx, "1.1, 1.1.1", 200)
    ctx.expect(response.headers.get(VERSION_HEADER, "").strip() == "1.1.1",
               f"{VERSION_HEADER}: 1.1.1 (the highest common version)", response)


@SUITE.check("CDMI-VER-004", clause=VERSION_CLAUSE, level=Level.MUST, group="versions",
             title="a request naming only unsupported versions (9.9) is refused with 400")
def version_unsupported(ctx: Context) -> None:
    ask_version(ctx, "9.9", 400)


@SUITE.check("CDMI-VER-005", clause=VERSION_CLAUSE, level=Level.SHOULD, group="versions",
             title="the 400 for an unsupported version lists the server's versions")
def version_unsupported_lists(ctx: Context) -> None:
    response = ask_version(ctx, "9.9", 400)
    ctx.expect(any(v.startswith("1.") for v in versions_of(response)),
               f"{VERSION_HEADER} in the 400 names the versions the server speaks", response)


@SUITE.check("CDMI-VER-006", clause=VERSION_CLAUSE, level=Level.SHOULD, group="versions",
             title="unknown versions in a list are ignored ('1.1.1, 7.0' is served as 1.1.1)")
def version_unknown_ignored(ctx: Context) -> None:
    response = ask_version(ctx, "1.1.1, 7.0", 200)
    ctx.expect(response.headers.get(VERSION_HEADER, "").strip() == "1.1.1",
               f"{VERSION_HEADER}: 1.1.1", response)


# --- media types ------------------------------------------------------------------------------


@SUITE.check("CDMI-MT-001", clause=cdmi("5.13.2", "Content-Type negotiation"),
             level=Level.MUST, group="media-types",
             title="the root container read with Accept cdmi-container is a cdmi-container")
def media_container(ctx: Context) -> None:
    expect_cdmi_type(ctx, *read(ctx, "", accept=CONTAINER), CONTAINER)


@SUITE.check("CDMI-MT-002", clause=cdmi("5.13.2", "Content-Type negotiation"),
             level=Level.MUST, group="media-types", writes=True,
             title="a data object read with Accept cdmi-object is a cdmi-object")
def media_object(ctx: Context) -> None:
    made: Made = ctx.need("text-object")
    expect_cdmi_type(ctx, *read(ctx, made.path, accept=OBJECT), OBJECT)


@SUITE.check("CDMI-MT-003", clause=cdmi("12.2", "read a capability object"),
             level=Level.MUST, group="media-types",
             title="cdmi_capabilities/ read with Accept cdmi-capability is a cdmi-capability")
def media_capability(ctx: Context) -> None:
    expect_cdmi_type(ctx, *read(ctx, CAPABILITIES, accept=CAPABILITY), CAPABILITY)


@SUITE.check("CDMI-MT-004", clause=cdmi("5.13.2", "Content-Type negotiation"),
             level=Level.SHOULD, group="media-types",
             title="Accept naming only another CDMI class (cdmi-object on a container) is 406")
def media_wrong_class(ctx: Context) -> None:
    ctx.expect_status(get(ctx, "", accept=OBJECT), 406)


@SUITE.check("CDMI-MT-005", clause="RFC 6839 (+json); notes §3", level=Level.SHOULD,
             group="media-types",
             title="the +json flavour is served (Accept application/cdmi-container+json)")
def media_json_suffix(ctx: Context) -> None:
    response = get(ctx, "", accept=CONTAINER + "+json")
    ctx.expect_status(response, 200)
    ctx.expect(media_type(response) in (CONTAINER, CONTAINER + "+json"),
               "a cdmi-container answer", response)


@SUITE.check("CDMI-MT-006", clause=cdmi("5.13.2", "Content-Type negotiation") + "; notes §3",
             level=Level.SHOULD, group="media-types",
             title="a request with the version header and Accept */* is answered in CDMI JSON")
def media_version_only(ctx: Context) -> None:
    response = get(ctx, "", accept="*/*")
    ctx.expect_status(response, 200)
    doc = document(ctx, response)
    ctx.expect(doc.get("objectType") == CONTAINER, "a CDMI container document", response)


@SUITE.check("CDMI-MT-007", clause="CDMI 1.1.1 §9.2, create a container; notes §1",
             level=Level.MUST, group="media-types", writes=True,
             title="a body whose Content-Type does not fit the target (cdmi-object to a "
                   "container URL) is refused with 400")
def media_mismatch(ctx: Context) -> None:
    refused_create(ctx, "mismatch/", {"value": "x"}, content=OBJECT)


# --- capabilities -----------------------------------------------------------------------------


def capability_document(ctx: Context, path: str) -> tuple[dict[str, Any], Any]:
    doc, response = read(ctx, path, accept=CAPABILITY)
    for name in ("objectType", "objectID", "objectName", "parentURI", "capabilities",
                 "childrenrange", "children"):
        ctx.expect(name in doc, f"the capability object has the field {name}", response)
    ctx.expect(isinstance(doc["capabilities"], dict), "capabilities is a JSON object", response)
    ctx.expect(isinstance(doc["children"], list), "children is a JSON array", response)
    return doc, response


@SUITE.check("CDMI-CAP-001", clause=cdmi("12.2", "read a capability object"),
             level=Level.MUST, group="capabilities",
             title="GET cdmi_capabilities/ answers a capability object with capabilities, "
                   "children and childrenrange")
def capabilities_root(ctx: Context) -> None:
    doc, response = capability_document(ctx, CAPABILITIES)
    ctx.expect(doc.get("objectType") == CAPABILITY, f"objectType {CAPABILITY}", response)
    ctx.expect(keys_in_order(response)[-1:] == ["children"],
               "children is the last field", response)


@SUITE.check("CDMI-CAP-002", clause=cdmi("12.1", "capabilities are JSON strings"),
             level=Level.MUST, group="capabilities",
             title="capability values are JSON strings (arrays for the four array-valued ones)")
def capabilities_strings(ctx: Context) -> None:
    doc, _ = capability_document(ctx, CAPABILITIES)
    paths = [CAPABILITIES] + [CAPABILITIES + str(c) for c in doc["children"]]
    for path in paths:
        child, answer = capability_document(ctx, path)
        wrong = [name for name, value in child["capabilities"].items()
                 if not isinstance(value, str)
                 and not (name in ARRAY_CAPABILITIES and isinstance(value, list))]
        ctx.expect(not wrong, f"capabilities of {path} that are not strings: {wrong}", answer)


@SUITE.check("CDMI-CAP-003", clause=cdmi("12.1", "capabilitiesURI"), level=Level.MUST,
             group="capabilities", writes=True,
             title="the capabilitiesURI of a container and of a data object name readable "
                   "capability objects")
def capabilities_uris(ctx: Context) -> None:
    for made in (ctx.need("work"), ctx.need("text-object")):
        uri = made.document.get("capabilitiesURI")
        ctx.expect(isinstance(uri, str) and uri, f"{made.path} has a capabilitiesURI",
                   made.response)
        response = get(ctx, resolve(ctx, str(uri)), accept=CAPABILITY)
        ctx.expect_status(response, 200, what=f"GET of {made.path}'s capabilitiesURI")
        ctx.expect(document(ctx, response).get("objectType") == CAPABILITY,
                   "a capability object", response)


@SUITE.check("CDMI-CAP-004", clause=cdmi("12.1", "operations without a capability"),
             level=Level.MUST, group="capabilities", writes=True,
             title="when cdmi_queues is not claimed, creating a queue is refused with 400")
def capabilities_absent_queue(ctx: Context) -> None:
    system = ctx.need("system-capabilities")
    if claims(system, "cdmi_queues"):
        ctx.skip("the server claims cdmi_queues")
    refused_create(ctx, "queue", {}, content=QUEUE)
