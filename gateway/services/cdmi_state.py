"""The CDMI service's vocabulary: object states read from rows, the results and write reports
it hands the blueprint, the per-process read counts, and the statements every request runs,
built once (building a statement costs more than running it on SQLite).

Pure data and functions over rows; the service (:mod:`gateway.services.cdmi`) does the I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, insert, inspect, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from auth.principal import Principal
from cdmi import acl
from cdmi.model import ObjectState
from cdmi.request import CdmiType
from gateway.services.tenancy import Tenancy, acl_subject
from gateway.store.models import Base, CdmiObjectRow

ROOT_OWNER = "administrator"
T = CdmiObjectRow.__table__.c
NO_GROUP = object()  # a body that names no group
# The lookups every request makes, built once: building a statement costs more than running
# it on SQLite (benchmarks/cdmi_io.py, small objects).
SELECT_BY_PATH = select(CdmiObjectRow.__table__).where(T.path == bindparam("path"))
SELECT_BY_ID = select(CdmiObjectRow.__table__).where(T.id == bindparam("id"))
# A new object's path, its twin with or without the slash and its parent's, in one read.
SELECT_FAMILY = select(CdmiObjectRow.__table__).where(
    T.path.in_([bindparam("p0"), bindparam("p1"), bindparam("p2"), bindparam("p3")])
)
INSERT_OBJECT = insert(Base.metadata.tables["cdmi_objects"])
# The reads of objects counted (see AccessLog), one execution per object in one executemany.
UPDATE_ACCESSED = (
    update(Base.metadata.tables["cdmi_objects"])
    .where(T.id == bindparam("object_id"))
    .values(acount=T.acount + bindparam("reads"), atime=bindparam("moment"))
)
# (column, attribute) of every column: a new row's values for INSERT_OBJECT
ROW_COLUMNS = tuple(
    (attribute.columns[0].key, attribute.key) for attribute in inspect(CdmiObjectRow).column_attrs
)


Family = dict[str, RowMapping | None]  # rows by path, None where there is none (see _family)


def utc_now() -> datetime:
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
            count, _ = self.pending.get(object_id, (0, utc_now()))
            self.pending[object_id] = (count + 1, utc_now())

    def overlay(self, state: ObjectState) -> ObjectState:
        with self.lock:
            entry = self.pending.get(state.id)
        if entry is None:
            return state
        return replace(
            state, acount=state.acount + entry[0], atime=max(entry[1], utc_aware(state.atime))
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


def utc_aware(moment: datetime) -> datetime:
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
        ctime=utc_aware(get("ctime")),
        mtime=utc_aware(get("mtime")),
        atime=utc_aware(get("atime")),
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




def virtual_state(object_id: str, kind: str) -> ObjectState:
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


def foreign_key_violation(exc: IntegrityError) -> bool:
    """Whether the database refused a row for its foreign key (PostgreSQL's SQLSTATE 23503,
    SQLite's message), not for a unique constraint."""
    if getattr(exc.orig, "sqlstate", None) == "23503":
        return True
    return "FOREIGN KEY constraint failed" in str(exc.orig)
