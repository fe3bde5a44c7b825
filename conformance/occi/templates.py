"""What OCCI 1.2 added to compute: the ``save`` action (a new OS template from a compute) and
the contextualization mixins ``ssh_key`` and ``user_data``. Each is checked where the server
offers it (the compute kind lists ``save``; the query interface lists the mixin) and skipped,
saying so, where it does not."""

from __future__ import annotations

import base64
import functools
import struct
import time
from typing import Any

from conformance.framework import Context, LeftBehind, Level
from conformance.occi import wire
from conformance.occi.base import (
    COMPUTE,
    OS_TPL,
    SUITE,
    Model,
    create,
    http,
    infra,
    os_template,
    read,
    read_model,
    rendering_of,
    unique_term,
    wait_state,
)
from conformance.occi.lifecycle import invoke
from conformance.occi.wire import Category

# The published schemes first (GFD.224 §3.5.2's Credentials and Contextualization Mixin
# paragraphs), then those of occi-wg's earlier infrastructure draft.
SSH_KEY_SCHEMES = ("http://schemas.ogf.org/occi/infrastructure/credentials#",
                   "http://schemas.ogf.org/occi/credentials#")
USER_DATA_SCHEMES = ("http://schemas.ogf.org/occi/infrastructure/compute#",
                     "http://schemas.ogf.org/occi/compute#")
SSH_KEY_ATTRIBUTE = "occi.credentials.ssh.publickey"
USER_DATA_ATTRIBUTE = "occi.compute.userdata"
USER_DATA = "#!/bin/sh\necho nimbo-conformance\n"
GONE_STATUSES = (200, 204, 404)
"""Answers to the removal of a saved OS template after which nothing is left."""


def ssh_public_key(comment: str) -> str:
    """A well-formed OpenSSH ed25519 public key line (the key itself is of no use to anyone:
    32 fixed bytes, no private key exists for it)."""
    algorithm = b"ssh-ed25519"
    blob = struct.pack(">I", len(algorithm)) + algorithm + struct.pack(">I", 32) + bytes(
        range(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


# --- save ---------------------------------------------------------------------------------------


@SUITE.fixture("settled-compute", writes=True)
def settled_compute(ctx: Context) -> str:
    """A compute that is active or inactive (save is valid in both), made in text/plain."""
    location: str = ctx.need("compute-for-listing")
    wait_state(ctx, location, "occi.compute.state", {"active", "inactive"})
    return location


def _templates(ctx: Context) -> set[str]:
    """The OS templates the query interface lists now."""
    return {c.type_id for c in read_model(ctx, wire.TEXT_PLAIN).templates(OS_TPL)}


def _remove_template(ctx: Context, type_id: str) -> None:
    """DELETE /-/ of a saved OS template, the only removal OCCI knows (that of a user mixin);
    a server that refuses it keeps the template: reported as left behind. A 409 (a conflict
    with the template's state now: the save may still be copying, as save runs on after its
    answer) is asked again until the suite's poll timeout."""
    headers, body = wire.mixin_request(wire.TEXT_PLAIN, type_id, None)
    deadline = time.monotonic() + ctx.settings.poll_timeout
    status = ctx.client.delete("/-/", headers=headers, data=body).status_code
    while status == 409 and time.monotonic() < deadline:
        time.sleep(ctx.settings.poll_interval)
        status = ctx.client.delete("/-/", headers=headers, data=body).status_code
    if status in (403, 405, 409, 501):
        raise LeftBehind(f"the server refuses to remove it ({status})")
    if status not in GONE_STATUSES:
        raise RuntimeError(f"DELETE /-/ of {type_id} answered {status}")


@SUITE.check("OCCI-INFRA-ACT-009", clause=infra("3.1", "Compute (save)") + ", " + http("10.3.2")
             + "; notes §2.4, §5", level=Level.MUST, group="actions", writes=True,
             title="save (when the compute kind offers it) answers 200 and a new os_tpl mixin "
                   "appears in the query interface")
def action_save(ctx: Context) -> None:
    compute = ctx.need("model").find(COMPUTE)
    if compute is None or not any(a.endswith("#save") for a in compute.actions):
        ctx.skip("the compute kind does not offer save (added in OCCI 1.2)")
    location = ctx.need("settled-compute")
    before = _templates(ctx)
    response = invoke(ctx, location, "save", attributes={"name": unique_term(ctx, "saved")})
    made: set[str] = set()

    def appeared() -> set[str]:
        for type_id in sorted(_templates(ctx) - before - made):  # removed at the end
            made.add(type_id)
            ctx.on_cleanup(f"remove saved OS template {type_id}",
                           functools.partial(_remove_template, ctx, type_id))
        return made

    ctx.expect_status(response, 200, what="POST ?action=save")
    ctx.poll(appeared, what="a new os_tpl mixin in the query interface after save")


# --- contextualization --------------------------------------------------------------------------


def offered(ctx: Context, term: str, schemes: tuple[str, ...]) -> Category | None:
    """The mixin ``term`` in one of ``schemes`` (in that order of preference), if offered."""
    model: Model = ctx.need("model")
    for scheme in schemes:
        found = model.find(scheme + term)
        if found is not None and found.cls == "mixin":
            return found
    return None


def attribute_of(mixin: Category, name: str) -> str:
    """The attribute ``mixin`` defines for its value: ``name`` (the standard's) when the mixin
    lists it or lists none, else the one attribute it lists (drafts spelled them otherwise)."""
    if name in mixin.attributes or len(mixin.attributes) != 1:
        return name
    return mixin.attributes[0]


def _context(ctx: Context) -> dict[str, tuple[str, str, str]]:
    """The contextualization mixins offered: what -> (type id, attribute, value to send)."""
    out: dict[str, tuple[str, str, str]] = {}
    ssh = offered(ctx, "ssh_key", SSH_KEY_SCHEMES)
    if ssh is not None:
        out["ssh_key"] = (ssh.type_id, attribute_of(ssh, SSH_KEY_ATTRIBUTE),
                          ssh_public_key(ctx.name("key")))
    data = offered(ctx, "user_data", USER_DATA_SCHEMES)
    if data is not None:
        out["user_data"] = (data.type_id, attribute_of(data, USER_DATA_ATTRIBUTE),
                            base64.b64encode(USER_DATA.encode()).decode())
    return out


@SUITE.fixture("contextualized", writes=True, per_rendering=True)
def contextualized(ctx: Context) -> tuple[str, dict[str, tuple[str, str, str]]]:
    """A compute made with every contextualization mixin offered, in the check's rendering."""
    mixins = _context(ctx)
    if not mixins:
        ctx.skip("the query interface offers neither ssh_key nor user_data (SHOULD)")
    attributes: dict[str, Any] = {"occi.core.title": ctx.name(f"context-{rendering_of(ctx)}")}
    attributes.update({attribute: value for _, attribute, value in mixins.values()})
    types = [type_id for type_id, _, _ in mixins.values()]
    location = create(ctx, COMPUTE, mixins=[os_template(ctx), *types], attributes=attributes)
    return location, mixins


def _renders_context(ctx: Context, what: str, schemes: tuple[str, ...]) -> None:
    if offered(ctx, what, schemes) is None:
        ctx.skip(f"the query interface offers no {what} mixin (SHOULD)")
    location, mixins = ctx.need("contextualized", failing=True)
    type_id, attribute, value = mixins[what]
    entity = read(ctx, location)
    ctx.expect(type_id in entity.mixins, f"the compute renders the mixin {type_id}")
    got = entity.attributes.get(attribute)
    ctx.expect(got == value, f"{attribute} {value!r} rendered back, rendered {got!r}")


@SUITE.check("OCCI-INFRA-CTX-001",
             clause=infra("3.5.2", "Resource Template: Credentials Mixin (ssh_key)"),
             level=Level.MUST, group="contextualization", writes=True, per_rendering=True,
             title="a compute created with ssh_key (when offered) renders the mixin and "
                   "occi.credentials.ssh.publickey")
def ssh_key(ctx: Context) -> None:
    _renders_context(ctx, "ssh_key", SSH_KEY_SCHEMES)


@SUITE.check("OCCI-INFRA-CTX-002",
             clause=infra("3.5.2", "Resource Template: Contextualization Mixin (user_data)"),
             level=Level.MUST, group="contextualization", writes=True, per_rendering=True,
             title="a compute created with user_data (when offered) renders the mixin and "
                   "occi.compute.userdata")
def user_data(ctx: Context) -> None:
    _renders_context(ctx, "user_data", USER_DATA_SCHEMES)
