"""What CDMI requests mean: the service behind the CDMI blueprint.

Metadata, ACLs and the tree live in the state store (``cdmi_objects``); values live in the
blob store, keyed by object ID. A write stages its value first (outside any lock: an upload may
take minutes), then checks and changes the rows in one write transaction and publishes the
staged value as the last step of that transaction. A failed check discards the staged value:
nothing is lost or half-written, and no reader ever sees a partial value. A plain-HTTP upload
that announces its length is checked against the byte quota before its body is read as well
(:meth:`CdmiService._check_upload`); the check in the transaction stays the binding one.

Access counting (``cdmi_atime``/``cdmi_acount``) is batched per process (see
:class:`AccessLog`) so that reads do not each take the store's write lock.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, func, insert, inspect, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from auth.principal import Principal
from backends.blob import BlobStore, StagedBlob
from cdmi import acl, capabilities, extents, objectid
from cdmi.model import (
    CAPABILITIES_DIR,
    CONTAINER,
    DATAOBJECT,
    DEFAULT_DOMAIN,
    DOMAINS_DIR,
    GROUP_METADATA,
    MAX_PATH_BYTES,
    OBJECTID_DIR,
    OPERATIONS,
    SNAPSHOTS_DIR,
    WRITTEN_EXTENTS,
    ObjectState,
    check_metadata,
    check_name,
    document,
    merge_metadata,
    parent_path,
    unknown_fields,
)
from cdmi.paths import BY_ID, CAPABILITIES, DOMAINS, ID_ROOT, PATH, Target
from cdmi.request import CdmiType, Selection
from gateway.config import Config
from gateway.errors import (
    BackendError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NimboError,
    NotFound,
)
from gateway.services.quotas import Quotas
from gateway.services.tenancy import Tenancy, acl_subject, in_scope, scope_condition
from gateway.store.db import Store
from gateway.store.models import Base, CdmiObjectRow

ROOT_OWNER = "administrator"
T = CdmiObjectRow.__table__.c
_MISSING = object()  # a body that names no group
# The lookups every request makes, built once: building a statement costs more than running
# it on SQLite (benchmarks/cdmi_io.py, small objects).
_BY_PATH = select(CdmiObjectRow.__table__).where(T.path == bindparam("path"))
_BY_ID = select(CdmiObjectRow.__table__).where(T.id == bindparam("id"))
# A new object's path, its twin with or without the slash and its parent's, in one read.
_FAMILY = select(CdmiObjectRow.__table__).where(
    T.path.in_([bindparam("p0"), bindparam("p1"), bindparam("p2"), bindparam("p3")])
)
_INSERT = insert(Base.metadata.tables["cdmi_objects"])
# The reads of objects counted (see AccessLog), one execution per object in one executemany.
_ACCESSED = (
    update(Base.metadata.tables["cdmi_objects"])
    .where(T.id == bindparam("object_id"))
    .values(acount=T.acount + bindparam("reads"), atime=bindparam("moment"))
)
# (column, attribute) of every column: a new row's values for _INSERT
_COLUMNS = tuple(
    (attribute.columns[0].key, attribute.key) for attribute in inspect(CdmiObjectRow).column_attrs
)


Family = dict[str, RowMapping | None]  # rows by path, None where there is none (see _family)


def _now() -> datetime:
    return datetime.now(UTC)


class Redirect(Exception):
    """The target is an existing container named without its trailing slash (HTTP 301)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class ExportDriver(Protocol):
    """Makes ``exports`` real (see :mod:`gateway.services.cdmi_exports`)."""

    def apply(
        self, principal: Principal, state: ObjectState, wanted: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Bring the container's exports to ``wanted``; returns what to store and show."""

    def remove(self, state: ObjectState) -> None:
        """Tear down every export of a container that is being deleted."""


@dataclass(frozen=True)
class ValueRead:
    """How to send a data object's value: which bytes, in which transfer encoding."""

    object_id: str
    start: int
    end: int  # exclusive
    encoding: str  # utf-8 | base64
    written_end: int | None = None  # exclusive: the first gap from start; None: end

    @property
    def range_text(self) -> str:
        """``valuerange``: the bytes sent, up to the first gap (gaps are sent as zeros)."""
        end = self.end if self.written_end is None else min(self.end, self.written_end)
        return f"{self.start}-{end - 1}" if end > self.start else ""


@dataclass
class ReadResult:
    state: ObjectState
    document: dict[str, Any]  # every field but the value and the children, in order
    value: ValueRead | None = None  # present when the value was asked for
    children: list[str] | None = None
    children_range: str | None = None
    media: CdmiType = CdmiType.OBJECT


@dataclass
class Written:
    created: bool
    state: ObjectState
    parent_id: str | None = None
    location: str = ""


@dataclass
class AccessLog:
    """Reads counted in memory and written to the store at most once per ``interval``.

    A read would otherwise be a write transaction (``cdmi_atime``, ``cdmi_acount``). The
    counts a process has not yet flushed are added when it renders the object, so a client
    of one process sees its own reads at once; other processes see them within ``interval``.
    """

    interval: float = 1.0
    pending: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    last_flush: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, object_id: str) -> None:
        with self.lock:
            count, _ = self.pending.get(object_id, (0, _now()))
            self.pending[object_id] = (count + 1, _now())

    def overlay(self, state: ObjectState) -> ObjectState:
        with self.lock:
            entry = self.pending.get(state.id)
        if entry is None:
            return state
        return replace(
            state, acount=state.acount + entry[0], atime=max(entry[1], _aware(state.atime))
        )

    def take_due(self, *, force: bool = False) -> dict[str, tuple[int, datetime]]:
        with self.lock:
            if not self.pending or (
                not force and time.monotonic() - self.last_flush < self.interval
            ):
                return {}
            taken, self.pending = self.pending, {}
            self.last_flush = time.monotonic()
            return taken


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def state_of(row: RowMapping | CdmiObjectRow) -> ObjectState:
    get: Callable[[str], Any]
    if isinstance(row, CdmiObjectRow):

        def get(name: str) -> Any:
            return getattr(row, "metadata_" if name == "metadata" else name)
    else:
        get = row.__getitem__
    return ObjectState(
        id=get("id"),
        kind=get("kind"),
        path=get("path"),
        parent_id=get("parent_id"),
        owner=get("owner"),
        mimetype=get("mimetype"),
        encoding=get("encoding"),
        size=get("size"),
        metadata=dict(get("metadata") or {}),
        acl=list(get("acl") or []),
        exports=dict(get("exports") or {}),
        completion=get("completion"),
        ctime=_aware(get("ctime")),
        mtime=_aware(get("mtime")),
        atime=_aware(get("atime")),
        acount=get("acount"),
        mcount=get("mcount"),
        extra=dict(get("extra") or {}),
        group=get("group"),
    )


def granted_rights(tenancy: Tenancy, state: ObjectState, principal: Principal) -> int:
    """Every right the object's ACL, then the group policy as ACEs (the ACL may deny what it
    grants), give ``principal``; its token's scope is the caller's to check first (see
    :meth:`CdmiService._held`)."""
    aces = (*acl.from_stored(state.acl), *tenancy.group_aces())
    return acl.granted(aces, acl_subject(principal), state.owner, acl.ALL_PERMS, state.group)


def path_under(prefix: str) -> Any:
    """Rows whose path starts with ``prefix`` (no LIKE wildcards: names may hold % and _)."""
    return func.substr(T.path, 1, len(prefix)) == prefix


class CdmiService:
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
        return reader.execute(_BY_PATH, {"path": path}).mappings().first()

    @staticmethod
    def _by_id(reader: Connection | Session, object_id: str) -> RowMapping | None:
        return reader.execute(_BY_ID, {"id": object_id}).mappings().first()

    @staticmethod
    def _family(reader: Connection | Session, path: str) -> Family:
        """The rows at ``path``, at its twin with or without the slash, and at its parent's
        path, in one statement: what a create looks at (see :meth:`_at`)."""
        bare = path.rstrip("/")
        holder = parent_path(path)
        paths = {"p0": path, "p1": bare, "p2": bare + "/", "p3": holder}
        if isinstance(reader, Session):  # Core on the session's connection: no ORM round
            reader = reader.connection()
        found = {row["path"]: row for row in reader.execute(_FAMILY, paths).mappings()}
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

    def uri_of(self, state: ObjectState) -> str:
        if state.path is None:
            return f"{self.root_uri}{OBJECTID_DIR}/{state.id}"
        return self.root_uri + state.path

    # --- reads -----------------------------------------------------------------------------

    def read(self, principal: Principal, target: Target, selection: Selection) -> ReadResult:
        """A CDMI read of a container or data object (capabilities and domains: see
        :meth:`read_special`)."""
        self._flush_access()
        with self.store.read() as reader:
            seen = self._seen_state(reader, target, principal)
            if seen is None:
                self._check_slash(reader, target, principal)
                raise NotFound(f"nothing at {self.root_uri}{self._shown(target)}")
            state, held = self.access.overlay(seen[0]), seen[1]
            if state.kind == CONTAINER and not target.slash:
                self._check_slash(reader, target, principal)
            if state.kind == DATAOBJECT and target.slash:
                raise NotFound(f"{self.uri_of(state)} is a data object, not a container")
            children = None
            children_range = None
            if state.kind == CONTAINER and (
                selection.wants("children") or selection.wants("childrenrange")
            ):
                children, children_range = self._children(reader, principal, state, selection)
            snapshots = self._snapshots(reader, state) if state.kind == CONTAINER else []
        readable_meta = held & acl.READ_METADATA == acl.READ_METADATA  # as _may (see _held)
        readable_value = held & acl.READ_OBJECT == acl.READ_OBJECT
        if not (readable_meta or readable_value):
            raise Forbidden(f"{principal.name} may not read {self._describe(state)}")
        self.access.record(state.id)
        doc = document(
            state, self.root_uri, state.parent_id, selection, metadata_readable=readable_meta
        )
        if snapshots and selection.wants("snapshots"):
            doc["snapshots"] = snapshots
        result = ReadResult(state, doc, media=state.media)
        if state.kind == CONTAINER:
            if not readable_value:
                children = children_range = None
            if selection.wants("childrenrange") and children_range is not None:
                result.children_range = children_range
            if selection.wants("children") and children is not None:
                result.children = children
            return result
        if readable_value and (
            selection.wants("value") or selection.wants("valuerange") or selection.value_range
        ):
            result.value = self._value_read(state, selection)
        return result

    def _shown(self, target: Target) -> str:
        if target.kind == BY_ID:
            return f"{OBJECTID_DIR}/{target.object_id}" + (f"/{target.rest}" if target.rest else "")
        return target.path

    def _value_read(self, state: ObjectState, selection: Selection) -> ValueRead:
        if selection.value_range is None:
            gap = extents.first_gap(state.written, 0, state.size)
            return ValueRead(state.id, 0, state.size, state.encoding, gap)
        first, last = selection.value_range
        if first >= state.size and not (first == 0 and state.size == 0):
            raise InvalidRequest(
                f"value range starts at {first}, past the end of the value ({state.size} bytes)"
            )
        end = min(last + 1, state.size)
        # A slice of UTF-8 may cut a character: ranges are always sent in base64.
        return ValueRead(
            state.id, first, end, "base64", extents.first_gap(state.written, first, end)
        )

    def _children(
        self, reader: Connection, principal: Principal, state: ObjectState, selection: Selection
    ) -> tuple[list[str], str]:
        query = (
            select(T.name, T.kind, T.owner, T.group, T.acl)
            .where(T.parent_id == state.id, T.name != SNAPSHOTS_DIR)
            .order_by(T.name)
        )
        scope = scope_condition(principal, T.group)
        rows = reader.execute(query if scope is None else query.where(scope)).all()
        names = []
        who = acl_subject(principal)
        policy = self.tenancy.group_aces()
        for name, kind, owner, group, stored_acl in rows:
            # A user lists what exists for them (see _sees): in the root, what they may read.
            aces = (*acl.from_stored(stored_acl or []), *policy)
            if state.path == "":
                if not acl.allowed(aces, who, owner, acl.READ_OBJECT, group):
                    continue
            elif not acl.granted(aces, who, owner, acl.ALL_PERMS, group):
                continue
            names.append(f"{name}/" if kind == CONTAINER else str(name))
        first = 0
        if selection.children_range is not None:
            first, last = selection.children_range
            names = names[first : last + 1]
        if len(names) > capabilities.CHILDREN_MAX:
            raise InvalidRequest(
                f"{len(names)} children; list at most {capabilities.CHILDREN_MAX} per request "
                "with ?children:<first>-<last>"
            )
        text = f"{first}-{first + len(names) - 1}" if names else ""
        return names, text

    def _snapshots(self, reader: Connection, state: ObjectState) -> list[str]:
        if state.path is None:
            return []
        prefix = f"{state.path}{SNAPSHOTS_DIR}/"
        rows = reader.execute(
            select(T.path)
            .where(T.parent_id == select(T.id).where(T.path == prefix).scalar_subquery())
            .order_by(T.path)
        ).scalars()
        return [self.root_uri + str(path) for path in rows]

    def read_after_write(self, principal: Principal, state: ObjectState) -> ReadResult:
        """The body of a 201: the object as created, without its value."""
        result = ReadResult(
            state, document(state, self.root_uri, state.parent_id, Selection()), media=state.media
        )
        if state.kind == CONTAINER:
            with self.store.read() as reader:
                result.children, result.children_range = self._children(
                    reader, principal, state, Selection()
                )
        return result

    def value(self, read: ValueRead) -> Iterator[bytes]:
        """The bytes of a value read, streamed from the blob store."""
        if read.end <= read.start:
            return iter(())
        return self.blobs.read(read.object_id, read.start, read.end)

    def plain_reader(
        self, principal: Principal, state: ObjectState
    ) -> Callable[[int, int], Iterator[bytes]]:
        """For a plain-HTTP read of a data object :meth:`read` returned: a byte-range reader
        of its value (the value's own bytes, so reading it takes READ_OBJECT)."""
        self._require(state, principal, acl.READ_OBJECT, "read")
        return lambda start, end: self.value(ValueRead(state.id, start, end, "base64"))

    def read_special(self, target: Target, *, legacy: bool) -> ReadResult:
        """Capability objects and the domain tree (server-made, read-only)."""
        if target.kind == CAPABILITIES:
            node = capabilities.TREE.get(
                target.rest if target.rest.endswith("/") or not target.rest else target.rest + "/"
            )
            if node is None:
                raise NotFound(f"no capability object {target.rest!r}")
            if not target.slash:
                raise Redirect(f"{self.root_uri}{CAPABILITIES_DIR}/{node.path}")
            return self._capability(node, legacy=legacy)
        if target.kind == DOMAINS:
            if target.rest not in self.domain_ids:
                raise NotFound(f"no domain {target.rest!r}")
            if not target.slash:
                raise Redirect(f"{self.root_uri}{DOMAINS_DIR}/{target.rest}/")
            return self._domain(target.rest)
        raise NotFound("not a server-made object")

    def _capability(self, node: capabilities.CapabilityNode, *, legacy: bool) -> ReadResult:
        root = f"{self.root_uri}{CAPABILITIES_DIR}/"
        doc: dict[str, Any] = {
            "objectType": str(CdmiType.CAPABILITY),
            "objectID": self.capability_ids[node.path],
        }
        if node.path:
            doc["objectName"] = node.path
            doc["parentURI"] = root
            doc["parentID"] = self.capability_ids[""]
        else:
            doc["objectName"] = f"{CAPABILITIES_DIR}/"
            doc["parentURI"] = self.root_uri
            doc["parentID"] = self.root_id
        doc["capabilities"] = capabilities.values(node, legacy=legacy)
        state = _virtual_state(doc["objectID"], "capability")
        children = list(node.children)
        return ReadResult(
            state,
            doc,
            children=children,
            children_range=f"0-{len(children) - 1}" if children else "",
            media=CdmiType.CAPABILITY,
        )

    def _domain(self, rest: str) -> ReadResult:
        root = f"{self.root_uri}{DOMAINS_DIR}/"
        doc: dict[str, Any] = {
            "objectType": str(CdmiType.DOMAIN),
            "objectID": self.domain_ids[rest],
        }
        if rest:
            doc |= {"objectName": rest, "parentURI": root, "parentID": self.domain_ids[""]}
        else:
            doc |= {
                "objectName": f"{DOMAINS_DIR}/",
                "parentURI": self.root_uri,
                "parentID": self.root_id,
            }
        doc["domainURI"] = self.root_uri + DEFAULT_DOMAIN
        doc["capabilitiesURI"] = f"{self.root_uri}{CAPABILITIES_DIR}/domain/"
        doc["completionStatus"] = "Complete"
        doc["metadata"] = (
            {"cdmi_domain_enabled": "true", "cdmi_domain_delete_reassign": ""} if rest else {}
        )
        children = ["default/"] if not rest else []
        return ReadResult(
            _virtual_state(doc["objectID"], "domain"),
            doc,
            children=children,
            children_range="0-0" if children else "",
            media=CdmiType.DOMAIN,
        )

    def special_for_id(self, object_id: str) -> Target | None:
        """The server-made object with this ID, as a target (served by ID like any other)."""
        for path, known in self.capability_ids.items():
            if known == object_id:
                return Target(CAPABILITIES, rest=path, slash=True)
        for rest, known in self.domain_ids.items():
            if known == object_id:
                return Target(DOMAINS, rest=rest, slash=True)
        return None

    def _flush_access(self) -> None:
        due = self.access.take_due()
        if not due:
            return
        counts = [
            {"object_id": object_id, "reads": count, "moment": moment}
            for object_id, (count, moment) in due.items()
        ]
        with self.store.session(write=True) as session:
            # Core on the session's connection: the ORM built and ran one UPDATE per object,
            # each with a synchronisation of the session, under the write lock.
            session.connection().execute(_ACCESSED, counts)

    def flush(self) -> None:
        """Write every pending access count now (tests, shutdown)."""
        self.access.last_flush = 0.0
        self._flush_access()

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
        moment = _now()
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
        values = {column: getattr(row, attribute) for column, attribute in _COLUMNS}
        try:
            session.connection().execute(_INSERT, values)
        except IntegrityError as exc:
            raise self._refused_insert(exc, row) from exc

    def _refused_insert(self, exc: IntegrityError, row: CdmiObjectRow) -> NimboError:
        """The answer to an INSERT the database refused. A parent that is gone (PostgreSQL lets
        a delete of the container commit between the transaction's read of it and the
        insert; its foreign key then refuses the row) is 404, as a parent found missing is;
        anything else is the path taken meanwhile (409)."""
        if _foreign_key_violation(exc) and row.path:
            return NotFound(
                f"the parent container {self.root_uri}{parent_path(row.path)} does not exist"
            )
        return Conflict(f"{self.root_uri}{row.path} was created by someone else just now")

    def _add(
        self,
        session: Session,
        principal: Principal,
        target: Target,
        path: str,
        kind: str,
        explicit_acl: Any = None,
        asked_group: Any = _MISSING,
        object_id: str | None = None,
        family: Family | None = None,
    ) -> CdmiObjectRow:
        """A new object at ``path`` (with ``object_id``, or a new one): see :meth:`_admit`;
        the row flushed."""
        row = self._admit(
            session, principal, target, path, kind, explicit_acl, asked_group, object_id, family
        )
        self._flush_new(session, row)
        return row

    def _admit(
        self,
        session: Session,
        principal: Principal,
        target: Target,
        path: str,
        kind: str,
        explicit_acl: Any = None,
        asked_group: Any = _MISSING,
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
        """Apply the group a body's metadata names (``_MISSING``: none named): at create one of
        the creator's groups, later a change by the owner or an admin only."""
        if asked is _MISSING:
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
        _check_fields(body)
        if target.kind == ID_ROOT:
            raise InvalidRequest(
                "PUT needs an object ID or a path; POST to cdmi_objectid/ creates an object by ID"
            )
        operation = _operation(body)
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
            data = _b64(value)
            first, last = selection.value_range
            if len(data) != last - first + 1:
                raise InvalidRequest(
                    f"value range {first}-{last} is {last - first + 1} bytes; the value "
                    f"decodes to {len(data)}"
                )
            return None, data, "base64"
        data = _b64(value) if encoding == "base64" else value.encode("utf-8")
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
        metadata_in, explicit_acl = _metadata_of(body)
        asked_group = _group_of(body)
        mimetype = _mimetype_of(body)
        _check_domain(body, self.root_uri)
        _check_capabilities_uri(body, self.root_uri, DATAOBJECT)
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
            moment = _now()
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
                    _track_written(row, size_before, first, len(data))
                else:
                    row.encoding = encoding or (row.encoding if not created else "utf-8")
                    _track_written(row, size_before, None, blob.size)
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
            check = _Utf8Check()
            for _ in check.wrap(self.blobs.read(row.id)):
                if not check.valid:
                    break
            if not check.valid:
                raise InvalidRequest("the value is not valid UTF-8; it stays base64")
        row.encoding = encoding

    def post_object(self, principal: Principal, target: Target, body: Mapping[str, Any]) -> Written:
        """CDMI POST: a server-named data object in a container, or an ID-only object."""
        _check_fields(body)
        operation = _operation(body)
        if target.kind == ID_ROOT:
            if operation == "move":
                return self.move_to_id(principal, str(body["move"]))
            if operation == "copy":
                return self.copy(principal, None, str(body["copy"]), body, kind=DATAOBJECT)
            metadata, explicit_acl = _metadata_of(body)
            asked = _group_of(body)
            group = self.tenancy.new_group(
                principal, None if asked is _MISSING else asked, what=GROUP_METADATA
            )
            mimetype = _mimetype_of(body)
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
        check = _Utf8Check()
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
                row.mtime = _now()
            size_before = row.size
            if patch is not None:
                counted = _ByteCount()
                staged = self.blobs.stage_range(row.id, patch[0], counted.wrap(patch[1]))
                row.encoding = "base64"
                _track_written(row, size_before, patch[0], counted.total)
            else:
                row.encoding = encoding
                _track_written(row, size_before, None, staged.size if staged else 0)
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
        _check_fields(body)
        if target.kind not in (PATH, BY_ID) or not target.slash:
            raise InvalidRequest("a container URL ends with '/'")
        operation = _operation(body)
        if operation == "value":
            raise InvalidRequest("containers have no value")
        if operation == "move":
            return self.move(principal, target, str(body["move"]), body, kind=CONTAINER)
        if operation == "copy":
            return self.copy(principal, target, str(body["copy"]), body, kind=CONTAINER)
        metadata_in, explicit_acl = _metadata_of(body)
        asked_group = _group_of(body)
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
        _check_domain(body, self.root_uri)
        _check_capabilities_uri(body, self.root_uri, CONTAINER)
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
                row = self._add(
                    session,
                    principal,
                    target,
                    path,
                    CONTAINER,
                    explicit_acl,
                    asked_group,
                    family=family,
                )
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
                    row.mtime = _now()
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

    def _source(self, session: Session, principal: Principal, uri: str) -> CdmiObjectRow:
        from cdmi.paths import target as parse_target

        path = _below_root(uri, self.root_uri)
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
                        _copy_written(source, existing)
                        existing.metadata_ = (
                            metadata_in if metadata_in is not None else dict(source.metadata_ or {})
                        )
                        existing.mcount += 1
                        existing.mtime = _now()
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
            source.mtime = _now()
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
            source.mtime = _now()
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


def _track_written(row: CdmiObjectRow, size: int, first: int | None, count: int) -> None:
    """Keep the extents of ``row``'s value (``size`` bytes before the write) in step with a
    write of ``count`` bytes from ``first``; ``first`` None: the whole value was replaced."""
    if first is None:
        written = None
    else:
        written = extents.after_write(
            extents.from_stored((row.extra or {}).get(WRITTEN_EXTENTS)), size, first, count
        )
    _set_written(row, extents.to_stored(written))


def _copy_written(source: CdmiObjectRow, row: CdmiObjectRow) -> None:
    """A copy's value has the source's gaps."""
    _set_written(row, (source.extra or {}).get(WRITTEN_EXTENTS))


def _set_written(row: CdmiObjectRow, stored: list[list[int]] | None) -> None:
    extra = {k: v for k, v in (row.extra or {}).items() if k != WRITTEN_EXTENTS}
    if stored is not None:
        extra[WRITTEN_EXTENTS] = stored
    if extra != (row.extra or {}):
        row.extra = extra  # a new dict: the JSON column sees the change


class _ByteCount:
    """Counts the bytes of a stream while it passes through."""

    def __init__(self) -> None:
        self.total = 0

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.total += len(chunk)
            yield chunk


def _virtual_state(object_id: str, kind: str) -> ObjectState:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return ObjectState(
        object_id,
        kind,
        None,
        None,
        ROOT_OWNER,
        "",
        "utf-8",
        0,
        {},
        [],
        {},
        "Complete",
        moment,
        moment,
        moment,
        0,
        0,
    )


def _operation(body: Mapping[str, Any]) -> str | None:
    """The one operation field of a body (or None); 400 for two, or for one not offered."""
    given = [name for name in OPERATIONS if name in body]
    if len(given) > 1:
        raise InvalidRequest(
            f"at most one of {', '.join(OPERATIONS)} per request (got {', '.join(given)})"
        )
    if given and given[0] not in ("value", "copy", "move"):
        raise InvalidRequest(f"{given[0]} is not offered here (its capability is absent)")
    return given[0] if given else None


def _metadata_of(body: Mapping[str, Any]) -> tuple[dict[str, Any] | None, Any]:
    """The body's user metadata, checked, and its ``cdmi_acl`` (parsed here to check it),
    each None when not given."""
    given = body.get("metadata")
    if given is None:
        return None, None
    if not isinstance(given, dict):
        raise InvalidRequest("metadata must be a JSON object")
    explicit_acl = given.get("cdmi_acl")
    if explicit_acl is not None:
        acl.parse(explicit_acl)
    return check_metadata(given), explicit_acl


def _group_of(body: Mapping[str, Any]) -> Any:
    """The group the body's metadata names (``""``: none), or ``_MISSING``."""
    given = body.get("metadata")
    if not isinstance(given, dict) or GROUP_METADATA not in given:
        return _MISSING
    return given[GROUP_METADATA]


def _mimetype_of(body: Mapping[str, Any]) -> str | None:
    """The body's ``mimetype``, stored lower case."""
    mimetype = body.get("mimetype")
    if mimetype is None:
        return None
    if not isinstance(mimetype, str) or "/" not in mimetype:
        raise InvalidRequest("mimetype must be a media type such as text/plain")
    return mimetype.strip().lower()


def _check_fields(body: Mapping[str, Any]) -> None:
    if not isinstance(body, Mapping):
        raise InvalidRequest("a CDMI request body is a JSON object")
    for name in ("copy", "move", "reference"):
        if name in body and not isinstance(body[name], str):
            raise InvalidRequest(f"{name} must be a URI string")


def _check_domain(body: Mapping[str, Any], root: str) -> None:
    domain = body.get("domainURI")
    if domain is None:
        return
    if not isinstance(domain, str) or domain.rstrip("/") + "/" not in (
        root + DEFAULT_DOMAIN,
        "/" + DEFAULT_DOMAIN,
    ):
        raise InvalidRequest(
            f"domainURI {domain!r}: the only domain here is {root}{DEFAULT_DOMAIN}"
        )


def _check_capabilities_uri(body: Mapping[str, Any], root: str, kind: str) -> None:
    uri = body.get("capabilitiesURI")
    if uri is None:
        return
    wanted = f"{CAPABILITIES_DIR}/{kind}/"
    if not isinstance(uri, str) or uri.rstrip("/") + "/" not in (root + wanted, "/" + wanted):
        raise InvalidRequest(f"capabilitiesURI {uri!r}: a {kind} here has {root}{wanted}")


def _below_root(uri: str, root: str) -> str:
    from urllib.parse import unquote, urlsplit

    path = unquote(urlsplit(uri).path) if "://" in uri else unquote(uri)
    if path.startswith(root):
        return path[len(root) :]
    if path.startswith("/"):
        return path[1:]
    return path


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("value is not valid base64") from None


class _Utf8Check:
    """Validates a stream as UTF-8 while it passes through, without holding it."""

    def __init__(self) -> None:
        self.valid = True
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.valid:
                try:
                    self._decoder.decode(chunk)
                except UnicodeDecodeError:
                    self.valid = False
            yield chunk
        if self.valid:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.valid = False


def _foreign_key_violation(exc: IntegrityError) -> bool:
    """Whether the database refused a row for its foreign key (PostgreSQL's SQLSTATE 23503,
    SQLite's message), not for a unique constraint."""
    if getattr(exc.orig, "sqlstate", None) == "23503":
        return True
    return "FOREIGN KEY constraint failed" in str(exc.orig)
