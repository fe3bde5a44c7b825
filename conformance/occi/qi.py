"""Query interface: both paths, the infrastructure model, filtering, user mixins."""

from __future__ import annotations

import requests

from conformance.framework import Context, Level
from conformance.occi import wire
from conformance.occi.base import (
    COMPUTE,
    NETWORK,
    NETWORKINTERFACE,
    STORAGE,
    STORAGELINK,
    SUITE,
    accept,
    core,
    http,
    infra,
    read_model,
    rendering_of,
    unique_term,
)

WELL_KNOWN = "/.well-known/org/ogf/occi/-/"
USER_SCHEME = "http://nimbo-conformance.example/occi/tags#"


@SUITE.check("OCCI-HTTP-QI-001", clause=http("9.1"), level=Level.MUST, group="query-interface",
             title="GET /-/ answers 200 with a category collection", per_rendering=True)
def qi_get(ctx: Context) -> None:
    read_model(ctx, rendering_of(ctx))


@SUITE.check("OCCI-HTTP-QI-002", clause=http("9"), level=Level.MAY, group="query-interface",
             title="the query interface is also served at /.well-known/org/ogf/occi/-/")
def qi_well_known(ctx: Context) -> None:
    response = ctx.client.get(WELL_KNOWN, headers=accept(wire.TEXT_PLAIN))
    ctx.expect_status(response, 200)


@SUITE.check("OCCI-HTTP-QI-003", clause=http("9"), level=Level.MUST, group="query-interface",
             title="the well-known query interface (when offered) equals /-/",
             per_rendering=True)
def qi_well_known_same(ctx: Context) -> None:
    rendering = rendering_of(ctx)
    response = ctx.client.get(WELL_KNOWN, headers=accept(rendering))
    if response.status_code == 404:
        ctx.skip("the well-known path is not offered (MAY)")
    ctx.expect_status(response, 200)
    here = sorted(c.type_id for c in wire.parse_categories(rendering, response))
    there = sorted(c.type_id for c in read_model(ctx, rendering).categories)
    ctx.expect(here == there, f"both paths list the same categories; only at the well-known "
               f"path: {sorted(set(here) - set(there))[:5]}, only at /-/: "
               f"{sorted(set(there) - set(here))[:5]}", response)


@SUITE.check("OCCI-HTTP-QI-004", clause=http("4"), level=Level.MUST, group="query-interface",
             title="the Kind of core#entity is not bound to a location")
def qi_entity_unbound(ctx: Context) -> None:
    entity = ctx.need("model").find(wire.CORE + "entity")
    ctx.expect(entity is None or not entity.location,
               f"core#entity has the location {entity.location if entity else ''!r}")


@SUITE.check("OCCI-INFRA-MODEL-001", clause=infra("3", "infrastructure types"), level=Level.MUST,
             group="query-interface",
             title="the five infrastructure kinds are exposed, each with a location")
def infra_kinds(ctx: Context) -> None:
    model = ctx.need("model")
    missing = [k for k in (COMPUTE, STORAGE, NETWORK, NETWORKINTERFACE, STORAGELINK)
               if not model.location(k)]
    ctx.expect(not missing, f"kinds missing or without location: {missing}")


@SUITE.check("OCCI-INFRA-MODEL-002", clause=infra("3.1", "Compute"), level=Level.MUST,
             group="query-interface",
             title="compute exposes the actions start, stop, restart and suspend")
def infra_compute_actions(ctx: Context) -> None:
    compute = ctx.need("model").find(COMPUTE)
    if compute is None:
        ctx.skip("no compute kind")
    terms = {a.rsplit("#", 1)[-1] for a in compute.actions}
    missing = {"start", "stop", "restart", "suspend"} - terms
    ctx.expect(not missing, f"compute kind lacks the actions {sorted(missing)}")


@SUITE.check("OCCI-HTTP-FLT-001", clause=http("7.1") + ", " + http("9.1"),
             level=Level.SHOULD, group="filtering", per_rendering=True,
             title="GET /-/ with a Category filter answers only related categories")
def qi_filter(ctx: Context) -> None:
    rendering = rendering_of(ctx)  # the filter travels as a header field in every rendering
    headers = {**accept(rendering), "Content-Type": wire.TEXT_OCCI,
               "Category": f'compute; scheme="{wire.INFRA}"; class="kind"'}
    response = ctx.client.get("/-/", headers=headers)
    ctx.expect_status(response, 200)
    found = {c.type_id for c in wire.parse_categories(rendering, response)}
    ctx.expect(COMPUTE in found, "the filtered query interface names compute", response)
    ctx.expect(STORAGE not in found, "the filtered query interface leaves out storage",
               response)


def _user_mixin(ctx: Context) -> tuple[str, str]:
    term = unique_term(ctx, "qi")
    return USER_SCHEME + term, f"/{term}/"


def _mixin_listed(ctx: Context, rendering: str, type_id: str) -> bool:
    return read_model(ctx, rendering).find(type_id) is not None


@SUITE.check("OCCI-HTTP-QI-005", clause=http("9.3") + ", " + http("9.4"), level=Level.MUST,
             group="query-interface", writes=True, per_rendering=True,
             title="a user mixin is added (POST /-/) and removed (DELETE /-/) with 200")
def qi_user_mixin(ctx: Context) -> None:
    rendering = rendering_of(ctx)
    type_id, location = _user_mixin(ctx)
    headers, body = wire.mixin_request(rendering, type_id, location, title="conformance")
    remove_headers, remove_body = wire.mixin_request(rendering, type_id, None)

    def remove() -> None:
        ctx.client.delete("/-/", headers=remove_headers, data=remove_body)

    response = ctx.client.post("/-/", headers={**headers, **accept(rendering)}, data=body)
    ctx.on_cleanup(f"remove user mixin {type_id}", remove)
    ctx.expect_status(response, 200, what="POST /-/ of a user mixin")
    ctx.expect(_mixin_listed(ctx, rendering, type_id), "the new mixin is in the query interface")
    listing = ctx.client.get(location, headers=accept(wire.URI_LIST))
    ctx.expect_status(listing, 200, what="GET of the new mixin's location")
    response = ctx.client.delete("/-/", headers={**remove_headers, **accept(rendering)},
                                 data=remove_body)
    ctx.expect_status(response, 200, what="DELETE /-/ of the user mixin")
    ctx.expect(not _mixin_listed(ctx, rendering, type_id),
               "the deleted mixin is gone from the query interface")


def _refused_mixin(ctx: Context, type_id: str, location: str | None) -> requests.Response:
    """POST /-/ of a user mixin in this check's rendering, removed again if it was added."""
    rendering = rendering_of(ctx)
    headers, body = wire.mixin_request(rendering, type_id, location)
    response = ctx.client.post("/-/", headers={**headers, **accept(rendering)}, data=body)
    if response.status_code < 300:
        remove_headers, remove_body = wire.mixin_request(rendering, type_id, None)
        ctx.client.delete("/-/", headers=remove_headers, data=remove_body)
    return response


@SUITE.check("OCCI-HTTP-QI-006",
             clause=http("9.3") + ", " + core("5.3.1", "Category (reserved OGF schemes)"),
             level=Level.SHOULD,
             group="query-interface", writes=True, per_rendering=True,
             title="a user mixin in a reserved OGF scheme is refused with 400")
def qi_reserved_scheme(ctx: Context) -> None:
    term = unique_term(ctx, "reserved")
    ctx.expect_status(_refused_mixin(ctx, f"{wire.INFRA}{term}", f"/{term}/"), 400)


@SUITE.check("OCCI-HTTP-QI-007", clause=http("9.3"), level=Level.SHOULD, group="query-interface",
             writes=True, per_rendering=True,
             title="a user mixin without a location is refused with 400")
def qi_mixin_without_location(ctx: Context) -> None:
    type_id, _ = _user_mixin(ctx)
    response = _refused_mixin(ctx, type_id, None)
    ctx.expect_status(response, 400)
    ctx.expect(response.text.strip() or response.headers.get("X-OCCI-Error"),
               "the 400 answer explains itself", response)
