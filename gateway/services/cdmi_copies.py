"""CDMI copy, move and snapshots. A copy or move of a whole tree is one write transaction: a
copy stages each value as a copy in the blob store (its data extents only, so holes stay
holes), checks the quota, and publishes the values as the transaction's last step; a failure
discards them. A snapshot is such a copy, under the container's ``cdmi_snapshots/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from auth.principal import Principal
from backends.blob import StagedBlob
from cdmi import acl
from cdmi.model import CONTAINER, DATAOBJECT, SNAPSHOTS_DIR, check_metadata
from cdmi.paths import BY_ID, PATH, Target
from gateway.errors import Conflict, Forbidden, InvalidRequest, NotFound
from gateway.services.cdmi_bodies import below_root, copy_written
from gateway.services.cdmi_core import CdmiCore
from gateway.services.cdmi_state import Written, path_under, state_of, utc_now
from gateway.store.models import CdmiObjectRow


class CdmiCopies(CdmiCore):
    """Copy, move and snapshots of the CDMI service."""

    def _source(self, session: Session, principal: Principal, uri: str) -> CdmiObjectRow:
        from cdmi.paths import target as parse_target

        path = below_root(uri, self.root_uri)
        try:
            source_target = parse_target(path)
        except (InvalidRequest, NotFound) as exc:
            raise InvalidRequest(f"copy/move source {uri!r}: {exc.message}") from exc
        if source_target.kind not in (PATH, BY_ID):
            raise InvalidRequest(f"copy/move source {uri!r} is not a container or data object")
        row = self._locked(session, source_target, principal)
        if row is None and source_target.kind == PATH and not source_target.slash:
            row = self._locked(
                session,
                replace(source_target, path=source_target.path + "/", slash=True),
                principal,
            )
        if row is None:
            raise InvalidRequest(f"copy/move source {uri!r} does not exist")
        return row

    def copy(
        self,
        principal: Principal,
        target: Target | None,
        source_uri: str,
        body: Mapping[str, Any],
        *,
        kind: str,
    ) -> Written:
        metadata_in = body.get("metadata")
        if metadata_in is not None:
            metadata_in = check_metadata(metadata_in)
        staged: list[tuple[str, StagedBlob]] = []
        try:
            with self.store.session(write=True) as session:
                source = self._source(session, principal, source_uri)
                if source.kind != kind:
                    raise InvalidRequest(f"copy source {source_uri!r} is not a {kind}")
                source_state = state_of(source)
                if not self._may(source_state, principal, acl.READ_OBJECT | acl.READ_METADATA):
                    raise Forbidden(
                        f"copy source {source_uri!r} is not readable by {principal.name}"
                    )
                if target is None:  # POST cdmi_objectid/ {"copy": …}: an ID-only copy
                    parent = None
                    path = None
                else:
                    existing = self._locked(session, target, principal)
                    if existing is not None:
                        if existing.kind != kind:
                            raise InvalidRequest("copy over an object of another kind")
                        if kind == CONTAINER:
                            raise Conflict(
                                f"{self.uri_of(state_of(existing))} exists; copy a "
                                "container to a new name"
                            )
                        self._require(state_of(existing), principal, acl.WRITE_OBJECT, "write")
                        blob = self.blobs.stage_copy(source.id)
                        staged.append((existing.id, blob))
                        grown = blob.size - existing.size
                        existing.size, existing.encoding = blob.size, source.encoding
                        existing.mimetype = source.mimetype
                        copy_written(source, existing)
                        existing.metadata_ = (
                            metadata_in if metadata_in is not None else dict(source.metadata_ or {})
                        )
                        existing.mcount += 1
                        existing.mtime = utc_now()
                        session.flush()
                        self.quotas.check_cdmi(session, principal, [(existing, grown)])
                        blob.publish(existing.id)
                        return Written(False, state_of(existing), existing.parent_id)
                    path, parent = self._destination(
                        session, principal, target, source, "copied", replacing=False
                    )
                copied = self._copy_tree(
                    session, principal, source, parent, path, staged, seen_only=True
                )
                if metadata_in is not None:
                    copied.metadata_ = metadata_in
                session.flush()
                self._check_copies(session, principal, staged)
                for blob_id, blob in staged:
                    blob.publish(blob_id)
                return Written(True, state_of(copied), copied.parent_id)
        finally:
            for _, blob in staged:
                blob.discard()

    def _destination(
        self,
        session: Session,
        principal: Principal,
        target: Target,
        source: CdmiObjectRow,
        verb: str,
        *,
        replacing: bool,
    ) -> tuple[str, CdmiObjectRow]:
        """Where a copy or move of ``source`` goes: its path and parent (the parent's ADD
        right checked); unless it replaces an object there, the name free and, for a
        container, not inside ``source`` itself."""
        path = self._path_of(target, session, principal)
        self._check_new_path(path, target)
        right = acl.ADD_SUBCONTAINER if source.kind == CONTAINER else acl.ADD_OBJECT
        parent = self._parent(session, path, principal, right)
        if not replacing:
            self._check_free(session, path, target, principal)
            inside = source.path is not None and path.startswith(source.path)
            if source.kind == CONTAINER and inside:
                raise InvalidRequest(f"a container cannot be {verb} into itself")
        return path, parent

    def _check_copies(
        self, session: Session, principal: Principal, staged: list[tuple[str, StagedBlob]]
    ) -> None:
        """The quota check of new copies: each staged value grows its new object's owner."""
        copies = [(session.get(CdmiObjectRow, blob_id), blob.size) for blob_id, blob in staged]
        self.quotas.check_cdmi(session, principal, [(r, n) for r, n in copies if r is not None])

    def _copy_tree(
        self,
        session: Session,
        principal: Principal,
        source: CdmiObjectRow,
        parent: CdmiObjectRow | None,
        path: str | None,
        staged: list[tuple[str, StagedBlob]],
        *,
        skip_snapshots: bool = True,
        seen_only: bool = False,
        as_they_are: bool = False,
    ) -> CdmiObjectRow:
        """A new object (and for containers, a new subtree) with new IDs; values staged.
        ``seen_only``: descendants the principal does not see (and theirs) are left out, as
        absent for them as for a read (a copy). ``as_they_are``: every copy keeps its
        original's owner, group and ACL, so that it is exactly as visible as the original (a
        snapshot: it copies everything, and must give no one more than the tree gave)."""
        copied = self._copy_one(session, principal, source, parent, path, staged, as_they_are)
        if source.kind == CONTAINER and source.path is not None and path is not None:
            descendants = session.scalars(
                select(CdmiObjectRow)
                .where(path_under(source.path), CdmiObjectRow.path != source.path)
                .order_by(func.length(CdmiObjectRow.path))
            ).all()
            made: dict[str, CdmiObjectRow] = {source.id: copied}
            for item in descendants:
                relative = str(item.path)[len(source.path) :]
                if skip_snapshots and (relative.startswith(f"{SNAPSHOTS_DIR}/")):
                    continue
                mother = made.get(str(item.parent_id))
                if mother is None or (seen_only and not self._sees(state_of(item), principal)):
                    continue
                made[item.id] = self._copy_one(
                    session, principal, item, mother, path + relative, staged, as_they_are
                )
        return copied

    def _copy_one(
        self,
        session: Session,
        principal: Principal,
        source: CdmiObjectRow,
        parent: CdmiObjectRow | None,
        path: str | None,
        staged: list[tuple[str, StagedBlob]],
        as_it_is: bool = False,
    ) -> CdmiObjectRow:
        """A copy of ``source`` under ``parent`` (``as_it_is``: with its owner, group and ACL;
        see _copy_tree)."""
        row = self._new_row(principal, parent, path, source.kind)
        row.mimetype, row.encoding, row.size = source.mimetype, source.encoding, source.size
        row.metadata_ = dict(source.metadata_ or {})
        row.extra = dict(source.extra or {})
        if as_it_is:
            row.owner, row.group = source.owner, source.group
        if as_it_is or parent is None or parent.path == "":
            row.acl = list(source.acl or [])
        self._flush_new(session, row)
        if source.kind == DATAOBJECT:
            staged.append((row.id, self.blobs.stage_copy(source.id)))
        return row

    def move(
        self,
        principal: Principal,
        target: Target,
        source_uri: str,
        body: Mapping[str, Any],
        *,
        kind: str,
    ) -> Written:
        """Rename: the object keeps its ID and value; the subtree's paths follow."""
        metadata_in = body.get("metadata")
        if metadata_in is not None:
            metadata_in = check_metadata(metadata_in)
        with self.store.session(write=True) as session:
            source = self._source(session, principal, source_uri)
            if source.kind != kind:
                raise InvalidRequest(f"move source {source_uri!r} is not a {kind}")
            if source.path == "":
                raise InvalidRequest("the root container cannot be moved")
            source_state = state_of(source)
            if not self._may(source_state, principal, acl.DELETE):
                raise Forbidden(f"move source {source_uri!r} may not be moved by {principal.name}")
            existing = self._locked(session, target, principal)
            if existing is not None and existing.id == source.id:
                return Written(False, state_of(existing), existing.parent_id)
            path, parent = self._destination(
                session, principal, target, source, "moved", replacing=existing is not None
            )
            if existing is not None:
                if existing.kind != DATAOBJECT or kind != DATAOBJECT:
                    raise Conflict(f"{self.uri_of(state_of(existing))} exists")
                self._require(state_of(existing), principal, acl.WRITE_OBJECT, "replace")
                replaced = existing.id
                session.delete(existing)
                session.flush()
            else:
                replaced = None
            old = source.path
            source.path, source.parent_id = path, parent.id
            source.name = path.rstrip("/").rsplit("/", 1)[-1]
            if metadata_in is not None:
                source.metadata_ = metadata_in
            source.mtime = utc_now()
            session.flush()
            if kind == CONTAINER and old is not None:
                session.execute(
                    update(CdmiObjectRow)
                    .where(path_under(old), CdmiObjectRow.id != source.id)
                    .values(path=path + func.substr(CdmiObjectRow.path, len(old) + 1))
                    .execution_options(synchronize_session=False)
                )
            state = state_of(source)
        if replaced is not None:
            self.blobs.delete(replaced)
        return Written(True, state, state.parent_id)

    def move_to_id(self, principal: Principal, source_uri: str) -> Written:
        """``POST cdmi_objectid/ {"move": "<path>"}``: the object leaves the tree, keeps its ID."""
        with self.store.session(write=True) as session:
            source = self._source(session, principal, source_uri)
            if source.kind != DATAOBJECT:
                raise InvalidRequest("only data objects can be moved to ID-only access")
            if not self._may(state_of(source), principal, acl.DELETE):
                raise Forbidden(f"move source {source_uri!r} may not be moved by {principal.name}")
            source.path = source.parent_id = source.name = None
            source.mtime = utc_now()
            session.flush()
            return Written(True, state_of(source), None)

    def _snapshot(
        self, session: Session, principal: Principal, row: CdmiObjectRow, name: str
    ) -> None:
        if row.path is None:
            raise InvalidRequest("snapshots are taken of containers in the tree")
        holder_path = f"{row.path}{SNAPSHOTS_DIR}/"
        holder = session.scalars(
            select(CdmiObjectRow).where(CdmiObjectRow.path == holder_path)
        ).first()
        if holder is None:
            holder = self._new_row(principal, row, holder_path, CONTAINER)
            holder.owner, holder.acl, holder.group = row.owner, list(row.acl or []), row.group
            self._flush_new(session, holder)
        snap_path = f"{holder_path}{name}/"
        old = session.scalars(select(CdmiObjectRow).where(CdmiObjectRow.path == snap_path)).first()
        stale: list[str] = []
        if old is not None:
            stale = list(
                session.scalars(
                    select(CdmiObjectRow.id).where(
                        path_under(snap_path), CdmiObjectRow.kind == DATAOBJECT
                    )
                )
            )
            session.execute(delete(CdmiObjectRow).where(path_under(snap_path)))
            session.flush()
        staged: list[tuple[str, StagedBlob]] = []
        try:
            self._copy_tree(session, principal, row, holder, snap_path, staged, as_they_are=True)
            self._check_copies(session, principal, staged)
            for blob_id, blob in staged:
                blob.publish(blob_id)
        finally:
            for _, blob in staged:
                blob.discard()
        for blob_id in stale:
            self.blobs.delete(blob_id)


