"""CDMI containers exported as OCCI storage (CDMI 1.1.1 §13.6, ``OCCI/iSCSI``).

An export is an OCCI storage entity owned by the container's owner. The worker that
provisions it writes an image of the container into the volume: an ISO 9660 file system with
Rock Ridge names holding the container's data objects (sub-containers as directories,
snapshots left out), so a guest that attaches the volume mounts and reads the same objects
CDMI serves. OCCI sees the volume; CDMI sees the container; one ID names both: a storagelink
whose ``occi.storagelink.deviceid`` is the container's object ID attaches the export (see
:meth:`gateway.services.plans.Planner`), and the linking compute joins the export's
``permissions``.

The image is a point-in-time copy taken when the export is made (or re-made by updating the
export): guests read it, they do not write back.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlparse

import pycdlib
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auth.principal import Principal
from backends.blob import BlobStore
from cdmi import acl, objectid
from cdmi.model import CONTAINER, DATAOBJECT, SNAPSHOTS_DIR, ObjectState
from gateway.errors import Conflict, Forbidden, InvalidRequest, NotFound
from gateway.services.cdmi_state import granted_rights, path_under, state_of
from gateway.services.tenancy import Tenancy, in_scope
from gateway.store.db import Store
from gateway.store.models import CdmiExport, CdmiObjectRow, EntityRow
from occi import infrastructure as infra
from occi.core import EntityRequest

PROTOCOL = "OCCI/iSCSI"
GIB = 1024**3
# An export's image is built in a temporary file on the worker's data disk and then streamed
# into the volume: the bound keeps one export from filling that disk twice over.
MAX_IMAGE_BYTES = 4 * GIB
VOLUME_LABEL = "CDMI_EXPORT"


def permissions_of(value: Any) -> list[str]:
    """The export's ``permissions``: OCCI compute URLs (a lone string is wrapped, §19.9)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidRequest(f"{PROTOCOL} permissions must be a list of OCCI compute URLs")
    for url in value:
        if "/compute/" not in url:
            raise InvalidRequest(f"{PROTOCOL} permission {url!r} is not an OCCI compute URL")
    return list(dict.fromkeys(value))


class OcciExports:
    """The ExportDriver of :class:`gateway.services.cdmi.CdmiService`."""

    def __init__(self, store: Store, occi: Any) -> None:
        self.store = store
        self.occi = occi  # gateway.services.entities.OcciService

    def apply(
        self, principal: Principal, state: ObjectState, wanted: Mapping[str, Any]
    ) -> dict[str, Any]:
        # CdmiService refused every other protocol before anything was written
        spec = wanted[PROTOCOL]
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise InvalidRequest(f"{PROTOCOL} export settings must be a JSON object")
        permissions = permissions_of(spec.get("permissions"))
        with self.store.session() as session:
            existing = session.get(CdmiExport, state.id)
            storage_id = existing.storage_id if existing else None
        if storage_id is None:
            storage_id = self._create_storage(state)
        return {
            PROTOCOL: {
                "identifier": state.id,
                "permissions": permissions,
                "storage": f"/storage/{storage_id}",
            }
        }

    def _create_storage(self, state: ObjectState) -> str:
        size = self._image_size(state)
        owner = Principal(state.owner)
        request = EntityRequest(
            kind=infra.STORAGE.type_id,
            attributes={
                "occi.core.title": f"CDMI export of {state.path or state.id}",
                "occi.storage.size": max(0.01, math.ceil(size / GIB * 100) / 100),
            },
        )
        created = self.occi.create(owner, infra.STORAGE, [request])
        storage_id = str(created[0].id)
        with self.store.session(write=True) as session:
            session.add(CdmiExport(container_id=state.id, storage_id=storage_id))
        return storage_id

    def _image_size(self, state: ObjectState) -> int:
        with self.store.read() as reader:
            total = reader.execute(
                select(func.coalesce(func.sum(CdmiObjectRow.size), 0), func.count()).where(
                    path_under(state.path or "")
                )
            ).one()
        size = int(total[0]) + 2048 * (int(total[1]) + 1) + (1 << 20)
        if size > MAX_IMAGE_BYTES:
            raise Conflict(
                f"the container holds {total[0]} bytes; exports are limited to "
                f"{MAX_IMAGE_BYTES // GIB} GiB"
            )
        return size

    def remove(self, state: ObjectState) -> None:
        with self.store.session() as session:
            existing = session.get(CdmiExport, state.id)
            storage_id = existing.storage_id if existing else None
            alive = storage_id is not None and session.get(EntityRow, storage_id) is not None
        if storage_id is not None and alive:
            admin = Principal(state.owner, is_admin=True)
            try:
                self.occi.delete(admin, infra.STORAGE, storage_id)
            except Conflict as exc:
                raise Conflict(
                    f"the export of {state.path or state.id} is attached to a compute; "
                    f"detach it first ({exc.message})"
                ) from exc
        with self.store.session(write=True) as session:
            row = session.get(CdmiExport, state.id)
            if row is not None:
                session.delete(row)


# --- storagelinks to exports (in the OCCI create transaction) ----------------------------


@dataclass
class LinkedExport:
    """The export a storagelink names, found inside the link's write transaction."""

    container: CdmiObjectRow
    storage: EntityRow

    def permit(self, compute_location: str) -> None:
        """The linking compute joins the export's ``permissions`` (§13.1 step 3)."""
        export = dict((self.container.exports or {}).get(PROTOCOL) or {})
        export["permissions"] = list(
            dict.fromkeys([*export.get("permissions", []), compute_location])
        )
        self.container.exports = {**(self.container.exports or {}), PROTOCOL: export}


def cdmi_export(
    session: Session, principal: Principal, config: Any, attrs: Mapping[str, Any], target: str
) -> LinkedExport | None:
    """The CDMI export a storagelink means, or None for an ordinary storagelink.

    A link means an export when its ``occi.storagelink.deviceid`` is a CDMI object ID or its
    target is a URL under the CDMI root (§13.1 step 2). The container must exist (404), be
    exported to OCCI (409) and be readable by the principal under its ACL (403). One the
    principal holds no right on, or that is out of its token's scope, does not exist for them
    (404, as for a missing one)."""
    device = attrs.get("occi.storagelink.deviceid")
    container_id = objectid.parse(str(device)) if device else None
    root = str(config.cdmi_root)
    path = urlparse(target).path if "://" in target else target
    if container_id is None and not path.startswith(root):
        return None
    query = select(CdmiObjectRow)
    if container_id is not None:
        query = query.where(CdmiObjectRow.id == container_id)
    else:
        below = path[len(root) :]
        query = query.where(CdmiObjectRow.path == (below if below.endswith("/") else below + "/"))
    container = session.scalars(query).first()
    held = 0  # the principal's rights on the container (none: it does not exist for them)
    if (
        container is not None
        and container.kind == CONTAINER
        and in_scope(principal, container.group)
    ):
        held = granted_rights(Tenancy.from_config(config), state_of(container), principal)
    if container is None or not held:
        raise NotFound(f"no CDMI container {device if container_id else target}")
    export = session.get(CdmiExport, container.id)
    storage = session.get(EntityRow, export.storage_id) if export is not None else None
    if storage is None or storage.deleting:
        raise Conflict(
            f"CDMI container {container.id} is not exported to OCCI: add "
            f'"exports": {{"{PROTOCOL}": {{}}}} to it first'
        )
    if held & acl.READ_OBJECT != acl.READ_OBJECT:
        raise Forbidden(f"{principal.name} may not read CDMI container {container.id}")
    return LinkedExport(container, storage)


# --- the image, built by the worker -------------------------------------------------------


def container_files(store: Store, container_id: str) -> list[tuple[str, str, str, int]]:
    """``(relative path, kind, object id, size)`` of the container's subtree, parents first,
    without snapshots."""
    with store.read() as reader:
        base = reader.execute(
            select(CdmiObjectRow.path).where(CdmiObjectRow.id == container_id)
        ).scalar()
        if base is None:
            return []
        rows = reader.execute(
            select(CdmiObjectRow.path, CdmiObjectRow.kind, CdmiObjectRow.id, CdmiObjectRow.size)
            .where(
                path_under(base),
                CdmiObjectRow.path != base,
            )
            .order_by(func.length(CdmiObjectRow.path), CdmiObjectRow.path)
        ).all()
    out = []
    for path, kind, object_id, size in rows:
        relative = str(path)[len(base) :]
        if relative.startswith(f"{SNAPSHOTS_DIR}/") or f"/{SNAPSHOTS_DIR}/" in relative:
            continue
        out.append((relative.rstrip("/"), kind, object_id, int(size)))
    return out


def build_image(
    files: Sequence[tuple[str, str, str, int]], blobs: BlobStore, out: BinaryIO
) -> None:
    """An ISO 9660 image (Rock Ridge names) of the files written to ``out``; ISO names are
    generated, the real names are the Rock Ridge ones, which Linux shows. Values the blob store
    keeps as files (the filesystem store: the only one the worker uses) are copied from those
    files to ``out`` in pieces, none read into memory whole; a store without files would have
    each value read into memory (:func:`_open`)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=VOLUME_LABEL, rock_ridge="1.09")
    iso_dirs: dict[str, str] = {"": ""}
    handles = []
    try:
        for number, (relative, kind, object_id, size) in enumerate(files):
            parent, _, name = relative.rpartition("/")
            parent_iso = iso_dirs.get(parent)
            if parent_iso is None:
                continue
            if kind == CONTAINER:
                iso_path = f"{parent_iso}/D{number:07d}"
                iso.add_directory(iso_path, rr_name=name)
                iso_dirs[relative] = iso_path
            elif kind == DATAOBJECT:
                handle = _open(blobs, object_id)
                handles.append(handle)
                iso.add_fp(handle, size, f"{parent_iso}/F{number:07d}.;1", rr_name=name)
        iso.write_fp(out)
        iso.close()
    finally:
        for handle in handles:
            handle.close()


def _open(blobs: BlobStore, object_id: str) -> BinaryIO:
    path = blobs.path(object_id) if blobs.exists(object_id) else None
    if path is not None:
        return open(path, "rb")
    if not blobs.exists(object_id):
        return io.BytesIO(b"")
    return io.BytesIO(b"".join(blobs.read(object_id)))
