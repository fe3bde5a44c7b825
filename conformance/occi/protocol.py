"""Renderings, content negotiation, the Server header and version handling."""

from __future__ import annotations

import re

from conformance.framework import Context, Level
from conformance.occi import wire
from conformance.occi.base import (
    COMPUTE,
    SUITE,
    accept,
    create,
    http,
    kind_location,
    os_template,
    rendering_of,
    text,
)

VERSION = re.compile(r"OCCI/(\d+)\.(\d+)")


@SUITE.fixture("compute-for-listing", writes=True)
def compute_for_listing(ctx: Context) -> str:
    """A compute to list and to ask for as uri-list (created in text/plain)."""
    return create(ctx, COMPUTE, mixins=[os_template(ctx)],
                  attributes={"occi.core.title": ctx.name("listing")})


# --- renderings -----------------------------------------------------------------------------


@SUITE.check("OCCI-HTTP-NEG-001", clause=http("5.2"), level=Level.MUST, group="renderings",
             per_rendering=True,
             title="the answer's Content-Type is the rendering asked for in Accept")
def neg_content_type(ctx: Context) -> None:
    rendering = rendering_of(ctx)
    response = ctx.client.get("/-/", headers=accept(rendering))
    ctx.expect_status(response, 200)
    ctx.expect(wire.media_type(response) == rendering,
               f"Content-Type {response.headers.get('Content-Type')!r} for Accept {rendering}",
               response)


@SUITE.check("OCCI-HTTP-NEG-002", clause=http("5.4"), level=Level.MUST, group="renderings",
             title="an unacceptable Accept (image/png) is answered 406")
def neg_406(ctx: Context) -> None:
    ctx.expect_status(ctx.client.get("/-/", headers={"Accept": "image/png"}), 406)


@SUITE.check("OCCI-HTTP-NEG-003", clause=http("5.2"), level=Level.SHOULD, group="renderings",
             title="answers list the supported media types in an Accept header")
def neg_accept_header(ctx: Context) -> None:
    response = ctx.client.get("/-/", headers=accept(wire.TEXT_PLAIN))
    offered = [t.split(";")[0].strip() for t in response.headers.get("Accept", "").split(",")]
    ctx.expect(offered and offered[0], "an Accept header in the answer", response)
    missing = [t for t in ctx.settings.renderings if t not in offered]
    ctx.expect(not missing, f"the Accept header leaves out renderings under test: {missing}",
               response)


@SUITE.check("OCCI-TEXT-NEG-004", clause=text("6", "text/plain"),
             level=Level.SHOULD, group="renderings",
             title="a request without Accept (or */*) is answered in text/plain")
def neg_default(ctx: Context) -> None:
    for value in ("", "*/*"):
        response = ctx.client.get("/-/", headers={"Accept": value})
        ctx.expect_status(response, 200)
        ctx.expect(wire.media_type(response) == wire.TEXT_PLAIN,
                   f"text/plain for Accept {value or '(none)'!r}", response)


@SUITE.check("OCCI-HTTP-NEG-005", clause=http("5.4"), level=Level.SHOULD, group="renderings",
             writes=True, title="an unsupported Content-Type (application/xml) is refused "
                                "with 406 and creates nothing")
def neg_content_type_406(ctx: Context) -> None:
    response = ctx.client.post(kind_location(ctx, COMPUTE),
                               headers={"Content-Type": "application/xml"}, data="<compute/>")
    for location in wire.created_locations(wire.TEXT_PLAIN, response):
        ctx.created(location)
    ctx.expect_status(response, 406)


@SUITE.check("OCCI-TEXT-URI-001", clause=text("8", "text/uri-list"),
             level=Level.MUST, group="renderings",
             writes=True, title="text/uri-list on a kind collection lists absolute URIs")
def uri_list_collection(ctx: Context) -> None:
    location = ctx.need("compute-for-listing")
    response = ctx.client.get(kind_location(ctx, COMPUTE), headers=accept(wire.URI_LIST))
    ctx.expect_status(response, 200)
    ctx.expect(wire.media_type(response) == wire.URI_LIST, "Content-Type text/uri-list",
               response)
    listed = wire.parse_locations(wire.URI_LIST, response)
    ctx.expect(all("://" in x for x in listed), "every listed URI is absolute", response)
    ctx.expect(any(wire.same_location(x, location) for x in listed),
               f"the listing names {location}", response)


@SUITE.check("OCCI-TEXT-URI-002", clause=text("8", "text/uri-list"),
             level=Level.MUST, group="renderings",
             writes=True, title="text/uri-list for a single entity is refused with 400")
def uri_list_entity(ctx: Context) -> None:
    location = ctx.need("compute-for-listing")
    response = ctx.client.get(location, headers=accept(wire.URI_LIST))
    ctx.expect_status(response, 400)


@SUITE.check("OCCI-TEXT-OCCI-001", clause=text("7", "text/occi"), level=Level.MUST,
             group="renderings", writes=True,
             title="text/occi answers carry their data in headers and the body OK")
def text_occi_ok(ctx: Context) -> None:
    location = ctx.need("compute-for-listing")
    for target in ("/-/", kind_location(ctx, COMPUTE), location):
        response = ctx.client.get(target, headers=accept(wire.TEXT_OCCI))
        ctx.expect_status(response, 200)
        ctx.expect(response.text.strip() == "OK", f"body 'OK' for GET {target}", response)
    ctx.expect(response.headers.get("X-OCCI-Attribute"), "the entity's attributes as "
               "X-OCCI-Attribute headers", response)


@SUITE.check("OCCI-TEXT-ALIAS-001", clause=text("6", "text/plain, field names"), level=Level.SHOULD,
             group="renderings", writes=True,
             title="text/plain field names are case-insensitive (category:, x-occi-attribute:)")
def text_lower_case_fields(ctx: Context) -> None:
    headers, body = wire.entity_request(wire.TEXT_PLAIN, COMPUTE, mixins=[os_template(ctx)],
                                        attributes={"occi.core.title": ctx.name("lower")})
    body = body.replace("Category:", "category:").replace("X-OCCI-Attribute:",
                                                          "x-occi-attribute:")
    response = ctx.client.post(kind_location(ctx, COMPUTE), headers=headers, data=body)
    for location in wire.created_locations(wire.TEXT_PLAIN, response):
        ctx.created(location)
    ctx.expect_status(response, 201, 200)


@SUITE.check("OCCI-TEXT-ALIAS-002", clause=text("7", "text/occi") + "; aliases",
             level=Level.MAY,
             group="renderings", writes=True,
             title="text/occi accepts X-OCCI-Category as an alias of Category")
def text_category_alias(ctx: Context) -> None:
    headers, _ = wire.entity_request(wire.TEXT_OCCI, COMPUTE, mixins=[os_template(ctx)],
                                     attributes={"occi.core.title": ctx.name("alias")})
    headers["X-OCCI-Category"] = headers.pop("Category")
    response = ctx.client.post(kind_location(ctx, COMPUTE), headers=headers, data="")
    for location in wire.created_locations(wire.TEXT_OCCI, response):
        ctx.created(location)
    ctx.expect_status(response, 201, 200)


# --- Server header and versions ---------------------------------------------------------------


def _versions(value: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in VERSION.findall(value)]


@SUITE.check("OCCI-HTTP-VER-001", clause=http("5.3"), level=Level.MUST, group="versions",
             title="the Server header names OCCI/1.2")
def server_header(ctx: Context) -> None:
    response = ctx.client.get("/-/", headers=accept(wire.TEXT_PLAIN))
    ctx.expect((1, 2) in _versions(response.headers.get("Server", "")),
               "an OCCI/1.2 token in the Server header", response)


@SUITE.check("OCCI-HTTP-VER-002", clause=http("5.3"), level=Level.MUST, group="versions",
             title="error answers (404) carry the OCCI version in Server too")
def server_header_on_errors(ctx: Context) -> None:
    response = ctx.client.get(f"/{ctx.name('nowhere')}/", headers=accept(wire.TEXT_PLAIN))
    ctx.expect_status(response, 404)
    ctx.expect(_versions(response.headers.get("Server", "")),
               "an OCCI/X.Y token in the Server header of a 404", response)


@SUITE.check("OCCI-HTTP-VER-003", clause=http("5.3"), level=Level.MUST, group="versions",
             title="a client asking for a higher OCCI version (OCCI/9.9) gets 501")
def version_too_high(ctx: Context) -> None:
    response = ctx.client.get("/-/", headers={"User-Agent": "nimbo-conformance OCCI/9.9",
                                              "Accept": wire.TEXT_PLAIN})
    ctx.expect_status(response, 501)


@SUITE.check("OCCI-HTTP-VER-004", clause=http("5.3"), level=Level.SHOULD, group="versions",
             title="older clients (OCCI/1.1) and clients naming no version are served")
def version_older(ctx: Context) -> None:
    for agent in ("nimbo-conformance OCCI/1.1", "nimbo-conformance OCCI/1.2", ""):
        response = ctx.client.get("/-/", headers={"User-Agent": agent,
                                                  "Accept": wire.TEXT_PLAIN})
        ctx.expect_status(response, 200, what=f"GET /-/ with User-Agent {agent!r}")


@SUITE.check("OCCI-HTTP-SEC-001", clause=http("12"), level=Level.SHOULD, group="versions",
             title="a request without credentials is refused with 401 and a challenge")
def unauthenticated(ctx: Context) -> None:
    if not ctx.client.authenticated:
        ctx.skip("the run has no credentials")
    response = ctx.client.get("/-/", headers={"Authorization": "", "X-Auth-Token": "",
                                              "Accept": wire.TEXT_PLAIN},
                              anonymous=True)
    if response.status_code == 200:
        ctx.skip("the endpoint serves the query interface anonymously")
    ctx.expect_status(response, 401)
    ctx.expect(response.headers.get("WWW-Authenticate"), "a WWW-Authenticate challenge",
               response)
