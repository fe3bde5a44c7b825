"""The base of the CDMI service (:class:`gateway.services.cdmi.CdmiService`): set-up, lookups
by path and ID, the access checks (ACLs, group policy, token scope), and the write primitives
every kind of write shares (locking rows; new rows and their admission: the parent's right, a
free name, the group).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from auth.principal import Principal
from backends.blob import BlobStore
from cdmi import acl, capabilities, objectid
from cdmi.model import (
    CAPABILITIES_DIR,
    CONTAINER,
    DATAOBJECT,
    DEFAULT_DOMAIN,
    DOMAINS_DIR,
    GROUP_METADATA,
    MAX_PATH_BYTES,
    OBJECTID_DIR,
    ObjectState,
    check_name,
    parent_path,
)
from cdmi.paths import BY_ID, PATH, Target
from gateway.config import Config
from gateway.errors import Conflict, Forbidden, InvalidRequest, NimboError, NotFound
from gateway.services.cdmi_state import (
    INSERT_OBJECT,
    NO_GROUP,
    ROOT_OWNER,
    ROW_COLUMNS,
    SELECT_BY_ID,
    SELECT_BY_PATH,
    SELECT_FAMILY,
    AccessLog,
    ExportDriver,
    Family,
    Redirect,
    T,
    foreign_key_violation,
    granted_rights,
    state_of,
    utc_now,
)
from gateway.services.quotas import Quotas
from gateway.services.tenancy import Tenancy, in_scope
from gateway.store.db import Store
from gateway.store.models import CdmiObjectRow


class CdmiCore:
    """The parts of the CDMI service its reads, copies and writes share."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        config: Config,
        *,
        exports: ExportDriver | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.config = config
        self.root_uri = config.cdmi_root
        self.enterprise = config.cdmi_enterprise_number
        self.exports = exports
        self.access = AccessLog()
        self.tenancy = Tenancy.from_config(config)
        self.quotas = Quotas(config)
        self.root_id = self._ensure_root()
        self.domain_ids = {
            "": objectid.derived(self.enterprise, DOMAINS_DIR + "/"),
            "default/": objectid.derived(self.enterprise, DEFAULT_DOMAIN),
        }
        self.capability_ids = {
            path: objectid.derived(self.enterprise, f"{CAPABILITIES_DIR}/{path}")
            for path in capabilities.TREE
        }

    # --- set-up ----------------------------------------------------------------------------

    def _ensure_root(self) -> str:
        with self.store.read() as reader:
            found = reader.execute(select(T.id).where(T.path == "")).scalar()
        if found:
            return str(found)
        with self.store.session(write=True) as session:
            existing = session.scalar(select(CdmiObjectRow.id).where(CdmiObjectRow.path == ""))
            if existing:
                return existing
            root = self._new_row(Principal(ROOT_OWNER), None, "", CONTAINER)
            root.acl = acl.to_stored(acl.root())
            session.add(root)
            return root.id

    # --- lookups ---------------------------------------------------------------------------

    def _row(
        self, reader: Connection | Session, target: Target, principal: Principal | None
    ) -> RowMapping | None:
        """The row a PATH or BY_ID target names, or None; also None for a row ``principal``
        does not see (or, by ID, whose container they do not see): see :meth:`_sees`. A
        principal of None sees everything."""
        if target.kind == PATH:
            return self._seen(self._by_path(reader, target.path), principal)
        if target.kind == BY_ID:
            row = self._seen(self._by_id(reader, target.object_id), principal)
            if row is None or not target.rest:
                return row
            if row["kind"] != CONTAINER or row["path"] is None:
                raise NotFound(f"object {target.object_id} has no children")
            return self._seen(self._by_path(reader, row["path"] + target.rest), principal)
        return None

    def _seen_state(
        self, reader: Connection, target: Target, principal: Principal
    ) -> tuple[ObjectState, int] | None:
        """As :meth:`_row`, the object's state and the rights the principal holds on it (see
        :meth:`_held`); a path's ACL is evaluated once."""
        if target.kind == PATH:
            row = self._by_path(reader, target.path)
            state = state_of(row) if row is not None else None
            held = self._held(state, principal) if state is not None else 0
            return (state, held) if state is not None and held else None
        row = self._row(reader, target, principal)
        if row is None:
            return None
        state = state_of(row)
        return state, self._held(state, principal)

    def _seen(self, row: RowMapping | None, principal: Principal | None) -> RowMapping | None:
        if row is None or principal is None or self._sees(state_of(row), principal):
            return row
        return None

    @staticmethod
    def _by_path(reader: Connection | Session, path: str) -> RowMapping | None:
        return reader.execute(SELECT_BY_PATH, {"path": path}).mappings().first()

    @staticmethod
    def _by_id(reader: Connection | Session, object_id: str) -> RowMapping | None:
        return reader.execute(SELECT_BY_ID, {"id": object_id}).mappings().first()

    @staticmethod
    def _family(reader: Connection | Session, path: str) -> Family:
        """The rows at ``path``, at its twin with or without the slash, and at its parent's
        path, in one statement: what a create looks at (see :meth:`_at`)."""
        bare = path.rstrip("/")
        holder = parent_path(path)
        paths = {"p0": path, "p1": bare, "p2": bare + "/", "p3": holder}
        if isinstance(reader, Session):  # Core on the session's connection: no ORM round
            reader = reader.connection()
        found = {row["path"]: row for row in reader.execute(SELECT_FAMILY, paths).mappings()}
        return {asked: found.get(asked) for asked in paths.values()}

    def _at(
        self, reader: Connection | Session, path: str, family: Family | None
    ) -> RowMapping | None:
        """The row at ``path``: from ``family`` when it was read there, else from the store."""
        if family is not None and path in family:
            return family[path]
        return self._by_path(reader, path)

    def _path_of(self, target: Target, reader: Connection | Session, principal: Principal) -> str:
        """The path below the root a PATH or BY_ID(+rest) target stands for."""
        if target.kind == PATH:
            return target.path
        row = self._seen(self._by_id(reader, target.object_id), principal)
        if row is None:
            raise NotFound(f"no object with ID {target.object_id}")
        if row["path"] is None:
            if target.rest:
                raise NotFound(f"object {target.object_id} has no children")
            raise InvalidRequest(f"object {target.object_id} has no path")
        return str(row["path"]) + target.rest

    def _check_slash(
        self,
        reader: Connection | Session,
        target: Target,
        principal: Principal,
        family: Family | None = None,
    ) -> None:
        """An existing container (that the principal sees) named without its slash: 301 to
        the slashed URL. ``family``: rows already read (see :meth:`_family`)."""
        if target.slash or target.kind not in (PATH, BY_ID):
            return
        if target.kind == PATH:
            row = self._seen(self._at(reader, target.path + "/", family), principal)
            if row is not None:
                raise Redirect(self.root_uri + target.path + "/")
        elif not target.rest:
            row = self._seen(self._by_id(reader, target.object_id), principal)
            if row is not None and row["kind"] == CONTAINER:
                raise Redirect(f"{self.root_uri}{OBJECTID_DIR}/{target.object_id}/")
        else:
            base = self._seen(self._by_id(reader, target.object_id), principal)
            if base is not None and base["path"] is not None:
                row = self._by_path(reader, str(base["path"]) + target.rest + "/")
                if self._seen(row, principal) is not None:
                    raise Redirect(
                        f"{self.root_uri}{OBJECTID_DIR}/{target.object_id}/{target.rest}/"
                    )

    def _require(self, state: ObjectState, principal: Principal, mask: int, what: str) -> None:
        if not self._may(state, principal, mask):
            raise Forbidden(f"{principal.name} may not {what} {self._describe(state)}")

    def _held(self, state: ObjectState, principal: Principal) -> int:
        """Every right the principal holds on the object (none outside its scope). One
        evaluation of the ACL answers both :meth:`_sees` (any right) and :meth:`_may` (every
        bit of a mask held), since ACEs decide each bit on its own."""
        if not self._in_scope(state, principal):
            return 0
        return granted_rights(self.tenancy, state, principal)

    def _may(self, state: ObjectState, principal: Principal, mask: int) -> bool:
        return self._held(state, principal) & mask == mask

    def _in_scope(self, state: ObjectState, principal: Principal) -> bool:
        """Within the reach of a scoped token (see gateway.services.tenancy.in_scope); the
        root container, everyone's namespace, is within every scope."""
        return state.path == "" or in_scope(principal, state.group)

    def _sees(self, state: ObjectState, principal: Principal) -> bool:
        """Whether the object exists for the principal: it is within their scope and they
        hold some right on it. For everyone else every route answers as for a path or ID
        where nothing is (404)."""
        return self._held(state, principal) != 0

    def _check_free(
        self,
        reader: Connection | Session,
        path: str,
        target: Target,
        principal: Principal,
        family: Family | None = None,
    ) -> None:
        """A new object's path (and its twin with or without the slash) is not taken by one
        the principal does not see: 404, the answer of a read there. ``family``: rows
        already read (see :meth:`_family`)."""
        bare = path.rstrip("/")
        for taken in (bare, bare + "/"):
            row = self._at(reader, taken, family)
            if row is not None and self._seen(row, principal) is None:
                raise NotFound(f"nothing at {self.root_uri}{self._shown(target)}")

    def _describe(self, state: ObjectState) -> str:
        if state.path is None:
            return f"object {state.id}"
        return self.root_uri + state.path

    def _shown(self, target: Target) -> str:
        if target.kind == BY_ID:
            return f"{OBJECTID_DIR}/{target.object_id}" + (f"/{target.rest}" if target.rest else "")
        return target.path

    def uri_of(self, state: ObjectState) -> str:
        if state.path is None:
            return f"{self.root_uri}{OBJECTID_DIR}/{state.id}"
        return self.root_uri + state.path

    # --- writes ----------------------------------------------------------------------------

    def _locked(
        self, session: Session, target: Target, principal: Principal | None
    ) -> CdmiObjectRow | None:
        """The row of ``target``, locked for the transaction; None also for one the principal
        does not see (see :meth:`_row`)."""
        mapping = self._row(session, target, principal)
        if mapping is None:
            return None
        return self._lock_row(session, str(mapping["id"]))

    def _locked_or_family(
        self, session: Session, target: Target, principal: Principal | None
    ) -> tuple[CdmiObjectRow | None, Family | None]:
        """:meth:`_locked`, and for a path the rows a create there looks at (see
        :meth:`_family`), read with it in one statement."""
        if target.kind != PATH:
            return self._locked(session, target, principal), None
        family = self._family(session, target.path)
        found = self._seen(family[target.path], principal)
        if found is None:
            return None, family
        return self._lock_row(session, str(found["id"])), family

    def _lock_row(self, session: Session, object_id: str) -> CdmiObjectRow:
        """The row ``object_id`` (that exists), locked for the transaction."""
        query = select(CdmiObjectRow).where(CdmiObjectRow.id == object_id)
        if not self.store.is_sqlite:
            query = query.with_for_update()
        return session.scalars(query).one()

    def _parent(
        self, session: Session, path: str, principal: Principal, mask: int
    ) -> CdmiObjectRow:
        """The row of the container a new object at ``path`` goes in, once
        :meth:`_parent_state` has passed it."""
        holder = parent_path(path)
        parent = session.scalars(select(CdmiObjectRow).where(CdmiObjectRow.path == holder)).first()
        self._parent_state(parent, path, principal, mask)
        assert parent is not None  # (_parent_state refuses a missing one)
        return parent

    def _parent_state(
        self, parent: RowMapping | CdmiObjectRow | None, path: str, principal: Principal, mask: int
    ) -> ObjectState:
        """The container ``parent`` (the row at the parent path of ``path``, None if there is
        none) as a new object there needs it: one the principal sees (404), a container (404),
        on which they hold ``mask`` (403)."""
        holder = parent_path(path)
        state = state_of(parent) if parent is not None else None
        held = self._held(state, principal) if state is not None else 0
        if state is None or not held:
            raise NotFound(f"the parent container {self.root_uri}{holder} does not exist")
        if state.kind != CONTAINER:
            raise NotFound(f"{self.root_uri}{holder.rstrip('/')} is not a container")
        if held & mask != mask:
            what = "create containers in" if path.endswith("/") else "create data objects in"
            raise Forbidden(f"{principal.name} may not {what} {self._describe(state)}")
        return state

    def _new_row(
        self,
        principal: Principal,
        parent: CdmiObjectRow | ObjectState | None,
        path: str | None,
        kind: str,
        explicit_acl: Any = None,
        object_id: str | None = None,
    ) -> CdmiObjectRow:
        if explicit_acl is not None:
            aces = acl.parse(explicit_acl)
        elif parent is not None and parent.path != "":
            aces = acl.inherited(acl.from_stored(parent.acl), container=kind == CONTAINER)
            aces = aces or acl.default()
        else:
            aces = acl.default()
        moment = utc_now()
        name = None
        if path is not None:
            name = path.rstrip("/").rsplit("/", 1)[-1]
        group = self._new_group(
            principal, parent.path if parent else None, parent.group if parent else None
        )
        return CdmiObjectRow(
            id=object_id or objectid.new(self.enterprise),
            kind=kind,
            parent_id=parent.id if parent is not None else None,
            name=name,
            path=path,
            owner=principal.name,
            group=group,
            mimetype="text/plain" if kind == DATAOBJECT else "",
            encoding="utf-8",
            size=0,
            metadata_={},
            acl=acl.to_stored(aces),
            exports={},
            extra={},
            completion="Complete",
            ctime=moment,
            mtime=moment,
            atime=moment,
            acount=0,
            mcount=0,
        )

    def _new_group(
        self, principal: Principal, parent_path: str | None, parent_group: str | None
    ) -> str | None:
        """The group of a new object before any the request names: a container's children
        take its group (a setgid directory; a scoped token's, its scope group); what is
        created in the root or by ID only gets the creator's default (see
        gateway.services.tenancy)."""
        if parent_path:  # neither None (by ID) nor "" (the root)
            return self.tenancy.child_group(principal, parent_group)
        return self.tenancy.default_for(principal)

    def _check_upload(
        self, principal: Principal, owner: str, group: str | None, growth: int
    ) -> None:
        """The quota's refusal of an upload of known length before its body is read (see
        Quotas.check_cdmi_upload; the check after staging stays)."""
        with self.store.session() as session:
            self.quotas.check_cdmi_upload(session, principal, owner, group, growth)

    def _check_new_path(self, path: str, target: Target) -> None:
        if target.in_snapshot:
            raise InvalidRequest("snapshots are read-only")
        if len(path.encode()) > MAX_PATH_BYTES:
            raise InvalidRequest(f"path longer than {MAX_PATH_BYTES} bytes")
        check_name(path.rstrip("/").rsplit("/", 1)[-1])

    def _flush_new(self, session: Session, row: CdmiObjectRow) -> None:
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise self._refused_insert(exc, row) from exc

    def _insert_new(self, session: Session, row: CdmiObjectRow) -> None:
        """:meth:`_flush_new` for a row that then stays out of the session: one Core INSERT
        of its values, without the unit of work (its later changes are not written)."""
        values = {column: getattr(row, attribute) for column, attribute in ROW_COLUMNS}
        try:
            session.connection().execute(INSERT_OBJECT, values)
        except IntegrityError as exc:
            raise self._refused_insert(exc, row) from exc

    def _refused_insert(self, exc: IntegrityError, row: CdmiObjectRow) -> NimboError:
        """The answer to an INSERT the database refused. A parent that is gone (PostgreSQL lets
        a delete of the container commit between the transaction's read of it and the
        insert; its foreign key then refuses the row) is 404, as a parent found missing is;
        anything else is the path taken meanwhile (409)."""
        if foreign_key_violation(exc) and row.path:
            return NotFound(
                f"the parent container {self.root_uri}{parent_path(row.path)} does not exist"
            )
        return Conflict(f"{self.root_uri}{row.path} was created by someone else just now")

    def _admit(
        self,
        session: Session,
        principal: Principal,
        target: Target,
        path: str,
        kind: str,
        explicit_acl: Any = None,
        asked_group: Any = NO_GROUP,
        object_id: str | None = None,
        family: Family | None = None,
    ) -> CdmiObjectRow:
        """The row of a new object at ``path`` (with ``object_id``, or a new one), not yet in
        the store: the parent's ADD right checked, the name free, the group applied.
        ``family``: the rows of :meth:`_family` for ``path``, if already read."""
        if family is None:
            family = self._family(session, path)
        right = acl.ADD_SUBCONTAINER if kind == CONTAINER else acl.ADD_OBJECT
        parent = self._parent_state(family[parent_path(path)], path, principal, right)
        self._check_free(session, path, target, principal, family)
        row = self._new_row(principal, parent, path, kind, explicit_acl, object_id)
        self._set_group(principal, row, asked_group, created=True)
        return row

    def _of_kind(self, state: ObjectState, kind: str) -> ObjectState:
        """``state``, unless it is the other kind of object (400)."""
        if state.kind != kind:
            other = "a container" if state.kind == CONTAINER else "a data object"
            raise InvalidRequest(f"{self.uri_of(state)} is {other}")
        return state

    def _set_group(
        self, principal: Principal, row: CdmiObjectRow, asked: Any, *, created: bool
    ) -> None:
        """Apply the group a body's metadata names (``NO_GROUP``: none named): at create one of
        the creator's groups, later a change by the owner or an admin only."""
        if asked is NO_GROUP:
            return
        if created:
            row.group = self.tenancy.new_group(principal, asked, what=GROUP_METADATA)
            return
        before = row.group
        row.group = self.tenancy.regroup(principal, row.owner, before, asked, what=GROUP_METADATA)
        session = object_session(row)
        if row.group != before and row.kind == DATAOBJECT and session is not None:
            self.quotas.check_cdmi_regrouped(session, principal, [row])

    # data objects --------------------------------------------------------------------------

