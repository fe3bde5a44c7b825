"""Entities and links: create, read, list, update (POST partial, PUT full), delete; the
infrastructure states; actions and their state rules. Every check here runs in each rendering
and polls asynchronous servers (state "inactive"/"pending" first) with a bounded wait."""

from __future__ import annotations

import uuid
from typing import Any

from conformance.framework import Context, Level
from conformance.occi import wire
from conformance.occi.base import (
    COMPUTE,
    COMPUTE_ACTION,
    NETWORK,
    NETWORKINTERFACE,
    STORAGE,
    STORAGELINK,
    SUITE,
    accept,
    create,
    expect_state,
    http,
    infra,
    kind_location,
    os_template,
    read,
    rendering_of,
    send_entity,
    wait_state,
)
from conformance.occi.wire import Entity

COMPUTE_STATES = {"active", "inactive", "suspended", "error"}
STORAGE_STATES = {"online", "offline", "error"}
NETWORK_STATES = {"active", "inactive", "error"}
LINK_STATES = {"active", "inactive", "error"}


def _short(rendering: str | None) -> str:
    return {"text/plain": "plain", "text/occi": "occi", "application/occi+json": "json",
            "application/json": "json2"}.get(rendering or "", "x")


def _title(ctx: Context, what: str) -> str:
    """A title for ``what`` made or changed in this check's rendering."""
    return ctx.name(f"{what}-{_short(ctx.rendering)}")


def _wait_compute(ctx: Context, location: str, *states: str) -> str:
    return wait_state(ctx, location, "occi.compute.state", set(states))


# --- fixtures: one of each, created in the check's rendering ------------------------------------


@SUITE.fixture("compute", writes=True, per_rendering=True)
def compute(ctx: Context) -> str:
    return create(ctx, COMPUTE, mixins=[os_template(ctx)],
                  attributes={"occi.core.title": _title(ctx, "compute")})


@SUITE.fixture("active-compute", writes=True, per_rendering=True)
def active_compute(ctx: Context) -> str:
    location: str = ctx.need("compute")
    _wait_compute(ctx, location, "active")
    return location


@SUITE.fixture("storage", writes=True, per_rendering=True)
def storage(ctx: Context) -> str:
    return create(ctx, STORAGE, attributes={"occi.core.title": _title(ctx, "storage"),
                                            "occi.storage.size": 1.0})


@SUITE.fixture("network", writes=True, per_rendering=True)
def network(ctx: Context) -> str:
    return create(ctx, NETWORK, attributes={"occi.core.title": _title(ctx, "network")})


def _link(ctx: Context, kind: str, source: str, target: str) -> str:
    return create(ctx, kind, attributes={"occi.core.source": wire.path_of(source),
                                         "occi.core.target": wire.path_of(target)})


@SUITE.fixture("storagelink", writes=True, per_rendering=True)
def storagelink(ctx: Context) -> str:
    return _link(ctx, STORAGELINK, ctx.need("active-compute"), ctx.need("storage"))


@SUITE.fixture("networkinterface", writes=True, per_rendering=True)
def networkinterface(ctx: Context) -> str:
    return _link(ctx, NETWORKINTERFACE, ctx.need("active-compute"), ctx.need("network"))


def has_link(entity: Entity, link: str) -> bool:
    """``entity`` renders the link at ``link`` (by location, or by the id ending it)."""
    tail = link.rstrip("/").rsplit("/", 1)[-1]
    return any(wire.same_location(x, link) or x.rsplit(":", 1)[-1] == tail
               for x in entity.links if x)


def expect_kind(ctx: Context, entity: Entity, kind: str) -> None:
    ctx.expect(entity.kind == kind, f"kind {kind}, rendered {entity.kind!r}")


# --- resources --------------------------------------------------------------------------------


@SUITE.check("OCCI-HTTP-ENT-001", clause=http("11.3.1"), level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="POST to /compute/ creates a compute: 201 with its location")
def create_compute(ctx: Context) -> None:
    ctx.need("compute", failing=True)


@SUITE.check("OCCI-HTTP-ENT-002", clause=http("10.1"), level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="GET of the new compute renders its kind, os_tpl mixin and title")
def read_compute(ctx: Context) -> None:
    entity = read(ctx, ctx.need("compute"))
    expect_kind(ctx, entity, COMPUTE)
    ctx.expect(os_template(ctx) in entity.mixins, f"the mixin {os_template(ctx)} is rendered")
    ctx.expect(entity.title == _title(ctx, "compute"),
               f"the title sent, rendered {entity.title!r}")
    ctx.expect(entity.attributes.get("occi.core.id"), "occi.core.id is rendered")


@SUITE.check("OCCI-INFRA-ENT-003", clause=infra("3.1", "Compute"),
             level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="occi.compute.state is always one of active, inactive, suspended, error")
def compute_state_enum(ctx: Context) -> None:
    expect_state(ctx, read(ctx, ctx.need("compute")), "occi.compute.state", COMPUTE_STATES)


@SUITE.check("OCCI-INFRA-ENT-004", clause=infra("3.1", "Compute"),
             level=Level.SHOULD, group="lifecycle",
             writes=True, per_rendering=True,
             title="a new compute becomes active within the wait (no start needed)")
def compute_becomes_active(ctx: Context) -> None:
    ctx.need("active-compute", failing=True)


@SUITE.check("OCCI-HTTP-ENT-005", clause=http("11.1"), level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="the new compute is listed in the /compute/ collection")
def compute_listed(ctx: Context) -> None:
    location = ctx.need("compute")
    rendering = rendering_of(ctx)
    response = ctx.client.get(kind_location(ctx, COMPUTE), headers=accept(rendering))
    ctx.expect_status(response, 200)
    listed = wire.parse_locations(rendering, response)
    tail = location.rsplit("/", 1)[-1]
    ctx.expect(any(wire.same_location(x, location) or x.endswith(tail) for x in listed),
               f"{location} in the collection", response)


@SUITE.check("OCCI-HTTP-ENT-006", clause=http("10.3.1"), level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="POST of a partial rendering updates the entity (200 + entity or 201)")
def partial_update(ctx: Context) -> None:
    location = ctx.need("compute")
    title = _title(ctx, "renamed")
    response = send_entity(ctx, "POST", location, COMPUTE, attributes={"occi.core.title": title})
    ctx.expect_status(response, 200, 201, what="partial update")
    if response.status_code == 201:
        ctx.expect(response.headers.get("Location"), "201 carries a Location", response)
    got = read(ctx, location).title
    ctx.expect(got == title, f"title {title!r} after the update, rendered {got!r}")


@SUITE.check("OCCI-HTTP-ENT-007", clause=http("10.2.2"), level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="PUT of a full rendering replaces the resource and keeps its links")
def full_replace(ctx: Context) -> None:
    location = ctx.need("active-compute")
    link = ctx.need("storagelink")
    before = read(ctx, location)
    title = _title(ctx, "replaced")
    response = send_entity(ctx, "PUT", location, COMPUTE, mixins=before.mixins,
                           attributes={"occi.core.title": title})
    ctx.expect_status(response, 200, 201, what="full replace")
    after = read(ctx, location)
    ctx.expect(after.title == title, f"title {title!r} after PUT, rendered {after.title!r}")
    ctx.expect(has_link(after, link), f"the link {link} is still rendered after PUT")


@SUITE.check("OCCI-HTTP-ENT-008", clause=http("10.4"), level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="DELETE of an entity answers 200 or 204; the entity is then gone (404)")
def delete_entity(ctx: Context) -> None:
    rendering = rendering_of(ctx)
    location = create(ctx, STORAGE, attributes={"occi.core.title": _title(ctx, "doomed"),
                                                "occi.storage.size": 1.0})
    response = ctx.client.delete(location, headers=accept(rendering))
    ctx.expect_status(response, 200, 204, what="DELETE of an entity")
    ctx.poll(lambda: ctx.client.get(location, headers=accept(rendering)).status_code == 404,
             what=f"GET {location} to answer 404 after DELETE")


@SUITE.check("OCCI-INFRA-ENT-009", clause=infra("3.3", "Storage"),
             level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="a storage is created with its size; its state is online, offline or error")
def storage_lifecycle(ctx: Context) -> None:
    entity = read(ctx, ctx.need("storage", failing=True))
    expect_kind(ctx, entity, STORAGE)
    size = entity.attributes.get("occi.storage.size")
    ctx.expect(isinstance(size, int | float) and float(size) == 1.0,
               f"occi.storage.size 1.0, rendered {size!r}")
    expect_state(ctx, entity, "occi.storage.state", STORAGE_STATES)


@SUITE.check("OCCI-INFRA-ENT-010", clause=infra("3.2", "Network"),
             level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="a network is created; its state is active, inactive or error")
def network_lifecycle(ctx: Context) -> None:
    entity = read(ctx, ctx.need("network", failing=True))
    expect_kind(ctx, entity, NETWORK)
    expect_state(ctx, entity, "occi.network.state", NETWORK_STATES)


@SUITE.check("OCCI-HTTP-ENT-011", clause=http("10.1") + ", " + http("5.4"), level=Level.MUST,
             group="lifecycle", title="GET of an entity that does not exist answers 404")
def unknown_entity(ctx: Context) -> None:
    location = kind_location(ctx, COMPUTE) + str(uuid.uuid4())
    ctx.expect_status(ctx.client.get(location, headers=accept(wire.TEXT_PLAIN)), 404)


@SUITE.check("OCCI-HTTP-ENT-012", clause=http("10.2.1"), level=Level.MUST, group="lifecycle",
             writes=True, per_rendering=True,
             title="PUT of a full rendering to a new URL creates the entity there (201 + its "
                   "location, or 200 + its rendering)")
def create_at_url(ctx: Context) -> None:
    location = ctx.client.url(kind_location(ctx, COMPUTE) + str(uuid.uuid4()))
    title = _title(ctx, "put-created")
    response = send_entity(ctx, "PUT", location, COMPUTE, mixins=[os_template(ctx)],
                           attributes={"occi.core.title": title})
    if response.status_code < 300:
        ctx.created(location)
    named = wire.created_locations(rendering_of(ctx), response)
    for other in named:  # made somewhere else after all: leave nothing behind
        if not wire.same_location(other, location):
            ctx.created(ctx.client.url(other))
    ctx.expect_status(response, 201, 200, what="PUT to a new entity URL")
    if response.status_code == 201:
        ctx.expect(named, "a 201 answer carries the new entity's location", response)
        ctx.expect(all(wire.same_location(x, location) for x in named),
                   f"the entity is created at the URL it was PUT to ({location}), the answer "
                   f"names {named}", response)
    entity = read(ctx, location)
    expect_kind(ctx, entity, COMPUTE)
    ctx.expect(entity.title == title, f"title {title!r} at the new URL, rendered "
                                      f"{entity.title!r}")
    ctx.client.delete(location, headers=accept(rendering_of(ctx)))  # no longer needed


# --- links ------------------------------------------------------------------------------------


def _check_link(ctx: Context, fixture: str, kind: str, source: str, target: str,
                states: set[str]) -> None:
    link = ctx.need(fixture, failing=True)
    entity = read(ctx, link)
    expect_kind(ctx, entity, kind)
    for end, wanted in (("source", source), ("target", target)):
        got = str(entity.attributes.get(f"occi.core.{end}", ""))
        ctx.expect(wire.same_location(got, wanted), f"occi.core.{end} {wanted}, rendered {got!r}")
    expect_state(ctx, entity, f"occi.{kind.rsplit('#', 1)[1]}.state", states)
    ctx.expect(has_link(read(ctx, source), link), f"the source {source} renders the link")


@SUITE.check("OCCI-INFRA-LINK-001", clause=infra("3.4.2", "StorageLink") + ", " + http("11.3.1"),
             level=Level.MUST, group="links", writes=True, per_rendering=True,
             title="a storagelink compute -> storage is created, read and rendered in its "
                   "source")
def storagelink_lifecycle(ctx: Context) -> None:
    _check_link(ctx, "storagelink", STORAGELINK, ctx.need("active-compute"),
                ctx.need("storage"), LINK_STATES)


@SUITE.check("OCCI-INFRA-LINK-002",
             clause=infra("3.4.1", "NetworkInterface") + ", " + http("11.3.1"),
             level=Level.MUST, group="links", writes=True, per_rendering=True,
             title="a networkinterface compute -> network is created, read and rendered in "
                   "its source")
def networkinterface_lifecycle(ctx: Context) -> None:
    _check_link(ctx, "networkinterface", NETWORKINTERFACE, ctx.need("active-compute"),
                ctx.need("network"), LINK_STATES)


@SUITE.check("OCCI-HTTP-LINK-003", clause=http("10.4"), level=Level.MUST, group="links",
             writes=True, per_rendering=True,
             title="DELETE of a link answers 200 or 204 and removes it from its source")
def delete_link(ctx: Context) -> None:
    link = ctx.need("networkinterface")
    source = ctx.need("active-compute")
    rendering = rendering_of(ctx)
    response = ctx.client.delete(link, headers=accept(rendering))
    ctx.expect_status(response, 200, 204, what="DELETE of a link")
    ctx.poll(lambda: not has_link(read(ctx, source), link),
             what=f"{source} to stop rendering the deleted link")


# --- actions ----------------------------------------------------------------------------------


def invoke(ctx: Context, location: str, term: str, scheme: str = COMPUTE_ACTION,
           attributes: dict[str, Any] | None = None, *,
           body_term: str | None = None) -> Any:
    rendering = rendering_of(ctx)
    headers, body = wire.action_request(rendering, scheme + (body_term or term), attributes)
    return ctx.client.post(f"{location}?action={term}", headers={**headers, **accept(rendering)},
                           data=body)


def _start_active(ctx: Context) -> Any:
    """start invoked on the active compute (once it is active): an action in the wrong state."""
    location = ctx.need("active-compute")
    _wait_compute(ctx, location, "active")
    return invoke(ctx, location, "start")


@SUITE.check("OCCI-INFRA-ACT-001", clause=http("10.3.2") + ", " + infra("3.1", "Compute"),
             level=Level.MUST,
             group="actions", writes=True, per_rendering=True,
             title="stop on an active compute answers 200 and it becomes inactive")
def action_stop(ctx: Context) -> None:
    location = ctx.need("active-compute")
    response = invoke(ctx, location, "stop", attributes={"method": "graceful"})
    ctx.expect_status(response, 200, what="POST ?action=stop")
    _wait_compute(ctx, location, "inactive")


@SUITE.check("OCCI-INFRA-ACT-002", clause=http("10.3.2") + ", " + infra("3.1", "Compute"),
             level=Level.MUST,
             group="actions", writes=True, per_rendering=True,
             title="start on an inactive compute answers 200 and it becomes active")
def action_start(ctx: Context) -> None:
    location = ctx.need("active-compute")
    _wait_compute(ctx, location, "active", "inactive")
    if read(ctx, location).attributes.get("occi.compute.state") == "active":
        ctx.expect_status(invoke(ctx, location, "stop"), 200, what="POST ?action=stop")
        _wait_compute(ctx, location, "inactive")
    response = invoke(ctx, location, "start")
    ctx.expect_status(response, 200, what="POST ?action=start")
    _wait_compute(ctx, location, "active")


@SUITE.check("OCCI-HTTP-ACT-003", clause=http("10.3.2"),
             level=Level.MUST, group="actions", writes=True, per_rendering=True,
             title="an action not allowed in the current state (start on active) is refused "
                   "with 400 or 409")
def action_wrong_state(ctx: Context) -> None:
    ctx.expect_status(_start_active(ctx), 400, 409, what="start on an active compute")


@SUITE.check("OCCI-HTTP-ACT-004", clause=http("10.3.2") + "; notes §2.4", level=Level.SHOULD,
             group="actions", writes=True,
             title="an action not allowed in the current state is refused with 409 exactly")
def action_wrong_state_409(ctx: Context) -> None:
    ctx.expect_status(_start_active(ctx), 409, what="start on an active compute")


@SUITE.check("OCCI-HTTP-ACT-005", clause=http("10.3.2"), level=Level.MUST, group="actions",
             writes=True, per_rendering=True,
             title="an action the entity does not define is refused with 400")
def action_undefined(ctx: Context) -> None:
    location = ctx.need("compute")
    ctx.expect_status(invoke(ctx, location, "fly"), 400, what="POST ?action=fly")


@SUITE.check("OCCI-HTTP-ACT-006", clause=http("10.3.2"), level=Level.SHOULD, group="actions",
             writes=True,
             title="an invocation whose Category term differs from ?action= is refused with 400")
def action_term_mismatch(ctx: Context) -> None:
    location = ctx.need("compute")
    ctx.expect_status(invoke(ctx, location, "start", body_term="stop"), 400,
                      what="?action=start with a stop Category")


@SUITE.check("OCCI-INFRA-ACT-007", clause=infra("3.2", "Network") + ", " + infra("3.3", "Storage"),
             level=Level.MUST,
             group="actions", writes=True, per_rendering=True,
             title="network down/up and storage offline/online answer 200")
def network_storage_actions(ctx: Context) -> None:
    network_location = ctx.need("network")
    storage_location = ctx.need("storage")
    for location, kind, term in ((network_location, "network", "down"),
                                 (network_location, "network", "up"),
                                 (storage_location, "storage", "offline"),
                                 (storage_location, "storage", "online")):
        scheme = f"http://schemas.ogf.org/occi/infrastructure/{kind}/action#"
        ctx.expect_status(invoke(ctx, location, term, scheme), 200,
                          what=f"{kind} ?action={term}")
