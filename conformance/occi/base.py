"""The OCCI suite object, clause names, shared fixtures and helpers of its checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests

from conformance.framework import Context, Suite
from conformance.occi import wire
from conformance.occi.wire import INFRA, Category, Entity

SUITE = Suite("occi", title="OCCI 1.2")

DEFAULT_RENDERINGS = (wire.TEXT_PLAIN, wire.TEXT_OCCI, wire.OCCI_JSON)
"""The renderings OCCI 1.2 makes mandatory (text/uri-list is checked on listings only)."""

COMPUTE = INFRA + "compute"
STORAGE = INFRA + "storage"
NETWORK = INFRA + "network"
NETWORKINTERFACE = INFRA + "networkinterface"
STORAGELINK = INFRA + "storagelink"
OS_TPL = INFRA + "os_tpl"
COMPUTE_ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"


# Clauses, numbered as in occiware/occi-wg at commit b5790d25ce7e9c4ed7035d2c142d003c54a738e5,
# where each OCCI 1.2 source carries its published document number: core.tex (GFD-R-P.221),
# http_protocol.tex (GFD-R-P.223), infrastructure.tex (GFD-R-P.224), text_rendering.tex
# (GFD-R-P.229) and json_rendering.tex (headed GFD-R-P.225, published as GFD.226). See README.md.


def core(section: str, name: str) -> str:
    return f"OCCI 1.2 Core (GFD.221) §{section}, {name}"


def http(section: str) -> str:
    return f"OCCI 1.2 HTTP Protocol (GFD.223) §{section}"


def text(section: str, name: str) -> str:
    return f"OCCI 1.2 Text Rendering (GFD.229) §{section}, {name}"


def json_clause(section: str, name: str) -> str:
    return f"OCCI 1.2 JSON Rendering (GFD.226) §{section}, {name}"


def infra(section: str, name: str) -> str:
    return f"OCCI 1.2 Infrastructure (GFD.224) §{section}, {name}"


# --- the model the server offers ---------------------------------------------------------------


@dataclass
class Model:
    """What the query interface says (read once per run)."""

    categories: list[Category]

    def find(self, type_id: str) -> Category | None:
        return next((c for c in self.categories if c.type_id == type_id), None)

    def location(self, type_id: str) -> str | None:
        category = self.find(type_id)
        return category.location or None if category else None

    def templates(self, parent: str) -> list[Category]:
        """Provider mixins depending on ``parent`` (os_tpl, resource_tpl)."""
        return [c for c in self.categories if c.cls == "mixin" and parent in c.rel]


def accept(rendering: str) -> dict[str, str]:
    return {"Accept": rendering}


def read_model(ctx: Context, rendering: str) -> Model:
    response = ctx.client.get("/-/", headers=accept(rendering))
    ctx.expect_status(response, 200)
    try:
        categories = wire.parse_categories(rendering, response)
    except (wire.WireError, ValueError, KeyError) as exc:
        ctx.fail(f"the query interface in {rendering} could not be read: {exc}", response)
    ctx.expect(categories, f"the query interface in {rendering} lists no category", response)
    return Model(categories)


@SUITE.fixture("model")
def model(ctx: Context) -> Model:
    """The query interface in the first rendering of the run (text/plain by default)."""
    return read_model(ctx, (ctx.settings.renderings or DEFAULT_RENDERINGS)[0])


def kind_location(ctx: Context, type_id: str) -> str:
    location = ctx.need("model").location(type_id)
    if not location:
        ctx.skip(f"the query interface gives no location for {type_id}")
    return str(location)


def os_template(ctx: Context) -> str:
    templates = ctx.need("model").templates(OS_TPL)
    if not templates:
        ctx.skip("the query interface offers no os_tpl mixin")
    return str(templates[0].type_id)


# --- entities ---------------------------------------------------------------------------------


def rendering_of(ctx: Context) -> str:
    return ctx.rendering or (ctx.settings.renderings or DEFAULT_RENDERINGS)[0]


def send_entity(ctx: Context, method: str, location: str, kind: str, *,
                mixins: list[str] | None = None,
                attributes: dict[str, Any] | None = None) -> requests.Response:
    """``method`` (POST, PUT) of a ``kind`` entity's rendering to ``location``, in this check's
    rendering (and asking for an answer in it)."""
    rendering = rendering_of(ctx)
    headers, body = wire.entity_request(rendering, kind, mixins=mixins, attributes=attributes)
    return ctx.client.request(method, location, headers={**headers, **accept(rendering)},
                              data=body)


def create(ctx: Context, kind: str, *, mixins: list[str] | None = None,
           attributes: dict[str, Any] | None = None) -> str:
    """POST a new ``kind`` entity to its collection in this check's rendering; the location
    (registered for cleanup). Fails unless 201 + location or 200 + a rendering naming it."""
    rendering = rendering_of(ctx)
    response = send_entity(ctx, "POST", kind_location(ctx, kind), kind, mixins=mixins,
                           attributes=attributes)
    locations = wire.created_locations(rendering, response)
    for location in locations:  # whatever the answer, leave nothing behind
        ctx.created(location)
    if response.status_code == 200 and not locations:
        try:
            entity = wire.parse_entity(rendering, response)
        except (wire.WireError, ValueError) as exc:
            ctx.fail(f"create answered 200 with an unreadable rendering: {exc}", response)
        entity_id = str(entity.attributes.get("occi.core.id", ""))
        locations = [f"{kind_location(ctx, kind)}{entity_id.rsplit(':', 1)[-1]}"]
        ctx.created(ctx.client.url(locations[0]))
    ctx.expect_status(response, 201, 200, what=f"create of a {kind.rsplit('#', 1)[1]}")
    ctx.expect(locations, "a 201 answer to a create carries the new entity's location "
                          "(Location or X-OCCI-Location)", response)
    return ctx.client.url(locations[0])


def read(ctx: Context, location: str, rendering: str | None = None) -> Entity:
    rendering = rendering or rendering_of(ctx)
    response = ctx.client.get(location, headers=accept(rendering))
    ctx.expect_status(response, 200)
    try:
        return wire.parse_entity(rendering, response)
    except (wire.WireError, ValueError) as exc:
        ctx.fail(f"the entity at {location} could not be read as {rendering}: {exc}", response)


def state_of(ctx: Context, location: str, attribute: str) -> Any:
    return read(ctx, location).attributes.get(attribute)


def expect_state(ctx: Context, entity: Entity, attribute: str, states: set[str]) -> None:
    """``entity`` renders ``attribute`` (a state) with one of ``states``."""
    state = entity.attributes.get(attribute)
    ctx.expect(state in states, f"{attribute} {state!r}")


def wait_state(ctx: Context, location: str, attribute: str, wanted: set[str]) -> str:
    """Poll ``attribute`` of ``location`` until it is one of ``wanted`` (bounded wait); fails on
    ``error`` at once."""

    def probe() -> str | None:
        state = str(state_of(ctx, location, attribute))
        if state == "error" and "error" not in wanted:
            ctx.fail(f"{attribute} of {location} became 'error' while waiting for "
                     f"{' or '.join(sorted(wanted))}")
        return state if state in wanted else None

    return str(ctx.poll(probe, what=f"{attribute} of {location} to be "
                                    f"{' or '.join(sorted(wanted))}"))


def unique_term(ctx: Context, what: str) -> str:
    """A term for something this run creates: letters, digits, '_' (valid in 1.1 too)."""
    return f"{ctx.settings.prefix}_{what}_{uuid.uuid4().hex[:6]}".replace("-", "_").lower()


def body_text(response: requests.Response) -> str:
    return response.text.strip()
