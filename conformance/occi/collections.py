"""Mixin collections (tagging), filtering, pagination, and errors for malformed input."""

from __future__ import annotations

import json

import requests

from conformance.framework import Context, Level
from conformance.occi import wire
from conformance.occi.base import (
    COMPUTE,
    STORAGE,
    SUITE,
    accept,
    core,
    create,
    http,
    json_clause,
    kind_location,
    os_template,
    read,
    text,
    unique_term,
)
from conformance.occi.qi import USER_SCHEME

# --- mixin collections ------------------------------------------------------------------------


@SUITE.fixture("tag", writes=True)
def tag(ctx: Context) -> tuple[str, str]:
    """A user mixin (type id, absolute location) made through the query interface."""
    term = unique_term(ctx, "tag")
    type_id, location = USER_SCHEME + term, f"/{term}/"
    headers, body = wire.mixin_request(wire.TEXT_PLAIN, type_id, location)
    remove_headers, remove_body = wire.mixin_request(wire.TEXT_PLAIN, type_id, None)
    response = ctx.client.post("/-/", headers=headers, data=body)
    ctx.on_cleanup(f"remove user mixin {type_id}",
                   lambda: ctx.client.delete("/-/", headers=remove_headers, data=remove_body))
    ctx.expect_status(response, 200, what="POST /-/ of a user mixin")
    return type_id, ctx.client.url(location)


@SUITE.fixture("two-storages", writes=True)
def two_storages(ctx: Context) -> list[str]:
    return [create(ctx, STORAGE, attributes={"occi.core.title": ctx.name(f"tagged-{n}"),
                                             "occi.storage.size": 1.0}) for n in (1, 2)]


def members(ctx: Context, location: str) -> list[str]:
    response = ctx.client.get(location, headers=accept(wire.URI_LIST))
    ctx.expect_status(response, 200, what=f"GET {location} as text/uri-list")
    return wire.parse_locations(wire.URI_LIST, response)


def listed(found: list[str], location: str) -> bool:
    return any(wire.same_location(x, location) for x in found)


def send_locations(ctx: Context, method: str, collection: str,
                   locations: list[str]) -> requests.Response:
    """``method`` of entity ``locations`` (text/plain) to a ``collection``."""
    headers, body = wire.locations_request(wire.TEXT_PLAIN, locations)
    return ctx.client.request(method, collection, headers=headers, data=body)


@SUITE.check("OCCI-HTTP-MIX-001", clause=http("9.3.2"), level=Level.MUST, group="mixins",
             writes=True,
             title="POST of entity locations to a mixin collection associates them (200)")
def mixin_associate(ctx: Context) -> None:
    type_id, location = ctx.need("tag")
    first, _ = ctx.need("two-storages")
    response = send_locations(ctx, "POST", location, [first])
    ctx.expect_status(response, 200, what="POST to a mixin collection")
    ctx.expect(listed(members(ctx, location), first), f"{first} listed in {location}")
    ctx.expect(type_id in read(ctx, first, wire.TEXT_PLAIN).mixins,
               f"the entity renders the mixin {type_id}")


@SUITE.check("OCCI-HTTP-MIX-002", clause=http("9.2"), level=Level.MUST, group="mixins",
             writes=True, title="PUT on a mixin collection replaces its members (200)")
def mixin_replace(ctx: Context) -> None:
    _, location = ctx.need("tag")
    first, second = ctx.need("two-storages")
    ctx.expect_status(send_locations(ctx, "POST", location, [first]), 200,
                      what="POST to a mixin collection")
    response = send_locations(ctx, "PUT", location, [second])
    ctx.expect_status(response, 200, what="PUT on a mixin collection")
    found = members(ctx, location)
    ctx.expect(listed(found, second) and not listed(found, first),
               f"only {second} listed after PUT, listed {found}")


@SUITE.check("OCCI-HTTP-MIX-003", clause=http("9.4.2"), level=Level.MUST, group="mixins",
             writes=True,
             title="DELETE with entity locations on a mixin collection disassociates them")
def mixin_disassociate(ctx: Context) -> None:
    type_id, location = ctx.need("tag")
    _, second = ctx.need("two-storages")
    send_locations(ctx, "POST", location, [second])
    response = send_locations(ctx, "DELETE", location, [second])
    ctx.expect_status(response, 200, what="DELETE on a mixin collection")
    ctx.expect(not listed(members(ctx, location), second), f"{second} no longer listed")
    ctx.expect(type_id not in read(ctx, second, wire.TEXT_PLAIN).mixins,
               "the entity no longer renders the mixin")
    ctx.expect_status(ctx.client.get(second, headers=accept(wire.TEXT_PLAIN)), 200,
                      what="the disassociated entity still exists")


@SUITE.check("OCCI-HTTP-MIX-004", clause=http("9.2"), level=Level.MUST, group="mixins",
             title="PUT on a kind collection is refused with 405")
def put_kind_collection(ctx: Context) -> None:
    ctx.expect_status(send_locations(ctx, "PUT", kind_location(ctx, COMPUTE), []), 405)


# --- filtering and pagination ----------------------------------------------------------------


@SUITE.fixture("three-computes", writes=True)
def three_computes(ctx: Context) -> list[str]:
    return [create(ctx, COMPUTE, mixins=[os_template(ctx)],
                   attributes={"occi.core.title": ctx.name(f"page-{n}")}) for n in (1, 2, 3)]


def _filtered(ctx: Context, kind: str, header: str, value: str) -> requests.Response:
    """The ``kind`` collection as text/uri-list, filtered by a text/occi ``header``."""
    return ctx.client.get(kind_location(ctx, kind), headers={
        "Accept": wire.URI_LIST, "Content-Type": wire.TEXT_OCCI, header: value})


@SUITE.check("OCCI-HTTP-FLT-002", clause=http("9.1") + ", " + text("filtering"),
             level=Level.SHOULD, group="filtering", writes=True,
             title="a collection filtered by X-OCCI-Attribute lists only matching entities")
def filter_attribute(ctx: Context) -> None:
    computes = ctx.need("three-computes")
    response = _filtered(ctx, COMPUTE, "X-OCCI-Attribute",
                         f'occi.core.title="{ctx.name("page-2")}"')
    ctx.expect_status(response, 200)
    found = wire.parse_locations(wire.URI_LIST, response)
    ctx.expect(len(found) == 1 and wire.same_location(found[0], computes[1]),
               f"only {computes[1]}, listed {found}", response)


@SUITE.check("OCCI-HTTP-FLT-003", clause=http("9.1") + ", " + text("filtering"),
             level=Level.SHOULD, group="filtering", writes=True,
             title="a collection filtered by a Category lists only entities having it")
def filter_category(ctx: Context) -> None:
    storages = ctx.need("two-storages")
    response = _filtered(ctx, STORAGE, "Category", f'compute; scheme="{wire.INFRA}"; class="kind"')
    ctx.expect(response.status_code in (200, 400), "200 (empty) or 400 for a kind the "
               "collection does not hold", response)
    if response.status_code == 200:
        found = wire.parse_locations(wire.URI_LIST, response)
        ctx.expect(not any(listed(found, s) for s in storages),
                   "no storage listed under a compute filter", response)


def _page(ctx: Context, query: str) -> tuple[int, list[str]]:
    response = ctx.client.get(f"{kind_location(ctx, COMPUTE)}?{query}",
                              headers=accept(wire.URI_LIST))
    found = wire.parse_locations(wire.URI_LIST, response) if response.status_code == 200 else []
    return response.status_code, found


@SUITE.check("OCCI-HTTP-PAG-001", clause=http("6"), level=Level.SHOULD, group="pagination",
             writes=True, title="?page=1&number=1 answers one entity of the collection")
def pagination(ctx: Context) -> None:
    ctx.need("three-computes")
    status, found = _page(ctx, "page=1&number=1")
    ctx.expect(status == 200 and len(found) == 1, f"one entity, got {status} with {found}")


def _paginates(ctx: Context) -> None:
    ctx.need("three-computes")
    status, found = _page(ctx, "page=1&number=1")
    if status != 200 or len(found) != 1:
        ctx.skip("the server does not paginate (SHOULD)")


@SUITE.check("OCCI-HTTP-PAG-002", clause=http("6"), level=Level.MUST, group="pagination",
             writes=True, title="a page past the end answers 200 with an empty collection")
def pagination_past_end(ctx: Context) -> None:
    _paginates(ctx)
    status, found = _page(ctx, "page=100000&number=1")
    ctx.expect(status == 200 and not found, f"200 and nothing, got {status} with {found}")


@SUITE.check("OCCI-HTTP-PAG-003", clause=http("6"), level=Level.MUST, group="pagination",
             writes=True, title="a number too large for the server answers 413")
def pagination_too_large(ctx: Context) -> None:
    _paginates(ctx)
    status, _ = _page(ctx, "page=1&number=1000000000")
    ctx.expect(status == 413, f"413, got {status}")


@SUITE.check("OCCI-HTTP-PAG-004", clause=http("6"), level=Level.SHOULD, group="pagination",
             writes=True, title="consecutive pages do not overlap")
def pagination_pages(ctx: Context) -> None:
    _paginates(ctx)
    _, first = _page(ctx, "page=1&number=1")
    _, second = _page(ctx, "page=2&number=1")
    ctx.expect(len(second) == 1 and second != first, f"page 2 {second} differs from {first}")


# --- malformed input -------------------------------------------------------------------------

COMPUTE_KIND = f'Category: compute; scheme="{wire.INFRA}"; class="kind"\r\n'


def _refused(ctx: Context, path: str, body: str, content_type: str, what: str) -> None:
    response = ctx.client.post(path, headers={"Content-Type": content_type,
                                              "Accept": wire.TEXT_PLAIN}, data=body)
    for location in wire.created_locations(wire.TEXT_PLAIN, response):
        ctx.created(location)
    ctx.expect_status(response, 400, what=what)
    ctx.expect(response.text.strip() or response.headers.get("X-OCCI-Error"),
               "the 400 answer explains itself in a body", response)


def _os_line(ctx: Context) -> str:
    scheme, _, term = os_template(ctx).rpartition("#")
    return f'Category: {term}; scheme="{scheme}#"; class="mixin"\r\n'


@SUITE.check("OCCI-TEXT-ERR-001", clause=text("category"), level=Level.MUST, group="errors",
             writes=True, title="a Category without scheme is refused with 400")
def error_no_scheme(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE), 'Category: compute; class="kind"\r\n'
             + _os_line(ctx), wire.TEXT_PLAIN, "a Category without scheme")


@SUITE.check("OCCI-TEXT-ERR-002", clause=text("category"), level=Level.MUST, group="errors",
             writes=True, title="a Category with an invalid class is refused with 400")
def error_bad_class(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE),
             f'Category: compute; scheme="{wire.INFRA}"; class="myClass"\r\n' + _os_line(ctx),
             wire.TEXT_PLAIN, 'class="myClass"')


@SUITE.check("OCCI-CORE-ERR-003", clause=core("kind"), level=Level.MUST, group="errors",
             writes=True, title="a create naming an unknown kind is refused with 400")
def error_unknown_kind(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE),
             'Category: nothing; scheme="http://nimbo-conformance.example/occi#"; '
             'class="kind"\r\n', wire.TEXT_PLAIN, "an unknown kind")


@SUITE.check("OCCI-CORE-ERR-004", clause=core("attribute") + ", " + text("attributes"),
             level=Level.MUST, group="errors", writes=True,
             title="a create without a required attribute (storage size) is refused with 400")
def error_missing_required(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, STORAGE),
             f'Category: storage; scheme="{wire.INFRA}"; class="kind"\r\n'
             f'X-OCCI-Attribute: occi.core.title="{ctx.name("no-size")}"\r\n',
             wire.TEXT_PLAIN, "a storage without occi.storage.size")


@SUITE.check("OCCI-TEXT-ERR-005", clause=text("attributes"), level=Level.MUST, group="errors",
             writes=True, title="an unterminated quoted string is refused with 400")
def error_unterminated_quote(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE), COMPUTE_KIND + _os_line(ctx)
             + 'X-OCCI-Attribute: occi.core.title="unterminated\r\n', wire.TEXT_PLAIN,
             "an unterminated quote")


@SUITE.check("OCCI-JSON-ERR-006", clause=json_clause("entity"), level=Level.MUST,
             group="errors", writes=True, title="invalid JSON is refused with 400")
def error_bad_json(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE), '{"kind": "http://schemas.ogf.org/occi/',
             wire.OCCI_JSON, "truncated JSON")


@SUITE.check("OCCI-JSON-ERR-007", clause=json_clause("resource"), level=Level.MUST,
             group="errors", writes=True,
             title="a JSON resource without its kind is refused with 400")
def error_json_without_kind(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE),
             json.dumps({"mixins": [os_template(ctx)], "title": ctx.name("kindless")}),
             wire.OCCI_JSON, "a JSON resource without kind")


@SUITE.check("OCCI-TEXT-ERR-008", clause=text("text/plain"), level=Level.MUST, group="errors",
             writes=True, title="a line that is not 'Name: value' is refused with 400")
def error_bad_line(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE), COMPUTE_KIND + "this is not OCCI\r\n",
             wire.TEXT_PLAIN, "a malformed line")


@SUITE.check("OCCI-TEXT-ESC-001", clause=text("attributes"), level=Level.MUST, group="errors",
             writes=True,
             title="escaped quotes and commas in a quoted value round-trip (text/occi)")
def quote_escaping(ctx: Context) -> None:
    title = f'{ctx.name("quote")} says \\", occi.compute.memory=1.0'
    headers = {"Content-Type": wire.TEXT_OCCI, "Accept": wire.TEXT_PLAIN,
               "Category": f'compute; scheme="{wire.INFRA}"; class="kind", '
                           + _os_line(ctx)[len("Category: "):].strip(),
               "X-OCCI-Attribute": f'occi.core.title="{title}"'}
    response = ctx.client.post(kind_location(ctx, COMPUTE), headers=headers, data="")
    locations = wire.created_locations(wire.TEXT_PLAIN, response)
    for location in locations:
        ctx.created(location)
    ctx.expect_status(response, 201, 200)
    ctx.expect(locations, "the create names its location", response)
    got = read(ctx, locations[0], wire.TEXT_PLAIN).title
    wanted = title.replace('\\"', '"')
    ctx.expect(got == wanted, f"title {wanted!r}, rendered {got!r}")
