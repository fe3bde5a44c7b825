"""What CDMI requests mean: the service behind the CDMI blueprint.

Metadata, ACLs and the tree live in the state store (``cdmi_objects``); values live in the
blob store, keyed by object ID. A write stages its value first (outside any lock: an upload may
take minutes), then checks and changes the rows in one write transaction and publishes the
staged value as the last step of that transaction. A failed check discards the staged value:
nothing is lost or half-written, and no reader ever sees a partial value. A plain-HTTP upload
that announces its length is checked against the byte quota before its body is read as well
(:meth:`CdmiService._check_upload`); the check in the transaction stays the binding one.

Access counting (``cdmi_atime``/``cdmi_acount``) is batched per process (see
:class:`~gateway.services.cdmi_state.AccessLog`) so that reads do not each take the store's
write lock.

:class:`CdmiService` is one class in several modules: this one holds the writes (creates and
updates by CDMI body and by plain HTTP, containers, deletes), on top of
:mod:`~gateway.services.cdmi_reads` and :mod:`~gateway.services.cdmi_copies` (copy, move,
snapshots), which share :mod:`~gateway.services.cdmi_core` (set-up, lookups, access checks,
write primitives). What they hand around is in :mod:`~gateway.services.cdmi_state`; body
checks are in :mod:`~gateway.services.cdmi_bodies`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, select

from auth.principal import Principal
from backends.blob import StagedBlob
from cdmi import acl, objectid
from cdmi.model import (
    CONTAINER,
    DATAOBJECT,
    GROUP_METADATA,
    SNAPSHOTS_DIR,
    ObjectState,
    check_name,
    merge_metadata,
    parent_path,
    unknown_fields,
)
from cdmi.paths import BY_ID, ID_ROOT, PATH, Target
from cdmi.request import Selection
from gateway.errors import BackendError, Conflict, Forbidden, InvalidRequest, NotFound
from gateway.services.cdmi_bodies import (
    ByteCount,
    Utf8Check,
    check_capabilities_uri,
    check_domain,
    check_fields,
    decode_base64,
    group_of,
    metadata_of,
    mimetype_of,
    operation_of,
    track_written,
)
from gateway.services.cdmi_copies import CdmiCopies
from gateway.services.cdmi_reads import CdmiReads
from gateway.services.cdmi_state import NO_GROUP, T, Written, path_under, state_of, utc_now
from gateway.store.models import CdmiObjectRow


class CdmiService(CdmiReads, CdmiCopies):
    """What CDMI requests mean, for the blueprint (:mod:`cdmi.http.views`)."""

    def put_object(
        self,
        principal: Principal,
        target: Target,
        body: Mapping[str, Any],
        selection: Selection,
        *,
        partial: bool = False,
    ) -> Written:
        """CDMI create or update of a data object (``application/cdmi-object`` body)."""
        check_fields(body)
        if target.kind == ID_ROOT:
            raise InvalidRequest(
                "PUT needs an object ID or a path; POST to cdmi_objectid/ creates an object by ID"
            )
        operation = operation_of(body)
        if operation == "move":
            return self.move(principal, target, str(body["move"]), body, kind=DATAOBJECT)
        if operation == "copy":
            return self.copy(principal, target, str(body["copy"]), body, kind=DATAOBJECT)
        staged = self._stage_value(body, selection) if "value" in body else None
        blob = staged[0] if staged else None
        with blob if blob is not None else contextlib.nullcontext():  # discarded unless published
            fresh = self._publish_ahead(blob, target)
            try:
                return self._write_object(
                    principal, target, body, selection, staged, partial, fresh
                )
            except BaseException:
                if fresh is not None:
                    with contextlib.suppress(BackendError):  # the refusal matters more
                        self.blobs.delete(fresh)
                raise

    def _publish_ahead(self, blob: StagedBlob | None, target: Target) -> str | None:
        """For what looks like a new object, publish its value under a new object ID before
        the write transaction, and return that ID (else None).

        Writers queue for the store's one write lock; publishing (a rename and an fsync of a
        directory) inside it made every create wait for every other's disk. A value under an
        ID no row names yet is invisible (blobs are reached only through rows), so no partial
        object can be seen; the caller deletes it if the transaction does not commit, and a
        crash in between leaves only a file no row names (removed by
        :mod:`gateway.services.cdmi_sweep`)."""
        if blob is None or target.kind != PATH:
            return None
        with self.store.read() as reader:
            if self._row(reader, target, None) is not None:
                return None
        fresh = objectid.new(self.enterprise)
        blob.publish(fresh)
        return fresh

    def _stage_value(
        self, body: Mapping[str, Any], selection: Selection
    ) -> tuple[StagedBlob | None, bytes, str | None]:
        """Decode the body's value. Returns (None, bytes, encoding): the staging happens in
        the transaction for ranges, before it otherwise (see _write_object)."""
        value = body["value"]
        if not isinstance(value, str):
            raise InvalidRequest("value must be a JSON string")
        encoding = body.get("valuetransferencoding")
        if encoding is not None and encoding not in ("utf-8", "base64"):
            raise InvalidRequest("valuetransferencoding must be 'utf-8' or 'base64'")
        if selection.value_range is not None:
            if encoding not in (None, "base64"):
                raise InvalidRequest("a value range write takes a base64 value")
            data = decode_base64(value)
            first, last = selection.value_range
            if len(data) != last - first + 1:
                raise InvalidRequest(
                    f"value range {first}-{last} is {last - first + 1} bytes; the value "
                    f"decodes to {len(data)}"
                )
            return None, data, "base64"
        data = decode_base64(value) if encoding == "base64" else value.encode("utf-8")
        return self.blobs.stage([data]), b"", encoding

    def _write_object(
        self,
        principal: Principal,
        target: Target,
        body: Mapping[str, Any],
        selection: Selection,
        staged: tuple[StagedBlob | None, bytes, str | None] | None,
        partial: bool,
        published: str | None = None,
    ) -> Written:
        """``published``: the ID the value was published under ahead (see _publish_ahead); the
        object must then be new, else 409 (it was created by another request meanwhile)."""
        metadata_in, explicit_acl = metadata_of(body)
        asked_group = group_of(body)
        mimetype = mimetype_of(body)
        check_domain(body, self.root_uri)
        check_capabilities_uri(body, self.root_uri, DATAOBJECT)
        extra = unknown_fields(body)
        with self.store.session(write=True) as session:
            row, family = self._locked_or_family(session, target, principal)
            created = row is None
            if row is None:
                if target.kind == BY_ID and not target.rest:
                    raise NotFound(f"no object with ID {target.object_id}")
                path = self._path_of(target, session, principal)
                self._check_slash(session, target, principal, family)
                self._check_new_path(path, target)
                # written below in one INSERT with its value's size (no flush, no UPDATE)
                row = self._admit(
                    session,
                    principal,
                    target,
                    path,
                    DATAOBJECT,
                    explicit_acl,
                    asked_group,
                    object_id=published,
                    family=family,
                )
            else:
                if published is not None:
                    raise Conflict(
                        f"{self.uri_of(state_of(row))} was created by someone else just now"
                    )
                state = self._of_kind(state_of(row), DATAOBJECT)
                if target.in_snapshot:
                    raise InvalidRequest("snapshots are read-only")
                if staged is not None:
                    self._require(state, principal, acl.WRITE_OBJECT, "write")
                if metadata_in is not None:
                    self._require(state, principal, acl.WRITE_METADATA, "change the metadata of")
                if explicit_acl is not None:
                    self._require(state, principal, acl.WRITE_ACL, "change the ACL of")
                    row.acl = acl.to_stored(acl.parse(explicit_acl))
                self._set_group(principal, row, asked_group, created=False)
                row.mcount += 1
            moment = utc_now()
            if metadata_in is not None:
                row.metadata_ = (
                    merge_metadata(row.metadata_ or {}, metadata_in, selection)
                    if not created
                    else metadata_in
                )
            if mimetype is not None:
                row.mimetype = mimetype
            if extra:
                row.extra = {**(row.extra or {}), **extra}
            if "valuetransferencoding" in body and staged is None:
                self._set_encoding(row, str(body["valuetransferencoding"]))
            row.completion = "Processing" if partial else "Complete"
            if not created:
                row.mtime = moment
            publish: StagedBlob | None = None
            size_before = row.size
            if staged is not None:
                blob, data, encoding = staged
                if blob is None:  # a range write: patch a copy of the current value
                    first = selection.value_range[0] if selection.value_range else 0
                    blob = self.blobs.stage_range(row.id, first, [data])
                    row.encoding = "base64"
                    track_written(row, size_before, first, len(data))
                else:
                    row.encoding = encoding or (row.encoding if not created else "utf-8")
                    track_written(row, size_before, None, blob.size)
                publish = blob
                row.size = blob.size
            if created:
                self._insert_new(session, row)
            else:
                session.flush()
            if publish is not None:
                try:
                    self.quotas.check_cdmi(session, principal, [(row, row.size - size_before)])
                    if published is None:
                        publish.publish(row.id)
                finally:
                    publish.discard()
            elif created:
                self.blobs.stage([]).publish(row.id)
            return Written(created, state_of(row), row.parent_id)

    def _set_encoding(self, row: CdmiObjectRow, encoding: str) -> None:
        if encoding not in ("utf-8", "base64"):
            raise InvalidRequest("valuetransferencoding must be 'utf-8' or 'base64'")
        if encoding == "utf-8" and row.encoding != "utf-8" and row.size:
            check = Utf8Check()
            for _ in check.wrap(self.blobs.read(row.id)):
                if not check.valid:
                    break
            if not check.valid:
                raise InvalidRequest("the value is not valid UTF-8; it stays base64")
        row.encoding = encoding

    def post_object(self, principal: Principal, target: Target, body: Mapping[str, Any]) -> Written:
        """CDMI POST: a server-named data object in a container, or an ID-only object."""
        check_fields(body)
        operation = operation_of(body)
        if target.kind == ID_ROOT:
            if operation == "move":
                return self.move_to_id(principal, str(body["move"]))
            if operation == "copy":
                return self.copy(principal, None, str(body["copy"]), body, kind=DATAOBJECT)
            metadata, explicit_acl = metadata_of(body)
            asked = group_of(body)
            group = self.tenancy.new_group(
                principal, None if asked is NO_GROUP else asked, what=GROUP_METADATA
            )
            mimetype = mimetype_of(body)
            staged = self._stage_value(body, Selection()) if "value" in body else None
            blob = staged[0] if staged and staged[0] else self.blobs.stage([])
            with blob:
                return self._create_id_only(
                    principal,
                    blob,
                    (staged[2] if staged else None) or "utf-8",
                    mimetype,
                    metadata or {},
                    explicit_acl,
                    group,
                )
        container = self._container_for_post(principal, target)
        name = objectid.new(self.enterprise)
        child = Target(PATH, container + name)
        return self.put_object(principal, child, body, Selection())

    def _container_for_post(self, principal: Principal, target: Target) -> str:
        if not target.slash:
            raise InvalidRequest("POST creates a child of a container: end the URL with '/'")
        with self.store.read() as reader:
            row = self._row(reader, target, principal)
            if row is None:
                raise NotFound(f"nothing at {self.root_uri}{self._shown(target)}")
            if row["kind"] != CONTAINER or row["path"] is None:
                raise InvalidRequest("POST creates children of containers only")
            return str(row["path"])

    def _create_id_only(
        self,
        principal: Principal,
        blob: StagedBlob,
        encoding: str,
        mimetype: str | None,
        metadata: dict[str, Any],
        explicit_acl: Any,
        group: str | None,
    ) -> Written:
        """A data object outside the tree, reachable by its ID only, holding ``blob``, in
        ``group``."""
        with self.store.session(write=True) as session:
            row = self._new_row(principal, None, None, DATAOBJECT, explicit_acl)
            row.group = group
            row.metadata_ = metadata
            if mimetype:
                row.mimetype = mimetype
            row.encoding = encoding
            row.size = blob.size
            self._flush_new(session, row)
            self.quotas.check_cdmi(session, principal, [(row, row.size)])
            blob.publish(row.id)
            return Written(True, state_of(row), None)

    def put_plain(
        self,
        principal: Principal,
        target: Target,
        chunks: Iterable[bytes],
        mimetype: str | None,
        charset: str | None,
        content_range: tuple[int, int] | None,
        *,
        partial: bool = False,
        declared: int | None = None,
    ) -> Written:
        """Plain HTTP PUT of a data object's value (create or replace, or a byte range);
        ``declared``: the body's length when the client gave it (Content-Length)."""
        if target.kind == ID_ROOT:
            raise InvalidRequest("PUT needs an object ID or a path")
        # Refuse before reading a possibly huge body.
        with self.store.read() as reader:
            existing = self._row(reader, target, principal)
            if existing is None:
                self._check_slash(reader, target, principal)
                path = self._path_of(target, reader, principal)
                self._check_new_path(path, target)
                holder = parent_path(path)
                parent = self._seen(self._by_path(reader, holder), principal)
                if parent is None or parent["kind"] != CONTAINER:
                    raise NotFound(f"the parent container {self.root_uri}{holder} does not exist")
                self._require(state_of(parent), principal, acl.ADD_OBJECT, "create data objects in")
                self._check_free(reader, path, target, principal)
                owner = principal.name
                group = self._new_group(principal, parent["path"], parent["group"])
                size_before = 0
            else:
                state = self._of_kind(state_of(existing), DATAOBJECT)
                self._require(state, principal, acl.WRITE_OBJECT, "write")
                owner, group, size_before = existing["owner"], existing["group"], existing["size"]
        if declared is not None:
            # the size after the write: a whole value's, or a range's end past the current one
            first = content_range[0] if content_range is not None else None
            after = declared if first is None else max(size_before, first + declared)
            self._check_upload(principal, owner, group, after - size_before)
        if content_range is None:
            staged, encoding = self._stage_upload(chunks, charset)
            with staged:
                return self._commit_plain(
                    principal, target, staged, mimetype, encoding, None, partial
                )
        # A range write patches the current value under the row lock (and makes it base64).
        data_chunks = list(chunks) if content_range[1] - content_range[0] <= 1 << 24 else chunks
        return self._commit_plain(
            principal, target, None, mimetype, "base64", (content_range[0], data_chunks), partial
        )

    def post_plain(
        self,
        principal: Principal,
        target: Target,
        chunks: Iterable[bytes],
        mimetype: str | None,
        charset: str | None,
        *,
        declared: int | None = None,
    ) -> Written:
        """Plain HTTP POST: a server-named data object in a container, or (to
        ``cdmi_objectid/``) an object reachable by ID only; ``declared`` as for put_plain."""
        if target.kind != ID_ROOT:
            container = self._container_for_post(principal, target)
            child = Target(PATH, container + objectid.new(self.enterprise))
            return self.put_plain(
                principal, child, chunks, mimetype, charset, None, declared=declared
            )
        group = self.tenancy.default_for(principal)
        if declared is not None:
            self._check_upload(principal, principal.name, group, declared)
        staged, encoding = self._stage_upload(chunks, charset)
        with staged:
            return self._create_id_only(
                principal,
                staged,
                encoding,
                mimetype or "application/octet-stream",
                {},
                None,
                group,
            )

    def _stage_upload(self, chunks: Iterable[bytes], charset: str | None) -> tuple[StagedBlob, str]:
        """A plain-HTTP body staged as it streams in, and its transfer encoding: utf-8 when
        the client said so and the bytes really are UTF-8, base64 otherwise."""
        if charset != "utf-8":
            return self.blobs.stage(chunks), "base64"
        check = Utf8Check()
        staged = self.blobs.stage(check.wrap(chunks))
        return staged, "utf-8" if check.valid else "base64"

    def _commit_plain(
        self,
        principal: Principal,
        target: Target,
        staged: StagedBlob | None,
        mimetype: str | None,
        encoding: str,
        patch: tuple[int, Iterable[bytes]] | None,
        partial: bool,
    ) -> Written:
        with self.store.session(write=True) as session:
            row, family = self._locked_or_family(session, target, principal)
            created = row is None
            if row is None:
                if target.kind == BY_ID and not target.rest:
                    raise NotFound(f"no object with ID {target.object_id}")
                path = self._path_of(target, session, principal)
                # written below in one INSERT with its value's size (see _write_object)
                row = self._admit(session, principal, target, path, DATAOBJECT, family=family)
            else:
                state = self._of_kind(state_of(row), DATAOBJECT)
                self._require(state, principal, acl.WRITE_OBJECT, "write")
                row.mcount += 1
                row.mtime = utc_now()
            size_before = row.size
            if patch is not None:
                counted = ByteCount()
                staged = self.blobs.stage_range(row.id, patch[0], counted.wrap(patch[1]))
                row.encoding = "base64"
                track_written(row, size_before, patch[0], counted.total)
            else:
                row.encoding = encoding
                track_written(row, size_before, None, staged.size if staged else 0)
            assert staged is not None
            with staged:
                if mimetype is not None:
                    row.mimetype = mimetype
                elif created:
                    row.mimetype = "application/octet-stream"
                row.size = staged.size
                row.completion = "Processing" if partial else "Complete"
                if created:
                    self._insert_new(session, row)
                else:
                    session.flush()
                self.quotas.check_cdmi(session, principal, [(row, row.size - size_before)])
                staged.publish(row.id)
            return Written(created, state_of(row), row.parent_id)

    # containers ----------------------------------------------------------------------------

    def put_container(
        self,
        principal: Principal,
        target: Target,
        body: Mapping[str, Any],
        selection: Selection,
    ) -> Written:
        """CDMI (or plain, with an empty body) create or update of a container."""
        check_fields(body)
        if target.kind not in (PATH, BY_ID) or not target.slash:
            raise InvalidRequest("a container URL ends with '/'")
        operation = operation_of(body)
        if operation == "value":
            raise InvalidRequest("containers have no value")
        if operation == "move":
            return self.move(principal, target, str(body["move"]), body, kind=CONTAINER)
        if operation == "copy":
            return self.copy(principal, target, str(body["copy"]), body, kind=CONTAINER)
        metadata_in, explicit_acl = metadata_of(body)
        asked_group = group_of(body)
        exports = body.get("exports")
        if exports is not None and not isinstance(exports, dict):
            raise InvalidRequest("exports must be a JSON object keyed by protocol")
        for protocol in exports or {}:
            if protocol != "OCCI/iSCSI":
                raise InvalidRequest(
                    f"export protocol {protocol!r} is not offered here (only OCCI/iSCSI)"
                )
        snapshot = body.get("snapshot")
        if snapshot is not None:
            if not isinstance(snapshot, str):
                raise InvalidRequest("snapshot must be a name")
            check_name(snapshot)
        check_domain(body, self.root_uri)
        check_capabilities_uri(body, self.root_uri, CONTAINER)
        extra = unknown_fields(body)
        with self.store.session(write=True) as session:
            row, family = self._locked_or_family(session, target, principal)
            created = row is None
            if row is None:
                if snapshot is not None:
                    raise NotFound("a snapshot is taken of an existing container")
                if target.kind == BY_ID and not target.rest:
                    raise NotFound(f"no object with ID {target.object_id}")
                path = self._path_of(target, session, principal)
                self._check_new_path(path, target)
                if family is None:
                    family = self._family(session, path)
                existing_object = self._seen(family[path.rstrip("/")], principal)
                if existing_object is not None:
                    raise Conflict(f"{self.root_uri}{path.rstrip('/')} is a data object")
                row = self._admit(
                    session,
                    principal,
                    target,
                    path,
                    CONTAINER,
                    explicit_acl,
                    asked_group,
                    family=family,
                )
                self._flush_new(session, row)
                if metadata_in is not None:
                    row.metadata_ = metadata_in
            else:
                state = self._of_kind(state_of(row), CONTAINER)
                if target.in_snapshot:
                    raise InvalidRequest("snapshots are read-only")
                if metadata_in is not None:
                    self._require(state, principal, acl.WRITE_METADATA, "change the metadata of")
                    row.metadata_ = merge_metadata(row.metadata_ or {}, metadata_in, selection)
                    row.mcount += 1
                    row.mtime = utc_now()
                if explicit_acl is not None:
                    self._require(state, principal, acl.WRITE_ACL, "change the ACL of")
                    row.acl = acl.to_stored(acl.parse(explicit_acl))
                self._set_group(principal, row, asked_group, created=False)
                if exports is not None or snapshot is not None:
                    self._require(state, principal, acl.WRITE_METADATA, "change")
            if extra:
                row.extra = {**(row.extra or {}), **extra}
            if snapshot is not None:
                self._snapshot(session, principal, row, snapshot)
            session.flush()
            written = Written(created, state_of(row), row.parent_id)
        if exports is None:
            return written
        # Exports make OCCI entities (their own transactions), so they follow the commit.
        try:
            made = self._exports(principal, written.state, exports)
        except Exception:
            if created:
                self.delete(principal, replace(target, slash=True))
            raise
        with self.store.session(write=True) as session:
            stored = session.get(CdmiObjectRow, written.state.id)
            if stored is not None:
                stored.exports = made
                written.state = state_of(stored)
        return written

    def _exports(
        self, principal: Principal, state: ObjectState, wanted: Mapping[str, Any]
    ) -> dict[str, Any]:
        if not wanted:
            if state.exports and self.exports is not None:
                self.exports.remove(state)
            return {}
        if self.exports is None:
            raise InvalidRequest("exports are not configured on this server")
        return self.exports.apply(principal, state, wanted)

    # delete --------------------------------------------------------------------------------

    def delete(self, principal: Principal, target: Target) -> None:
        if target.kind not in (PATH, BY_ID):
            raise InvalidRequest("server-made objects cannot be deleted")
        blobs: list[str] = []
        self._unexport(principal, target)
        missing = NotFound(f"nothing at {self.root_uri}{self._shown(target)}")
        with self.store.session(write=True) as session:
            # Not limited to what the principal sees: a container's DELETE_OBJECT right lets
            # its owner delete children they cannot see (checked below).
            row = self._locked(session, target, None)
            if row is None:
                self._check_slash(session, target, principal)
                raise missing
            state = state_of(row)
            seen = self._sees(state, principal)
            if row.path == "":
                raise InvalidRequest("the root container cannot be deleted")
            if row.kind == CONTAINER and not target.slash and seen:
                self._check_slash(session, target, principal)
            if target.in_snapshot and not (row.path or "").endswith(
                f"/{SNAPSHOTS_DIR}/{row.name}/"
            ):
                raise InvalidRequest("snapshots are read-only; delete a whole snapshot")
            allowed = self._may(state, principal, acl.DELETE)
            if not allowed and row.parent_id is not None and self._in_scope(state, principal):
                parent = session.get(CdmiObjectRow, row.parent_id)
                if parent is not None:
                    mask = acl.DELETE_SUBCONTAINER if row.kind == CONTAINER else acl.DELETE_OBJECT
                    allowed = self._may(state_of(parent), principal, mask)
            if not allowed and not seen:
                raise missing
            if not allowed:
                raise Forbidden(f"{principal.name} may not delete {self._describe(state)}")
            if row.kind == CONTAINER and row.path is not None:
                subtree = session.execute(
                    select(T.id, T.kind).where(path_under(row.path), T.path != row.path)
                ).all()
                blobs = [i for i, kind in subtree if kind == DATAOBJECT]
                session.execute(
                    delete(CdmiObjectRow).where(path_under(row.path), T.path != row.path)
                )
            else:
                blobs = [row.id]
            session.delete(row)
        for blob_id in blobs:
            self.blobs.delete(blob_id)

    def _unexport(self, principal: Principal, target: Target) -> None:
        """Before a container goes, its exports (and theirs below it) go: a 409 from OCCI
        (still attached) leaves everything in place."""
        if self.exports is None:
            return
        with self.store.read() as reader:
            row = self._row(reader, target, principal)
            if row is None or row["kind"] != CONTAINER or row["path"] is None:
                return
            state = state_of(row)
            if not (self._may(state, principal, acl.DELETE) or principal.is_admin):
                return  # the delete itself refuses
            exported = [
                state_of(r)
                for r in reader.execute(
                    select(CdmiObjectRow.__table__).where(
                        path_under(str(row["path"])), T.kind == CONTAINER
                    )
                ).mappings()
                if r["exports"]
            ]
        for container in exported:
            self.exports.remove(container)

    # copy, move, snapshots -----------------------------------------------------------------

