"""What a create or an update means, kind by kind: rows to write and jobs to enqueue.

Everything here runs inside the caller's write transaction and raises only client errors; the
caller commits and then enqueues :attr:`Plan.jobs`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session, make_transient_to_detached

from auth.principal import Principal
from backends.base import config_drive_volume_id
from backends.registry import shares_volumes
from gateway import jobs
from gateway.config import Config
from gateway.errors import Conflict, InvalidAttribute, InvalidRequest
from gateway.scheduler import place
from gateway.services import ipam
from gateway.services.cdmi_exports import cdmi_export
from gateway.services.context import check_context
from gateway.services.images import SAVED_IMAGE_PREFIX
from gateway.services.tenancy import GROUP_ATTRIBUTE, OWNER_ATTRIBUTE, Tenancy, group_name
from gateway.store.models import Base, EntityMixin, EntityRow, Host, Image, Operation, utcnow
from occi import infrastructure as infra
from occi.core import EntityRequest, Kind, LinkRequest, Mixin
from occi.registry import Registry
from occi.validation import (
    canonical_attributes,
    check_attributes,
    definitions,
    require,
    resolve_categories,
    single_template,
)

MIB_PER_GIB = 1024
SERVER_SET = ("occi.core.id", "occi.core.source", "occi.core.target")
_UUID = re.compile(
    r"^(?:urn:uuid:)?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
# Clients also choose plain ids ("Compute_1795259671", "42"): one safe path segment.
_PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.~-]{0,63}$")

JobFunc = Callable[[str, str], None]

# Core statements of the create path (see operation): the tables' Python defaults apply.
_INSERT_OPERATION = insert(Base.metadata.tables[Operation.__tablename__])
_INSERT_MIXIN = insert(Base.metadata.tables[EntityMixin.__tablename__])
_INSERT_ENTITY = insert(Base.metadata.tables[EntityRow.__tablename__])
_IMAGE_STATE = select(Image.state, Image.origin_compute).where(Image.term == bindparam("term"))

# Resources placed on a host by policy alone (no sizes), and the job that makes them there.
PROVISION: dict[Kind, JobFunc] = {
    infra.STORAGE: jobs.provision_storage,
    infra.NETWORK: jobs.provision_network,
}


@dataclass
class Plan:
    """Rows written by a create and the jobs to enqueue once they are committed."""

    entity: EntityRow
    jobs: list[tuple[str | None, JobFunc, str, str]] = field(default_factory=list)


def _names_a_derived_volume(entity_id: str) -> bool:
    """Whether a volume id the gateway derives (a compute's root disk or config drive, a
    saved image) could equal ``entity_id``, the volume id of a storage: a client choosing
    such an id would share, or lose, that volume."""
    return (
        entity_id.startswith(SAVED_IMAGE_PREFIX)
        or entity_id.endswith(jobs.root_volume_id(""))
        or entity_id.endswith(config_drive_volume_id(""))
    )


def parse_id(value: object) -> str:
    """A client-given ``occi.core.id`` as the path segment of the entity: a UUID (bare or
    ``urn:uuid:``) in lower case, or a plain id of letters, digits, ``_.~-`` (at most 64)."""
    text = str(value).strip()
    match = _UUID.match(text)
    if match:
        return match.group(1).lower()
    if _PLAIN_ID.match(text):
        if _names_a_derived_volume(text):
            raise InvalidAttribute(
                f"occi.core.id {text} is reserved: ids starting with {SAVED_IMAGE_PREFIX} or "
                f"ending with {jobs.root_volume_id('')} or {config_drive_volume_id('')} name "
                "the volumes the gateway keeps beside entities"
            )
        return text
    raise InvalidAttribute(
        f"occi.core.id must be a UUID, a urn:uuid URN, or up to 64 letters, "
        f"digits and '_.~-' (not {value!r})"
    )


def location_path(location: str) -> str:
    """The path of an entity location given as a path or an absolute URL."""
    return urlparse(location).path if "://" in location else location.split("?", 1)[0]


def without_state(kind: Kind, attributes: dict[str, Any]) -> dict[str, Any]:
    """Drop the attributes the server manages, which a client rendering sent back may carry:
    the state pair, and a compute's console location."""
    name = infra.STATE_ATTRIBUTE.get(kind.type_id)
    if name is None:
        return attributes
    managed = {name, f"{name}.message"}
    if kind.type_id == infra.COMPUTE.type_id:
        managed.add(infra.CONSOLE_ATTRIBUTE)
    return {k: v for k, v in attributes.items() if k not in managed}


def operation(
    session: Session,
    entity_id: str,
    verb: str,
    host: str | None,
    params: dict[str, Any] | None = None,
) -> str:
    """A new operation record (queued), by Core on the session's connection: written now and
    seen by the transaction's later statements. Through the ORM's unit of work each such row
    cost more CPU than its INSERT, inside the store's write lock (see gateway.store.db)."""
    op_id = str(uuid.uuid4())
    session.connection().execute(
        _INSERT_OPERATION,
        {"id": op_id, "entity_id": entity_id, "verb": verb, "params": params or {}, "host": host},
    )
    return op_id


def add_mixins(session: Session, entity_id: str, mixins: list[Mixin], start: int = 0) -> None:
    """The entity's mixin rows, from position ``start`` on, by Core as :func:`operation`'s;
    the session is flushed first so that the entity row they refer to is written."""
    if not mixins:
        return
    session.flush()
    session.connection().execute(
        _INSERT_MIXIN,
        [
            {"entity_id": entity_id, "mixin": mixin.type_id, "position": position}
            for position, mixin in enumerate(mixins, start=start)
        ],
    )


def owned(
    session: Session,
    principal: Principal,
    path: str,
    kinds: tuple[Kind, ...],
    tenancy: Tenancy,
) -> EntityRow:
    """The live entity at ``path`` of one of ``kinds`` that the principal may change (link):
    theirs, or their group's under group_policy "full". One the principal does not see gets
    the 400 of a path where nothing is; one they may only read, a 403."""
    clean = location_path(path)
    names = " or ".join(k.term for k in kinds)
    missing = InvalidRequest(f"{path} is not a {names} of yours")
    for kind in kinds:
        assert kind.location is not None
        if clean.startswith(kind.location):
            row = session.get(EntityRow, clean.removeprefix(kind.location))
            if (
                row is not None
                and row.kind == kind.type_id
                and not row.deleting
                and tenancy.sees(principal, row.owner, row.group)
            ):
                tenancy.check_change(principal, row.owner, row.group, missing)
                return row
    raise missing


class Planner:
    """Turns validated requests into rows. One instance per request."""

    def __init__(
        self,
        session: Session,
        registry: Registry,
        principal: Principal,
        config: Config,
        default_flavour: Mixin | None,
    ) -> None:
        self.session = session
        self.registry = registry
        self.principal = principal
        self.config = config
        self.default_flavour = default_flavour
        self.tenancy = Tenancy.from_config(config)
        self.group: str | None = None  # of the resource being created (see create)
        self.asked_group: Any = None

    # --- entry point ----------------------------------------------------------------------

    def create(
        self, request: EntityRequest, expected: Kind | None, entity_id: str | None = None
    ) -> Plan:
        kind, mixins = resolve_categories(request, self.registry, expected)
        attrs = without_state(kind, canonical_attributes(request.attributes))
        self._take_tenancy(kind, attrs)
        given_id = attrs.pop("occi.core.id", None)
        new_id = parse_id(given_id) if given_id is not None else None
        entity_id = parse_id(entity_id) if entity_id else None  # PUT at a URL of the client's
        if entity_id and new_id and new_id != entity_id:
            raise InvalidRequest(f"occi.core.id {given_id} differs from the URL's id {entity_id}")
        chosen = entity_id or new_id
        if chosen is not None and self.session.get(EntityRow, chosen) is not None:
            raise Conflict(f"an entity with id {chosen} exists already")
        new_id = chosen or str(uuid.uuid4())  # a fresh UUID4 needs no look (nor gets one)
        defs = definitions(kind, mixins)
        if kind.is_a(infra.LINK):
            return self._link(kind, mixins, attrs, defs, new_id)
        attrs = check_attributes(attrs, defs, kind.term)
        if kind == infra.COMPUTE:
            return self._compute(kind, mixins, attrs, new_id, request.links)
        provision = PROVISION.get(kind)
        if provision is None:
            raise InvalidRequest(f"kind {kind.type_id} cannot be created")
        if kind == infra.NETWORK:
            check_ip_network(attrs)
        return self._placed(kind, mixins, attrs, defs, new_id, request.links, provision)

    def _take_tenancy(self, kind: Kind, attrs: dict[str, Any]) -> None:
        """Take the owner and group attributes out of a create's ``attrs``: the owner is the
        creator, the group one of theirs (or the default); a link's is its source's."""
        take_owner(attrs, self.principal.name)
        self.asked_group = attrs.pop(GROUP_ATTRIBUTE, None)
        if not kind.is_a(infra.LINK):
            self.group = self.tenancy.new_group(self.principal, self.asked_group)

    # --- resources ------------------------------------------------------------------------

    def _row(
        self,
        kind: Kind,
        entity_id: str,
        attrs: dict[str, Any],
        host: str | None,
        message: str = "queued",
        size: tuple[int, int] = (0, 0),
    ) -> EntityRow:
        """The new resource's row, written now (before its mixin rows, which refer to it);
        ``size``: the cores and MiB it holds.

        By Core, as :func:`operation`'s rows; the row returned is in the session as if it had
        been read (every column set), so that a change to it is written as an UPDATE."""
        now = utcnow()
        values = {
            "id": entity_id,
            "kind": kind.type_id,
            "owner": self.principal.name,
            "group": self.group,
            "attributes": {k: v for k, v in attrs.items() if v is not None},
            "state": _initial_state(kind),
            "state_message": message,
            "host": host,
            "cores": size[0],
            "memory_mib": size[1],
            "source": None,
            "target": None,
            "target_id": None,
            "deleting": False,
            "created_at": now,
            "updated_at": now,
        }
        self.session.connection().execute(_INSERT_ENTITY, values)
        row = EntityRow(**values)
        make_transient_to_detached(row)
        self.session.add(row)
        return row

    def _compute(
        self,
        kind: Kind,
        mixins: list[Mixin],
        attrs: dict[str, Any],
        entity_id: str,
        links: list[LinkRequest],
    ) -> Plan:
        os_tpl = single_template(mixins, infra.OS_TPL)
        if os_tpl is None:
            os_tpl = self._default_image()
            mixins = [*mixins, os_tpl]
        self._check_image_ready(os_tpl)
        mixins = self._with_flavour(mixins, attrs)
        apply_template_sizes(mixins, attrs)
        attrs.setdefault("occi.compute.cores", 1)
        attrs.setdefault("occi.compute.memory", 1.0)
        attrs.setdefault("occi.compute.architecture", "x64")
        require(attrs, definitions(kind, mixins), skip=(*SERVER_SET, "occi.compute.state"))
        note = check_context(mixins, attrs, self.config.userdata_max_bytes)
        cores, memory_mib = compute_size(attrs)
        targets = [self._inline_target(link) for link in links]
        storage_hosts = {t.host for t in targets if t.kind == infra.STORAGE.type_id}
        if len(storage_hosts) > 1:
            raise Conflict(
                "the linked storages live on different hosts; one compute cannot attach them all"
            )
        host = place(
            self.session,
            cores=cores,
            memory_mib=memory_mib,
            policy=self.config.placement_policy,
            only=next(iter(storage_hosts)) if storage_hosts else None,
        )
        row = self._row(kind, entity_id, attrs, host, note or "queued", (cores, memory_mib))
        add_mixins(self.session, entity_id, mixins)
        for link, target in zip(links, targets, strict=True):
            self._inline_link(row, link, target)
        op = operation(self.session, entity_id, "provision", host)
        return Plan(row, [(host, jobs.provision_compute, entity_id, op)])

    def _check_image_ready(self, os_tpl: Mixin) -> None:
        """A compute cannot start from an image a ``save`` is still copying: 409 until the
        copy is whole (a failed save takes its template back: gateway.jobs.act_on_compute)."""
        image = self.session.connection().execute(_IMAGE_STATE, {"term": os_tpl.term}).first()
        if image is not None and image.state == "saving":
            raise Conflict(
                f"os_tpl {os_tpl.term} is still being saved from compute "
                f"{image.origin_compute}; create from it once the save has finished"
            )

    def _default_image(self) -> Mixin:
        images = self.registry.templates(infra.OS_TPL)
        wanted = self.config.default_os_tpl
        for image in images:
            if wanted and image.term == wanted:
                return image
        choices = ", ".join(m.term for m in images) or "none"
        raise InvalidRequest(f"an os_tpl mixin is required (registered images: {choices})")

    def _with_flavour(self, mixins: list[Mixin], attrs: dict[str, Any]) -> list[Mixin]:
        if single_template(mixins, infra.RESOURCE_TPL) is not None:
            return mixins
        sized = "occi.compute.cores" in attrs or "occi.compute.memory" in attrs
        if sized or self.default_flavour is None:
            return mixins
        return [*mixins, self.default_flavour]

    def _placed(
        self,
        kind: Kind,
        mixins: list[Mixin],
        attrs: dict[str, Any],
        defs: dict[str, Any],
        entity_id: str,
        links: list[LinkRequest],
        provision: JobFunc,
    ) -> Plan:
        """A storage or network: placed on a host by policy, provisioned there."""
        if links:
            raise InvalidRequest(f"a {kind.term} has no links of its own; link it from a compute")
        require(attrs, defs, skip=(*SERVER_SET, infra.STATE_ATTRIBUTE[kind.type_id]))
        host = place(self.session, cores=0, memory_mib=0, policy=self.config.placement_policy)
        row = self._row(kind, entity_id, attrs, host)
        add_mixins(self.session, entity_id, mixins)
        op = operation(self.session, entity_id, "provision", host)
        return Plan(row, [(host, provision, entity_id, op)])

    # --- links ----------------------------------------------------------------------------

    def _inline_target(self, link: LinkRequest) -> EntityRow:
        return owned(
            self.session,
            self.principal,
            link.target,
            (infra.NETWORK, infra.STORAGE),
            self.tenancy,
        )

    def _inline_link(self, compute: EntityRow, link: LinkRequest, target: EntityRow) -> None:
        kind = infra.STORAGELINK if target.kind == infra.STORAGE.type_id else infra.NETWORKINTERFACE
        request = EntityRequest(
            kind=None,
            mixins=list(link.categories),
            attributes=canonical_attributes(link.attributes),
        )
        link_kind, mixins = resolve_categories(request, self.registry, kind)
        attrs = without_state(link_kind, request.attributes)
        attrs.pop("occi.core.source", None)
        attrs.pop("occi.core.target", None)
        take_owner(attrs, self.principal.name)
        check_link_group(attrs.pop(GROUP_ATTRIBUTE, None), compute.group)
        given = attrs.pop("occi.core.id", None)
        link_id = (
            parse_id(given)
            if given
            else (
                parse_id(location_path(link.self_location).rsplit("/", 1)[-1])
                if link.self_location
                else str(uuid.uuid4())
            )
        )
        if self.session.get(EntityRow, link_id) is not None:
            raise Conflict(f"an entity with id {link_id} exists already")
        attrs = check_attributes(attrs, definitions(link_kind, mixins), link_kind.term)
        self._link_row(link_kind, mixins, attrs, link_id, compute, target, message="queued")

    def _link(
        self,
        kind: Kind,
        mixins: list[Mixin],
        attrs: dict[str, Any],
        defs: dict[str, Any],
        link_id: str,
    ) -> Plan:
        source_path, target_path = (
            attrs.pop("occi.core.source", None),
            attrs.pop("occi.core.target", None),
        )
        if not source_path or not target_path:
            raise InvalidAttribute("a link needs occi.core.source and occi.core.target")
        target_kind = infra.STORAGE if kind == infra.STORAGELINK else infra.NETWORK
        compute = owned(
            self.session, self.principal, str(source_path), (infra.COMPUTE,), self.tenancy
        )
        check_link_group(self.asked_group, compute.group)
        export = (
            cdmi_export(self.session, self.principal, self.config, attrs, str(target_path))
            if kind == infra.STORAGELINK
            else None
        )
        if export is not None:
            target = export.storage
            attrs["occi.storagelink.deviceid"] = self._next_device(compute.id)
            export.permit(f"{infra.COMPUTE.location}{compute.id}")
        else:
            target = owned(
                self.session, self.principal, str(target_path), (target_kind,), self.tenancy
            )
        attrs = check_attributes(attrs, defs, kind.term)
        if kind == infra.STORAGELINK and target.host != compute.host:
            raise Conflict(
                f"storage {target.id} lives on host {target.host}, compute "
                f"{compute.id} on {compute.host}: local volumes cannot be attached "
                "across hosts"
            )
        row = self._link_row(kind, mixins, attrs, link_id, compute, target, message="queued")
        op = operation(self.session, link_id, "attach", compute.host)
        return Plan(row, [(compute.host, jobs.attach_link, link_id, op)])

    def _link_row(
        self,
        kind: Kind,
        mixins: list[Mixin],
        attrs: dict[str, Any],
        link_id: str,
        compute: EntityRow,
        target: EntityRow,
        message: str,
    ) -> EntityRow:
        if kind == infra.STORAGELINK:
            self._check_unattached(target, compute)
            attrs.setdefault("occi.storagelink.deviceid", self._next_device(compute.id))
        else:
            granted = ipam.lease(self.session, target.id, target.attributes or {}, link_id, attrs)
            if granted is not None:
                attrs["occi.networkinterface.address"] = granted.address
                attrs["occi.networkinterface.allocation"] = granted.allocation
                if granted.gateway:
                    attrs["occi.networkinterface.gateway"] = granted.gateway
                if infra.IPNETWORKINTERFACE not in mixins:
                    mixins = [*mixins, infra.IPNETWORKINTERFACE]
            if infra.PORTMAP in mixins:
                self._check_port_map(compute, link_id, granted, attrs)
            mac = attrs.get("occi.networkinterface.mac") or (
                granted.mac if granted else derive_mac(link_id)
            )
            attrs["occi.networkinterface.mac"] = str(mac).lower()
            attrs.setdefault("occi.networkinterface.interface", self._next_interface(compute.id))
        require(
            attrs,
            definitions(kind, mixins),
            skip=(*SERVER_SET, infra.STATE_ATTRIBUTE[kind.type_id]),
        )
        row = EntityRow(
            id=link_id,
            kind=kind.type_id,
            owner=self.principal.name,
            group=compute.group,
            attributes=attrs,
            state="inactive",
            state_message=message,
            source=compute.id,
            target=f"{kind_target_location(target)}",
            target_id=target.id,
            host=None,
        )
        self.session.add(row)
        self.session.flush()
        add_mixins(self.session, link_id, mixins)
        return row

    def _check_unattached(self, storage: EntityRow, compute: EntityRow) -> None:
        """A storage is attached to a compute once, and to one compute at a time unless its
        host can share a volume between domains (:func:`backends.registry.shares_volumes`;
        QEMU cannot: it locks a writable disk image for the one domain writing it). 409
        naming the link that holds it. The storage's row is locked first (PostgreSQL; SQLite
        serialises writers already) so that two concurrent attaches cannot both pass."""
        self.session.execute(
            select(EntityRow.id).where(EntityRow.id == storage.id).with_for_update()
        )
        holders = self.session.execute(
            select(EntityRow.id, EntityRow.source).where(
                EntityRow.kind == infra.STORAGELINK.type_id,
                EntityRow.target_id == storage.id,
                EntityRow.deleting.is_(False),
            )
        ).all()
        for link_id, source in holders:
            if source == compute.id:
                raise Conflict(
                    f"storage {storage.id} is attached to this compute already "
                    f"(storagelink {link_id})"
                )
        if not holders:
            return
        host = self.session.get(Host, compute.host) if compute.host else None
        if host is not None and shares_volumes(host.uri):
            return
        link_id, source = holders[0]
        raise Conflict(
            f"storage {storage.id} is attached to compute {source} (storagelink {link_id}); "
            f"host {compute.host} cannot attach one volume to two computes at once: "
            "delete that link first"
        )

    def _check_port_map(
        self,
        compute: EntityRow,
        link_id: str,
        granted: ipam.Granted | None,
        attrs: dict[str, Any],
    ) -> None:
        """The rules parse, the interface has an address, and no other interface on the
        compute's host forwards the same public port."""
        if granted is None:
            raise InvalidRequest(
                f"{infra.PORTMAP.type_id} needs an address: link the interface to a network "
                "with the ipnetwork mixin"
            )
        rules = str(attrs.get("org.nimbostratus.portmap", ""))
        wanted = {(m.protocol, m.public_port) for m in ipam.port_mappings(rules, granted.address)}
        others = self.session.execute(
            select(EntityRow.id, EntityRow.attributes)
            .join(EntityMixin, EntityMixin.entity_id == EntityRow.id)
            .where(
                EntityMixin.mixin == infra.PORTMAP.type_id,
                EntityRow.deleting.is_(False),
                EntityRow.id != link_id,
                EntityRow.source.in_(
                    select(EntityRow.id).where(EntityRow.host == compute.host)
                ),
            )
        )
        for other_id, other_attrs in others:
            theirs = ipam.port_rules(str(other_attrs.get("org.nimbostratus.portmap", "")))
            taken = wanted & {(protocol, public) for protocol, public, _ in theirs}
            if taken:
                protocol, port = sorted(taken)[0]
                raise Conflict(
                    f"{protocol} port {port} of host {compute.host} is forwarded by "
                    f"networkinterface {other_id} already"
                )

    def _next_device(self, compute_id: str) -> str:
        used = self._used(compute_id, "occi.storagelink.deviceid")
        for letter in "bcdefghijklmnopqrstuvwxyz":
            if f"vd{letter}" not in used:
                return f"vd{letter}"
        raise Conflict("no free disk device name left on this compute")

    def _next_interface(self, compute_id: str) -> str:
        used = self._used(compute_id, "occi.networkinterface.interface")
        return next(f"eth{n}" for n in range(64) if f"eth{n}" not in used)

    def _used(self, compute_id: str, attribute: str) -> set[str]:
        self.session.flush()
        rows = self.session.scalars(
            select(EntityRow).where(EntityRow.source == compute_id, EntityRow.deleting.is_(False))
        ).all()
        return {str((r.attributes or {}).get(attribute)) for r in rows}


def take_owner(attrs: dict[str, Any], creator: str) -> None:
    """A create may repeat the owner attribute, as the creator: it is set by the server."""
    owner = attrs.pop(OWNER_ATTRIBUTE, None)
    if owner is not None and owner != creator:
        raise InvalidAttribute(f"{OWNER_ATTRIBUTE} is set by the server, to the creator")


def check_link_group(asked: Any, source_group: str | None) -> None:
    """A link's group is its source compute's: a create may repeat it, not name another."""
    if asked is not None and group_name(asked) != source_group:
        raise InvalidAttribute(
            f"a link's {GROUP_ATTRIBUTE} is its source compute's ({source_group or 'none'})"
        )


def kind_target_location(row: EntityRow) -> str:
    kind = infra.STORAGE if row.kind == infra.STORAGE.type_id else infra.NETWORK
    return f"{kind.location}{row.id}"


def _initial_state(kind: Kind) -> str:
    return "offline" if kind == infra.STORAGE else "inactive"


def apply_template_sizes(mixins: list[Mixin], attrs: dict[str, Any]) -> None:
    """A resource_tpl's sizes override whatever the client gave (OCCI 1.2 Infrastructure)."""
    template = single_template(mixins, infra.RESOURCE_TPL)
    if template is None:
        return
    for definition in template.attributes:
        if definition.default is not None:
            attrs[definition.name] = definition.default


def compute_size(attrs: dict[str, Any]) -> tuple[int, int]:
    return int(attrs["occi.compute.cores"]), int(float(attrs["occi.compute.memory"]) * MIB_PER_GIB)


def derive_mac(link_id: str) -> str:
    """A locally administered unicast MAC derived from the link id (stable across retries)."""
    digest = hashlib.sha256(link_id.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def check_ip_network(attrs: dict[str, Any]) -> None:
    """The network's address range parses and holds its gateway (the rules leases use)."""
    network = ipam.network_of(attrs)
    if network is not None:
        ipam.gateway_in(network, attrs.get("occi.network.gateway"))
