"""Mixin collections (tagging), filtering, pagination, and errors for malformed input."""

from __future__ import annotations

import json
from typing import Any

import requests

from conformance.framework import Context, Level
from conformance.occi import wire
from conformance.occi.base import (
    COMPUTE,
    COMPUTE_ACTION,
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
    rendering_of,
    text,
    unique_term,
    wait_state,
)
from conformance.occi.qi import USER_SCHEME

# --- mixin collections ------------------------------------------------------------------------


@SUITE.fixture("tag", writes=True)
def tag(ctx: Context) -> tuple[str, str]:
    """A user mixin (type id, absolute location) made through the query interface."""
    return user_mixin(ctx, "tag")


@SUITE.fixture("action-tag", writes=True)
def action_tag(ctx: Context) -> tuple[str, str]:
    """A user mixin of its own for the collection actions (no storages among its members)."""
    return user_mixin(ctx, "acts")


def user_mixin(ctx: Context, what: str) -> tuple[str, str]:
    """A user mixin (type id, absolute location) made through the query interface and removed
    at the end of the run."""
    term = unique_term(ctx, what)
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
    """The members of a collection, read in this check's rendering."""
    rendering = rendering_of(ctx)
    response = ctx.client.get(location, headers=accept(rendering))
    ctx.expect_status(response, 200, what=f"GET {location} as {rendering}")
    return wire.parse_locations(rendering, response)


def listed(found: list[str], location: str) -> bool:
    return any(wire.names_entity(x, location) for x in found)


def send_locations(ctx: Context, method: str, collection: str,
                   locations: list[str]) -> requests.Response:
    """``method`` of entity ``locations`` to a ``collection``, in this check's rendering (JSON,
    which has no shape for a list of locations, as a bare array of them: rOCCI 2, notes §4)."""
    rendering = rendering_of(ctx)
    headers, body = wire.locations_request(rendering, locations)
    return ctx.client.request(method, collection, headers={**headers, **accept(rendering)},
                              data=body)


@SUITE.check("OCCI-HTTP-MIX-001", clause=http("11.3.2"), level=Level.MUST, group="mixins",
             writes=True, per_rendering=True,
             title="POST of entity locations to a mixin collection associates them (200)")
def mixin_associate(ctx: Context) -> None:
    type_id, location = ctx.need("tag")
    first, _ = ctx.need("two-storages")
    response = send_locations(ctx, "POST", location, [first])
    ctx.expect_status(response, 200, what="POST to a mixin collection")
    ctx.expect(listed(members(ctx, location), first), f"{first} listed in {location}")
    ctx.expect(type_id in read(ctx, first).mixins, f"the entity renders the mixin {type_id}")


@SUITE.check("OCCI-HTTP-MIX-002", clause=http("11.2"), level=Level.MUST, group="mixins",
             writes=True, per_rendering=True,
             title="PUT on a mixin collection replaces its members (200)")
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


@SUITE.check("OCCI-HTTP-MIX-003", clause=http("11.4.2"), level=Level.MUST, group="mixins",
             writes=True, per_rendering=True,
             title="DELETE with entity locations on a mixin collection disassociates them")
def mixin_disassociate(ctx: Context) -> None:
    type_id, location = ctx.need("tag")
    _, second = ctx.need("two-storages")
    send_locations(ctx, "POST", location, [second])
    response = send_locations(ctx, "DELETE", location, [second])
    ctx.expect_status(response, 200, what="DELETE on a mixin collection")
    ctx.expect(not listed(members(ctx, location), second), f"{second} no longer listed")
    ctx.expect(type_id not in read(ctx, second).mixins, "the entity no longer renders the mixin")
    ctx.expect_status(ctx.client.get(second, headers=accept(rendering_of(ctx))), 200,
                      what="the disassociated entity still exists")


@SUITE.check("OCCI-HTTP-MIX-004", clause=http("11.2"), level=Level.MUST, group="mixins",
             per_rendering=True, title="PUT on a kind collection is refused with 405")
def put_kind_collection(ctx: Context) -> None:
    ctx.expect_status(send_locations(ctx, "PUT", kind_location(ctx, COMPUTE), []), 405)


# --- filtering and pagination ----------------------------------------------------------------


@SUITE.fixture("three-computes", writes=True)
def three_computes(ctx: Context) -> list[str]:
    return [create(ctx, COMPUTE, mixins=[os_template(ctx)],
                   attributes={"occi.core.title": ctx.name(f"page-{n}")}) for n in (1, 2, 3)]


@SUITE.fixture("three-active-computes", writes=True)
def three_active_computes(ctx: Context) -> list[str]:
    """The three computes, once active (a precondition of the collection action)."""
    computes: list[str] = ctx.need("three-computes")
    for each in computes:
        wait_state(ctx, each, "occi.compute.state", {"active"})
    return computes


def _filtered(ctx: Context, kind: str, header: str, value: str) -> requests.Response:
    """The ``kind`` collection in this check's rendering, filtered by a ``header`` field:
    filters travel as header fields (text/occi) whatever rendering is asked for (GFD.223 §7)."""
    return ctx.client.get(kind_location(ctx, kind), headers={
        **accept(rendering_of(ctx)), "Content-Type": wire.TEXT_OCCI, header: value})


@SUITE.check("OCCI-HTTP-FLT-002", clause=http("7.2") + ", " + http("11.1"),
             level=Level.SHOULD, group="filtering", writes=True, per_rendering=True,
             title="a collection filtered by X-OCCI-Attribute lists only matching entities")
def filter_attribute(ctx: Context) -> None:
    computes = ctx.need("three-computes")
    response = _filtered(ctx, COMPUTE, "X-OCCI-Attribute",
                         f'occi.core.title="{ctx.name("page-2")}"')
    ctx.expect_status(response, 200)
    found = wire.parse_locations(rendering_of(ctx), response)
    ctx.expect(len(found) == 1 and wire.names_entity(found[0], computes[1]),
               f"only {computes[1]}, listed {found}", response)


@SUITE.check("OCCI-HTTP-FLT-003", clause=http("7.2") + ", " + http("11.1"),
             level=Level.SHOULD, group="filtering", writes=True, per_rendering=True,
             title="a collection filtered by a Category lists only entities having it")
def filter_category(ctx: Context) -> None:
    storages = ctx.need("two-storages")
    response = _filtered(ctx, STORAGE, "Category", f'compute; scheme="{wire.INFRA}"; class="kind"')
    ctx.expect(response.status_code in (200, 400), "200 (empty) or 400 for a kind the "
               "collection does not hold", response)
    if response.status_code == 200:
        found = wire.parse_locations(rendering_of(ctx), response)
        ctx.expect(not any(listed(found, s) for s in storages),
                   "no storage listed under a compute filter", response)


def _page(ctx: Context, query: str) -> tuple[int, list[str]]:
    rendering = rendering_of(ctx)
    response = ctx.client.get(f"{kind_location(ctx, COMPUTE)}?{query}",
                              headers=accept(rendering))
    found = wire.parse_locations(rendering, response) if response.status_code == 200 else []
    return response.status_code, found


@SUITE.check("OCCI-HTTP-PAG-001", clause=http("6"), level=Level.SHOULD, group="pagination",
             writes=True, per_rendering=True,
             title="?page=1&number=1 answers one entity of the collection")
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
             writes=True, per_rendering=True,
             title="a page past the end answers 200 with an empty collection")
def pagination_past_end(ctx: Context) -> None:
    _paginates(ctx)
    status, found = _page(ctx, "page=100000&number=1")
    ctx.expect(status == 200 and not found, f"200 and nothing, got {status} with {found}")


@SUITE.check("OCCI-HTTP-PAG-003", clause=http("6"), level=Level.MUST, group="pagination",
             writes=True, per_rendering=True,
             title="a number too large for the server answers 413")
def pagination_too_large(ctx: Context) -> None:
    _paginates(ctx)
    status, _ = _page(ctx, "page=1&number=1000000000")
    ctx.expect(status == 413, f"413, got {status}")


@SUITE.check("OCCI-HTTP-PAG-004", clause=http("6"), level=Level.SHOULD, group="pagination",
             writes=True, per_rendering=True, title="consecutive pages do not overlap")
def pagination_pages(ctx: Context) -> None:
    _paginates(ctx)
    _, first = _page(ctx, "page=1&number=1")
    _, second = _page(ctx, "page=2&number=1")
    ctx.expect(len(second) == 1 and second != first, f"page 2 {second} differs from {first}")


# --- actions on a collection ---------------------------------------------------------------


@SUITE.check("OCCI-HTTP-ACT-008", clause=http("11.3.3") + ", " + http("8"), level=Level.MUST,
             group="actions", writes=True,
             title="POST ?action=stop on a mixin collection (stop advertised by the compute "
                   "kind) answers 200 and stops its members, and only them")
def collection_action(ctx: Context) -> None:
    compute = ctx.need("model").find(COMPUTE)
    if compute is None or not any(a == COMPUTE_ACTION + "stop" for a in compute.actions):
        ctx.skip("the compute kind does not advertise stop")
    _, location = ctx.need("action-tag")
    *tagged, bystander = ctx.need("three-active-computes")
    ctx.expect_status(send_locations(ctx, "POST", location, tagged), 200,
                      what="POST of two computes to a mixin collection")
    rendering = rendering_of(ctx)
    headers, body = wire.action_request(rendering, COMPUTE_ACTION + "stop")
    response = ctx.client.post(f"{location}?action=stop",
                               headers={**headers, **accept(rendering)}, data=body)
    ctx.expect_status(response, 200, what="POST ?action=stop on the mixin collection")
    for each in tagged:
        wait_state(ctx, each, "occi.compute.state", {"inactive"})
    state = read(ctx, bystander).attributes.get("occi.compute.state")
    ctx.expect(state == "active", f"the compute outside the collection stays active, it is "
                                  f"{state!r}")


# --- malformed input -------------------------------------------------------------------------
# Each in every rendering of the run that can express it: the text grammar's errors in the text
# renderings (text/occi: the same fields as header fields), JSON's in JSON, the model's in all.

TEXT, BODY_TEXT, JSON_ONLY = wire.TEXT_TYPES, wire.BODY_TEXT_TYPES, wire.JSON_TYPES
COMPUTE_KIND = f'compute; scheme="{wire.INFRA}"; class="kind"'


def _refused(ctx: Context, path: str, headers: dict[str, str], body: str, what: str) -> None:
    """A create of ``body`` (with ``headers``) at ``path`` is refused with 400 that explains
    itself (a body or X-OCCI-Error); anything it made is cleaned up."""
    rendering = rendering_of(ctx)
    response = ctx.client.post(path, headers={**headers, **accept(rendering)}, data=body)
    for location in wire.created_locations(rendering, response):
        ctx.created(location)
    ctx.expect_status(response, 400, what=what)
    ctx.expect(response.text.strip() or response.headers.get("X-OCCI-Error"),
               "the 400 answer explains itself in a body", response)


def _refused_fields(ctx: Context, path: str, fields: list[tuple[str, str]], what: str) -> None:
    """A create made of text ``fields`` (this check's text rendering) is refused with 400."""
    headers, body = wire.text_request(rendering_of(ctx), fields)
    _refused(ctx, path, headers, body, what)


def _refused_entity(ctx: Context, kind: str, attributes: dict[str, Any], what: str,
                    mixins: list[str] | None = None) -> None:
    """A create of a well-formed ``kind`` rendering that the model refuses (400)."""
    headers, body = wire.entity_request(rendering_of(ctx), kind, mixins=mixins,
                                        attributes=attributes)
    target = kind if kind in (COMPUTE, STORAGE) else COMPUTE
    _refused(ctx, kind_location(ctx, target), headers, body, what)


def _os_category(ctx: Context) -> str:
    scheme, _, term = os_template(ctx).rpartition("#")
    return f'{term}; scheme="{scheme}#"; class="mixin"'


@SUITE.check("OCCI-TEXT-ERR-001", clause=text("4.1", "Category"), level=Level.MUST,
             group="errors", writes=True, per_rendering=True, renderings=TEXT,
             title="a Category without scheme is refused with 400")
def error_no_scheme(ctx: Context) -> None:
    _refused_fields(ctx, kind_location(ctx, COMPUTE), [
        ("Category", 'compute; class="kind"'), ("Category", _os_category(ctx))],
        "a Category without scheme")


@SUITE.check("OCCI-TEXT-ERR-002", clause=text("4.1", "Category"), level=Level.MUST,
             group="errors", writes=True, per_rendering=True, renderings=TEXT,
             title="a Category with an invalid class is refused with 400")
def error_bad_class(ctx: Context) -> None:
    _refused_fields(ctx, kind_location(ctx, COMPUTE), [
        ("Category", f'compute; scheme="{wire.INFRA}"; class="myClass"'),
        ("Category", _os_category(ctx))], 'class="myClass"')


@SUITE.check("OCCI-CORE-ERR-003",
             clause=core("5.3.3", "Kind") + ", " + core("5.3.6", "Instantiation"),
             level=Level.MUST, group="errors",
             writes=True, per_rendering=True,
             title="a create naming an unknown kind is refused with 400")
def error_unknown_kind(ctx: Context) -> None:
    _refused_entity(ctx, "http://nimbo-conformance.example/occi#nothing",
                    {"occi.core.title": ctx.name("unknown-kind")}, "an unknown kind")


@SUITE.check("OCCI-CORE-ERR-004", clause=core("5.3.2", "Attribute (required)"), level=Level.MUST,
             group="errors",
             writes=True, per_rendering=True,
             title="a create without a required attribute (storage size) is refused with 400")
def error_missing_required(ctx: Context) -> None:
    _refused_entity(ctx, STORAGE, {"occi.core.title": ctx.name("no-size")},
                    "a storage without occi.storage.size")


@SUITE.check("OCCI-TEXT-ERR-005", clause=text("4.3", "attributes"), level=Level.MUST,
             group="errors", writes=True, per_rendering=True, renderings=TEXT,
             title="an unterminated quoted string is refused with 400")
def error_unterminated_quote(ctx: Context) -> None:
    _refused_fields(ctx, kind_location(ctx, COMPUTE), [
        ("Category", COMPUTE_KIND), ("Category", _os_category(ctx)),
        ("X-OCCI-Attribute", 'occi.core.title="unterminated')], "an unterminated quote")


@SUITE.check("OCCI-JSON-ERR-006", clause=json_clause("3", "the JSON format"),
             level=Level.MUST, group="errors", writes=True, per_rendering=True,
             renderings=JSON_ONLY, title="invalid JSON is refused with 400")
def error_bad_json(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE), {"Content-Type": rendering_of(ctx)},
             '{"kind": "http://schemas.ogf.org/occi/', "truncated JSON")


@SUITE.check("OCCI-JSON-ERR-007", clause=json_clause("3.1.1", "resource"), level=Level.MUST,
             group="errors", writes=True, per_rendering=True, renderings=JSON_ONLY,
             title="a JSON resource without its kind is refused with 400")
def error_json_without_kind(ctx: Context) -> None:
    _refused(ctx, kind_location(ctx, COMPUTE), {"Content-Type": rendering_of(ctx)},
             json.dumps({"mixins": [os_template(ctx)], "title": ctx.name("kindless")}),
             "a JSON resource without kind")


@SUITE.check("OCCI-TEXT-ERR-008", clause=text("6", "text/plain"), level=Level.MUST,
             group="errors", writes=True, per_rendering=True, renderings=BODY_TEXT,
             title="a line that is not 'Name: value' is refused with 400")
def error_bad_line(ctx: Context) -> None:
    headers, body = wire.text_request(rendering_of(ctx), [("Category", COMPUTE_KIND)])
    _refused(ctx, kind_location(ctx, COMPUTE), headers, body + "this is not OCCI\r\n",
             "a malformed line")


@SUITE.check("OCCI-TEXT-ESC-001", clause=text("4.3", "attributes"), level=Level.MUST,
             group="errors", writes=True, per_rendering=True,
             title="escaped quotes and commas in a quoted value round-trip")
def quote_escaping(ctx: Context) -> None:
    title = f'{ctx.name("quote")} says ", occi.storage.size=9.0'
    location = create(ctx, STORAGE, attributes={"occi.core.title": title,
                                                "occi.storage.size": 1.0})
    got = read(ctx, location).title
    ctx.expect(got == title, f"title {title!r}, rendered {got!r}")
