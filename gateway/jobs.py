"""RQ task functions. Each takes ids only, loads what it needs, drives the host's driver and
writes the outcome back to the store.

Every job is idempotent: drivers' ``ensure_*``/``delete_*`` converge, and an operation that is
already ``done`` is not run again. A :class:`~gateway.errors.BackendUnavailable` is re-raised
while RQ has retries left; any other backend error puts the entity in ``error`` with a message a
person can act on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from rq import get_current_job
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from backends.base import (
    ComputeInfo,
    ComputeSpec,
    DiskSpec,
    HostDriver,
    NetworkSpec,
    NicSpec,
    PowerState,
    RestartMethod,
    StopMethod,
    VolumeSpec,
    config_drive_volume_id,
)
from backends.configdrive import ContextSpec, build_config_drive
from backends.portmap import PortMapper
from gateway.errors import BackendError, BackendNotFound, BackendUnavailable
from gateway.runtime import current
from gateway.services.catalog import bump_catalog, template_scheme
from gateway.services.context import context_spec
from gateway.services.images import SAVED_IMAGE_PREFIX
from gateway.services.ipam import port_mappings
from gateway.store.models import (
    Base,
    CdmiExport,
    EntityMixin,
    EntityRow,
    Image,
    Lease,
    Operation,
    utcnow,
)
from occi import infrastructure as infra

log = logging.getLogger(__name__)

GIB = 1024**3

COMPUTE_STATES: dict[PowerState, str] = {
    PowerState.RUNNING: "active",
    PowerState.STOPPED: "inactive",
    PowerState.PAUSED: "suspended",
    PowerState.MISSING: "error",
    PowerState.CRASHED: "error",
}


# --- bookkeeping ------------------------------------------------------------------------

# The bookkeeping writes, by Core: every one of them holds the store's write lock, which the
# API's creates wait for, and through the ORM (load, change, flush) they held it twice as
# long. None of these columns is one a trigger counts (gateway.store.host_load, quota_use).
_ENTITIES = Base.metadata.tables[EntityRow.__tablename__]
_OPERATIONS = Base.metadata.tables[Operation.__tablename__]
_SET_MESSAGE = (
    update(_ENTITIES)
    .where(_ENTITIES.c.id == bindparam("entity"))
    .values(state_message=bindparam("message"))
)
_SET_STATE = (
    update(_ENTITIES)
    .where(_ENTITIES.c.id == bindparam("entity"))
    .values(
        state=bindparam("state"), state_message=bindparam("message"), updated_at=bindparam("at")
    )
)
_SET_LINK_STATES = (
    update(_ENTITIES)
    .where(_ENTITIES.c.source == bindparam("entity"), _ENTITIES.c.deleting.is_(False))
    .values(state=bindparam("state"), state_message=None)
)
_SET_RUNNING = (
    update(_OPERATIONS).where(_OPERATIONS.c.id == bindparam("operation")).values(status="running")
)
_SET_OUTCOME = (
    update(_OPERATIONS)
    .where(_OPERATIONS.c.id == bindparam("operation"))
    .values(status=bindparam("status"), message=bindparam("message"), finished_at=bindparam("at"))
)


@dataclass
class Job:
    """The operation being run and the entity it concerns, as loaded at the start."""

    operation_id: str
    verb: str
    params: dict[str, object]
    entity: EntityRow


def _start(entity_id: str, operation_id: str, message: str | None = None) -> Job | None:
    """Mark the operation running (and show ``message``, in which ``{verb}`` names the
    operation, as the entity's progress); None when there is nothing (left) to do.

    Jobs write as few transactions as they can: every one of them waits for the store's write
    lock, which the API's creates need too."""
    with current().store.session(write=True) as session:
        op = session.get(Operation, operation_id)
        row = session.get(EntityRow, entity_id)
        if op is None or op.status in ("done", "failed"):
            return None
        if row is None:
            op.status, op.finished_at = "done", utcnow()
            if op.verb == "save":  # the compute went before its save ran: nothing to copy
                _forget_saving_image(session, str((op.params or {})["image"]))
            return None
        session.expunge(row)  # the Job's, changed below as written
        connection = session.connection()
        connection.execute(_SET_RUNNING, {"operation": operation_id})
        if message is not None:
            row.state_message = message.format(verb=op.verb)
            connection.execute(_SET_MESSAGE, {"entity": entity_id, "message": row.state_message})
        return Job(operation_id, op.verb, dict(op.params or {}), row)


def _progress(entity_id: str, message: str) -> None:
    with current().store.session(write=True) as session:
        session.connection().execute(_SET_MESSAGE, {"entity": entity_id, "message": message})


def _finish(
    job: Job,
    state: str | None,
    message: str | None = None,
    status: str = "done",
    *,
    links: str | None = None,
) -> None:
    """The operation's outcome and the entity's state; ``links`` sets the state of the
    entity's live links in the same transaction."""
    now = utcnow()
    with current().store.session(write=True) as session:
        connection = session.connection()
        connection.execute(
            _SET_OUTCOME,
            {"operation": job.operation_id, "status": status, "message": message, "at": now},
        )
        if state is not None:
            connection.execute(
                _SET_STATE, {"entity": job.entity.id, "state": state, "message": message, "at": now}
            )
        if links is not None:
            connection.execute(_SET_LINK_STATES, {"entity": job.entity.id, "state": links})


@contextmanager
def _outcome(
    job: Job, failure_state: str = "error", undo: Callable[[], None] | None = None
) -> Iterator[None]:
    """Translate backend failures into the entity's state; re-raise while RQ may retry.
    ``undo`` runs once the job has failed for good (not before a retry), before the state is
    written."""
    try:
        yield
    except BackendUnavailable as exc:
        rq_job = get_current_job()
        if rq_job is not None and (rq_job.retries_left or 0) > 0:
            _progress(job.entity.id, f"host unreachable, retrying: {exc.message}")
            raise
        if undo is not None:
            undo()
        _finish(
            job,
            failure_state,
            f"{job.verb} failed: host unreachable: {exc.message}",
            status="failed",
        )
    except BackendError as exc:
        log.warning("%s of %s failed: %s", job.verb, job.entity.id, exc.message)
        if undo is not None:
            undo()
        _finish(job, failure_state, f"{job.verb} failed: {exc.message}", status="failed")


def _driver(job: Job) -> HostDriver:
    if job.entity.host is None:
        raise BackendError(f"{job.entity.kind} {job.entity.id} has no host")
    return current().driver(job.entity.host)


# --- specs from rows --------------------------------------------------------------------


def network_spec(row: EntityRow) -> NetworkSpec:
    attrs = row.attributes or {}
    address = attrs.get("occi.network.address")
    return NetworkSpec(
        id=row.id,
        vlan=attrs.get("occi.network.vlan"),
        address=str(address) if address else None,
        gateway=attrs.get("occi.network.gateway"),
        mode=current().config.network_mode,
        bridge_device=current().config.network_bridge_device or None,
    )


def volume_spec(row: EntityRow) -> VolumeSpec:
    size = float((row.attributes or {}).get("occi.storage.size", 1.0))
    return VolumeSpec(id=row.id, size_bytes=int(size * GIB))


def root_volume_id(compute_id: str) -> str:
    return f"{compute_id}-root"


@dataclass
class ComputePlan:
    """Everything needed to realise a compute, loaded in one transaction."""

    spec: ComputeSpec
    networks: list[NetworkSpec]
    volumes: list[VolumeSpec]
    root: VolumeSpec | None
    context: ContextSpec
    port_maps: dict[str, dict[str, object]] = dataclasses.field(default_factory=dict)


def _plan(compute_id: str) -> ComputePlan:
    with current().store.session() as session:
        row = session.get(EntityRow, compute_id)
        assert row is not None
        links = session.scalars(
            select(EntityRow).where(EntityRow.source == compute_id, EntityRow.deleting.is_(False))
        ).all()
        targets = {
            t.id: t
            for t in session.scalars(
                select(EntityRow).where(
                    EntityRow.id.in_([link.target_id for link in links if link.target_id])
                )
            )
        }
        mixins = session.scalars(
            select(EntityMixin.mixin).where(EntityMixin.entity_id == compute_id)
        ).all()
        image = _image_of(session, mixins)
        disks, nics, networks, volumes = [], [], [], []
        interfaces: list[dict[str, object]] = []
        port_maps: dict[str, dict[str, object]] = {}
        for link in sorted(links, key=_link_order):
            target = targets.get(link.target_id or "")
            if target is None:
                continue
            attrs = link.attributes or {}
            if link.kind == infra.STORAGELINK.type_id:
                disks.append(
                    DiskSpec(
                        volume_id=target.id, target_dev=str(attrs["occi.storagelink.deviceid"])
                    )
                )
                volumes.append(volume_spec(target))
            else:
                nics.append(
                    NicSpec(
                        link_id=link.id,
                        network_id=target.id,
                        mac=str(attrs["occi.networkinterface.mac"]),
                    )
                )
                networks.append(network_spec(target))
                interfaces.append(attrs)
                if PORT_MAP in attrs:
                    port_maps[link.id] = attrs
        root = None
        if image is not None:
            root = VolumeSpec(
                id=root_volume_id(compute_id),
                size_bytes=max(image.size_bytes, GIB),
                backing_path=image.source,
            )
        attrs = row.attributes or {}
        spec = ComputeSpec(
            id=compute_id,
            name=str(attrs.get("occi.core.title") or compute_id),
            cores=row.cores,
            memory_mib=row.memory_mib,
            architecture=str(attrs.get("occi.compute.architecture", "x64")),
            root_volume_id=root.id if root else None,
            disks=tuple(disks),
            nics=tuple(nics),
            hostname=attrs.get("occi.compute.hostname"),
        )
        context = context_spec(compute_id, attrs, interfaces)
        return ComputePlan(spec, networks, volumes, root, context, port_maps)


# --- port address translation (ex_portmap) ---------------------------------------------

PORT_MAP = "org.nimbostratus.portmap"


def _port_mapper() -> PortMapper:
    return PortMapper(netns=current().config.portmap_netns or None)


def port_map_table(link_id: str) -> str:
    """The nftables table (``nimbo_<this>``) of one interface's port mappings."""
    if link_id == link_id.lower() and len(link_id) <= 64 and link_id.replace("-", "").isalnum():
        return link_id
    return "l" + hashlib.sha256(link_id.encode()).hexdigest()[:32]


def _map_ports(link_id: str, attrs: Mapping[str, object]) -> None:
    """Forward the interface's public ports on the host (a no-op without ex_portmap)."""
    rules, address = attrs.get(PORT_MAP), attrs.get("occi.networkinterface.address")
    if not rules or not address:
        return
    public = current().config.portmap_public_address or None
    _port_mapper().apply(
        port_map_table(link_id), port_mappings(str(rules), str(address)), public
    )


def _links_of(compute_id: str) -> list[tuple[str, dict[str, object]]]:
    """Every link of the compute, also those marked for deletion with it."""
    with current().store.session() as session:
        rows = session.execute(
            select(EntityRow.id, EntityRow.attributes).where(EntityRow.source == compute_id)
        )
        return [(link_id, dict(attrs or {})) for link_id, attrs in rows]


def _unmap_ports(link_id: str, attrs: Mapping[str, object]) -> None:
    if attrs.get(PORT_MAP):
        _port_mapper().remove(port_map_table(link_id))


def _link_order(link: EntityRow) -> tuple[int, str]:
    """Links in device order: eth0 before eth1 before eth10, vdb before vdc."""
    attrs = link.attributes or {}
    name = str(
        attrs.get("occi.networkinterface.interface") or attrs.get("occi.storagelink.deviceid")
    )
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def _with_config_drive(driver: HostDriver, plan: ComputePlan) -> ComputeSpec:
    """Write the plan's context onto the compute's config drive volume (replacing what was
    there: a start after new links sees them); the spec with the drive attached."""
    drive = driver.upload_volume(
        config_drive_volume_id(plan.spec.id), build_config_drive(plan.context)
    )
    return dataclasses.replace(plan.spec, config_drive=drive.path)


def _image_of(session: Session, mixins: Sequence[str]) -> Image | None:
    scheme = template_scheme(current().config, "os_tpl")
    for type_id in mixins:
        if type_id.startswith(scheme):
            return session.get(Image, type_id.removeprefix(scheme))
    return None


# --- compute ----------------------------------------------------------------------------


def provision_compute(compute_id: str, operation_id: str) -> None:
    """Networks, volumes and root disk on the host, then the domain defined and started."""
    job = _start(compute_id, operation_id, "preparing networks and disks")
    if job is None:
        return
    with _outcome(job):
        driver = _driver(job)
        plan = _plan(compute_id)
        for network in plan.networks:
            driver.ensure_network(network)
        for volume in plan.volumes:
            driver.ensure_volume(volume)
        if plan.root is not None:
            _progress(compute_id, "cloning image")
            driver.ensure_volume(plan.root)
        _progress(compute_id, "defining and starting the domain")
        driver.ensure_compute(_with_config_drive(driver, plan))
        info = driver.start_compute(compute_id)
        for link_id, attrs in plan.port_maps.items():
            _map_ports(link_id, attrs)
        _finish(job, COMPUTE_STATES[info.state], links="active")


def _run_compute_verb(driver: HostDriver, job: Job) -> ComputeInfo:
    compute_id = job.entity.id
    method = str(job.params.get("method") or "")
    if job.verb == "start":
        if driver.compute_info(compute_id).state is PowerState.STOPPED:
            driver.ensure_compute(_with_config_drive(driver, _plan(compute_id)))
        return driver.start_compute(compute_id)
    if job.verb == "stop":
        return driver.stop_compute(compute_id, StopMethod(method or "poweroff"))
    if job.verb == "restart":
        return driver.restart_compute(compute_id, RestartMethod(method or "warm"))
    if job.verb == "suspend":
        return driver.suspend_compute(compute_id)
    if job.verb == "resize":
        driver.ensure_compute(_with_config_drive(driver, _plan(compute_id)))
        return driver.compute_info(compute_id)
    if job.verb == "save":
        return _save(driver, job)
    raise BackendError(f"unknown compute operation {job.verb}")


def image_volume_id(term: str) -> str:
    """Id of the volume holding the image an OCCI ``save`` made (the os_tpl ``term``)."""
    return f"{SAVED_IMAGE_PREFIX}{term}"


def _save(driver: HostDriver, job: Job) -> ComputeInfo:
    """Copy the compute's root disk, whole, into the image's own volume and mark the image
    ready. A full copy (no backing chain): the image outlives the compute and the image the
    compute was made from. A running compute keeps running (the copy is crash-consistent)."""
    term = str(job.params["image"])
    compute_id = job.entity.id
    copy = driver.copy_volume(root_volume_id(compute_id), image_volume_id(term))
    with current().store.session(write=True) as session:
        image = session.get(Image, term)
        if image is not None:
            image.source, image.size_bytes, image.state = copy.path, copy.capacity_bytes, "ready"
    return driver.compute_info(compute_id)


def _discard_saved_image(job: Job) -> None:
    """Undo a failed save: its os_tpl leaves the catalogue and the part copied, if any, is
    deleted (a host that cannot be reached keeps it until its reconciler sweeps the volumes
    no image names, see gateway.reconciler)."""
    term = str(job.params["image"])
    with current().store.session(write=True) as session:
        _forget_saving_image(session, term)
    try:
        _driver(job).delete_volume(image_volume_id(term))
    except BackendError as exc:
        log.warning("partial image %s of a failed save not deleted: %s", term, exc.message)


def _forget_saving_image(session: Session, term: str) -> None:
    """The os_tpl a save announced leaves the catalogue (only while it is still "saving")."""
    session.execute(delete(Image).where(Image.term == term, Image.state == "saving"))
    bump_catalog(session)


@dataclass(frozen=True)
class ConsoleTail:
    """What :func:`read_console` answers: the end of the console, or why it cannot be read."""

    text: str
    error: str | None = None


def read_console(compute_id: str, max_bytes: int) -> ConsoleTail:
    """The last ``max_bytes`` of the compute's serial console, read on its host (the log is a
    file there), for the API (see :meth:`gateway.queue.JobQueue.call`). A compute without a
    domain on the host (not provisioned yet, or gone) has printed nothing: ""."""
    with current().store.session() as session:
        row = session.get(EntityRow, compute_id)
        host = row.host if row is not None else None
    if host is None:
        return ConsoleTail("")
    try:
        return ConsoleTail(current().driver(host).console_log(compute_id, max_bytes))
    except BackendNotFound:
        return ConsoleTail("")
    except BackendError as exc:
        log.warning("console of %s unreadable: %s", compute_id, exc.message)
        return ConsoleTail("", exc.message)


def act_on_compute(compute_id: str, operation_id: str) -> None:
    """start / stop / restart / suspend / save / resize."""
    job = _start(compute_id, operation_id, "{verb} in progress")
    if job is None:
        return
    if job.verb == "save":
        # A failed save leaves the compute as it was (its state, with the reason as message)
        # and takes back the os_tpl it announced.
        outcome = _outcome(job, job.entity.state, undo=lambda: _discard_saved_image(job))
    else:
        outcome = _outcome(job)
    with outcome:
        info = _run_compute_verb(_driver(job), job)
        _finish(job, COMPUTE_STATES[info.state])


def delete_compute(compute_id: str, operation_id: str) -> None:
    """Domain destroyed and undefined, root disk deleted, rows removed."""
    job = _start(compute_id, operation_id)
    if job is None:
        return
    with _outcome(job):
        driver = _driver(job)
        for link_id, attrs in _links_of(compute_id):
            _unmap_ports(link_id, attrs)
        driver.delete_compute(compute_id)
        driver.delete_volume(root_volume_id(compute_id))
        driver.delete_volume(config_drive_volume_id(compute_id))
        _remove_rows(compute_id, job)


def _remove_rows(entity_id: str, job: Job) -> None:
    with current().store.session(write=True) as session:
        link_ids = session.scalars(
            select(EntityRow.id).where(
                (EntityRow.source == entity_id) | (EntityRow.target_id == entity_id)
            )
        ).all()
        ids = [entity_id, *link_ids]
        session.execute(delete(Lease).where(Lease.link_id.in_(ids)))
        session.execute(delete(EntityMixin).where(EntityMixin.entity_id.in_(ids)))
        session.execute(delete(EntityRow).where(EntityRow.id.in_(ids)))
        op = session.get(Operation, job.operation_id)
        if op is not None:
            op.status, op.finished_at = "done", utcnow()


# --- storage ----------------------------------------------------------------------------


def provision_storage(storage_id: str, operation_id: str) -> None:
    job = _start(storage_id, operation_id, "creating volume")
    if job is None:
        return
    with _outcome(job):
        driver = _driver(job)
        driver.ensure_volume(volume_spec(job.entity))
        _fill_cdmi_export(driver, storage_id)
        _finish(job, "online")


def _fill_cdmi_export(driver: HostDriver, storage_id: str) -> None:
    """A storage that exports a CDMI container gets the container's image (see
    :mod:`gateway.services.cdmi_exports`); the blob store must be readable here (all-in-one,
    or blob_dir on a shared file system)."""
    from backends.blobfs import FilesystemBlobStore
    from gateway.services.cdmi_exports import build_image, container_files

    context = current()
    with context.store.session() as session:
        export = session.scalar(select(CdmiExport).where(CdmiExport.storage_id == storage_id))
        container_id = export.container_id if export is not None else None
    if container_id is None:
        return
    files = container_files(context.store, container_id)
    blobs = FilesystemBlobStore(context.config.effective_blob_dir)
    # on the data disk (often /tmp is memory), unlinked at once: a crash leaves nothing
    with tempfile.TemporaryFile(dir=context.config.data_path) as image:
        build_image(files, blobs, image)
        image.seek(0)
        driver.upload_volume(storage_id, image)


def act_on_storage(storage_id: str, operation_id: str) -> None:
    """online / offline / resize."""
    job = _start(storage_id, operation_id)
    if job is None:
        return
    with _outcome(job):
        driver = _driver(job)
        driver.volume_info(storage_id)
        if job.verb == "resize":
            driver.resize_volume(storage_id, volume_spec(job.entity).size_bytes)
            _finish(job, job.entity.state if job.entity.state != "error" else "online")
            return
        _finish(job, "online" if job.verb == "online" else "offline")


def delete_storage(storage_id: str, operation_id: str) -> None:
    job = _start(storage_id, operation_id)
    if job is None:
        return
    with _outcome(job):
        _driver(job).delete_volume(storage_id)
        _remove_rows(storage_id, job)


# --- network ----------------------------------------------------------------------------


def provision_network(network_id: str, operation_id: str) -> None:
    job = _start(network_id, operation_id, "creating bridge")
    if job is None:
        return
    with _outcome(job):
        info = _driver(job).ensure_network(network_spec(job.entity))
        _finish(job, "active" if info.active else "inactive")


def act_on_network(network_id: str, operation_id: str) -> None:
    """up / down."""
    job = _start(network_id, operation_id)
    if job is None:
        return
    with _outcome(job):
        driver = _driver(job)
        driver.ensure_network(network_spec(job.entity))
        info = driver.set_network_active(network_id, job.verb == "up")
        _finish(job, "active" if info.active else "inactive")


def delete_network(network_id: str, operation_id: str) -> None:
    job = _start(network_id, operation_id)
    if job is None:
        return
    with _outcome(job):
        _driver(job).delete_network(network_id)
        _remove_rows(network_id, job)


# --- links ------------------------------------------------------------------------------


def _link_parts(link: EntityRow) -> tuple[EntityRow | None, EntityRow | None]:
    with current().store.session() as session:
        return (
            session.get(EntityRow, link.source or ""),
            session.get(EntityRow, link.target_id or ""),
        )


def attach_link(link_id: str, operation_id: str) -> None:
    """Hot-plug (running compute) or definition change (stopped) of a disk or an interface."""
    job = _start(link_id, operation_id)
    if job is None:
        return
    with _outcome(job):
        compute, target = _link_parts(job.entity)
        if compute is None or target is None:
            raise BackendError("the link's compute or target no longer exists")
        driver = current().driver(compute.host or "")
        attrs = job.entity.attributes or {}
        if job.entity.kind == infra.STORAGELINK.type_id:
            driver.ensure_volume(volume_spec(target))
            driver.attach_disk(
                compute.id,
                DiskSpec(volume_id=target.id, target_dev=str(attrs["occi.storagelink.deviceid"])),
            )
        else:
            driver.ensure_network(network_spec(target))
            driver.attach_nic(
                compute.id,
                NicSpec(
                    link_id=link_id,
                    network_id=target.id,
                    mac=str(attrs["occi.networkinterface.mac"]),
                ),
            )
            _map_ports(link_id, attrs)
        _finish(job, "active")


def detach_link(link_id: str, operation_id: str) -> None:
    job = _start(link_id, operation_id)
    if job is None:
        return
    with _outcome(job):
        compute, _target = _link_parts(job.entity)
        attrs = job.entity.attributes or {}
        if compute is not None and compute.host:
            driver = current().driver(compute.host)
            if job.entity.kind == infra.STORAGELINK.type_id:
                driver.detach_disk(compute.id, str(attrs["occi.storagelink.deviceid"]))
            else:
                _unmap_ports(link_id, attrs)
                driver.detach_nic(compute.id, str(attrs["occi.networkinterface.mac"]))
        _remove_rows(link_id, job)


JOBS: dict[str, Callable[[str, str], None]] = {
    f.__name__: f
    for f in (
        provision_compute,
        act_on_compute,
        delete_compute,
        provision_storage,
        act_on_storage,
        delete_storage,
        provision_network,
        act_on_network,
        delete_network,
        attach_link,
        detach_link,
    )
}
