"""The audit log: who did what to which entity or object, when, from where, with what outcome.

What is recorded
    Every state-changing request (POST, PUT, DELETE, PATCH), whatever its answer, except 429
    (a flood the rate limits refused must not flood the log); every read refused with 401 that
    offered credentials (a failed login, with the user name tried: never a password or a
    token); admin commands of the ``nimbo`` CLI (:func:`record_command`). A record holds the
    principal and the source that vouched for it, the client address (behind
    ``auth_trusted_proxies`` from ``X-Forwarded-For``), method and path, an ``action``
    (``create``, ``update``, ``delete``, ``link``, ``unlink``, an OCCI action's term such as
    ``start``, ``associate``/``dissociate`` for mixin collections, ``mixin-add``/
    ``mixin-remove`` for the query interface, CDMI ``move``/``copy``, ``authenticate`` for a
    401), the entity (OCCI id, CDMI path or object ID) and its kind, the HTTP status and the
    ids of the operations the request queued for workers.

How it is written
    After the view has run, the record goes as one JSON string onto the Redis list
    :data:`PENDING` (one ``RPUSH``, a tenth of a millisecond: the store is not touched on the
    request path, so creates keep their latency). A flusher thread in each gunicorn worker
    moves what has gathered into the store's ``audit_log`` table every
    ``audit_flush_seconds``, in batches taken with ``LPOP count`` (atomic: processes never
    take the same record), in one transaction each; a worker flushes what is left when it
    exits, and an admin query flushes before it reads. When Redis cannot be reached the
    record is written to the store at once instead; when the store fails during a flush the
    batch goes back to the head of the list. Redis's append-only file (``nimbo up`` turns it
    on) keeps what is pending across a restart.

How it is read
    ``GET /admin/audit?user=&entity=&action=&since=&until=&limit=&cursor=`` (admins only;
    everyone else gets the 404 of a path that does not exist), newest first, JSON with a
    ``next`` link while more records match; ``nimbo audit`` prints the same as a table.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import redis
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    request,
)
from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.exc import SQLAlchemyError

from auth.flask import basic_credentials, current_principal
from gateway.config import Config
from gateway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NimboError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from gateway.hardening import base_url, client_address
from gateway.ratelimit import ADMITTED
from gateway.store.db import Store
from gateway.store.models import AuditRecord
from occi.infrastructure import KINDS, LINK

log = logging.getLogger(__name__)

PENDING = "nimbo:audit:pending"
BATCH = 500
DEFAULT_LIMIT = 100
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
QUERY_INTERFACE = ("/-/", "/.well-known/org/ogf/occi/-/")
KIND_TERMS = {k.location: k.term for k in KINDS if k.location}
LINK_LOCATIONS = frozenset(k.location for k in KINDS if k.location and k.is_a(LINK))
PRUNE_EVERY = 3600.0


@dataclass
class Entry:
    """One record before it reaches the store."""

    at: datetime
    method: str
    path: str
    action: str
    status: int
    principal: str = ""
    source: str = ""
    address: str = ""
    kind: str = ""
    entity: str = ""
    operations: list[str] = field(default_factory=list)
    detail: str = ""

    def _values(self) -> dict[str, Any]:
        """The fields by name (a shallow copy: ``asdict`` deep-copies, a cost on every
        request that changes something)."""
        values = {name: getattr(self, name) for name in _ENTRY_FIELDS}
        values["operations"] = list(self.operations)
        return values

    def to_json(self) -> str:
        return json.dumps({**self._values(), "at": self.at.isoformat()})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Entry:
        values = json.loads(raw)
        values["at"] = datetime.fromisoformat(values["at"])
        return cls(**values)

    def row(self) -> dict[str, Any]:
        values = self._values()
        values["at"] = self.at.astimezone(UTC)
        values["path"] = self.path[:1024]
        values["entity"] = self.entity[:1024]
        values["principal"] = self.principal[:255]
        values["address"] = self.address[:64]
        values["action"] = self.action[:64]
        values["kind"] = self.kind[:64]
        return values


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


# --- what a request did ---------------------------------------------------------------------


def note(**fields: str) -> None:
    """Let the view say what the request did where the URL does not tell (a CDMI move or
    copy): ``action``, ``kind``, ``entity``, ``detail``. Outside a request: nothing."""
    if has_request_context():
        g.setdefault("nimbo_audit", {}).update(fields)


def note_operation(operation_id: str) -> None:
    """An operation the current request queued (called by :class:`gateway.queue.JobQueue`)."""
    if has_request_context():
        g.setdefault("nimbo_audit_operations", []).append(operation_id)


def describe(
    method: str,
    path: str,
    *,
    status: int,
    location: str | None,
    query_action: str | None,
    cdmi_root: str,
) -> tuple[str, str, str]:
    """``(action, kind, entity)`` of a state-changing request, from its method, path, answer
    status and ``Location``."""
    created = _path_of(location) if location and status == 201 else None
    if path.startswith(cdmi_root) or path == cdmi_root.rstrip("/"):
        return _describe_cdmi(method, path, status, created, cdmi_root)
    if path in QUERY_INTERFACE:
        return ("mixin-add" if method != "DELETE" else "mixin-remove"), "category", ""
    prefix, _, last = path.rpartition("/")
    collection = prefix + "/"
    if query_action:
        if collection in KIND_TERMS and last:
            return query_action, KIND_TERMS[collection], last
        return query_action, KIND_TERMS.get(path, "collection"), path
    if collection in KIND_TERMS and last:  # an entity
        is_link = collection in LINK_LOCATIONS
        if method == "DELETE":
            return ("unlink" if is_link else "delete"), KIND_TERMS[collection], last
        verb = ("link" if is_link else "create") if status == 201 else "update"
        return verb, KIND_TERMS[collection], last
    if method == "POST" and (path == "/" or path in KIND_TERMS) and created:
        where, _, entity_id = created.rpartition("/")
        is_link = where + "/" in LINK_LOCATIONS
        return ("link" if is_link else "create"), KIND_TERMS.get(where + "/", ""), entity_id
    if path in KIND_TERMS:
        verb = "delete" if method == "DELETE" else _generic(method, status)
        return verb, KIND_TERMS[path], path
    if path.endswith("/") and path != "/":  # a mixin collection (user tags or templates)
        return ("dissociate" if method == "DELETE" else "associate"), "mixin", path
    first = path.strip("/").split("/", 1)[0]
    return _generic(method, status), first, created or path


def _describe_cdmi(
    method: str, path: str, status: int, created: str | None, root: str
) -> tuple[str, str, str]:
    below = path[len(root) :] if path.startswith(root) else ""
    kind = "container" if path.endswith("/") else "dataobject"
    entity = path
    if below.startswith("cdmi_objectid/"):
        entity = below.removeprefix("cdmi_objectid/").rstrip("/")
        kind = "object"
    if method == "DELETE":
        return "delete", kind, entity
    if status == 201 and created:
        return "create", ("container" if created.endswith("/") else "dataobject"), created
    return ("create" if status == 201 else "update"), kind, entity


def _generic(method: str, status: int) -> str:
    if method == "DELETE":
        return "delete"
    if method == "POST" or status == 201:
        return "create"
    return "update"


def _path_of(location: str) -> str:
    return urlsplit(location).path or location


def entry_for(response: Response, cdmi_root: str) -> Entry | None:
    """The record of the current request, or None when it is not one to keep."""
    status = response.status_code
    method = request.method
    offered = "Authorization" in request.headers or "X-Auth-Token" in request.headers
    if status == 429 or (method not in STATE_CHANGING and not (status == 401 and offered)):
        return None
    entry = Entry(
        at=datetime.now(UTC),
        method=method,
        path=request.path,
        action="authenticate",
        status=status,
        address=client_address(),
        operations=list(g.get("nimbo_audit_operations", ())),
    )
    principal = g.get("principal") or g.get(ADMITTED)  # the latter: views that authenticate
    if principal is not None:
        entry.principal, entry.source = principal.name, principal.source
    elif (basic := basic_credentials(request.headers.get("Authorization"))) is not None:
        entry.principal = basic[0]  # the name tried; the password is never read here
    if status != 401:
        entry.action, entry.kind, entry.entity = describe(
            method,
            request.path,
            status=status,
            location=response.headers.get("Location"),
            query_action=request.args.get("action"),
            cdmi_root=cdmi_root,
        )
    for name, value in g.get("nimbo_audit", {}).items():
        setattr(entry, name, value)
    return entry


# --- the log --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """Which records to read, newest first."""

    user: str | None = None
    entity: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    cursor: tuple[datetime, int] | None = None  # read records older than this one

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, page_max: int) -> Query:
        unknown = set(args) - {"user", "entity", "action", "since", "until", "limit", "cursor"}
        if unknown:
            raise InvalidRequest(
                f"unknown parameter(s) {', '.join(sorted(unknown))}; known: user, entity, "
                "action, since, until, limit, cursor"
            )
        raw_limit = args.get("limit", str(DEFAULT_LIMIT))
        if not re.fullmatch(r"[0-9]{1,9}", raw_limit) or int(raw_limit) < 1:
            raise InvalidRequest(f"limit must be a whole number from 1, not {raw_limit[:40]!r}")
        if int(raw_limit) > page_max:
            raise PayloadTooLarge(f"limit {raw_limit} is above the largest page, {page_max}")
        now = datetime.now(UTC)
        return cls(
            user=args.get("user") or None,
            entity=args.get("entity") or None,
            action=args.get("action") or None,
            since=parse_time(args["since"], now) if args.get("since") else None,
            until=parse_time(args["until"], now) if args.get("until") else None,
            limit=int(raw_limit),
            cursor=decode_cursor(args["cursor"]) if args.get("cursor") else None,
        )


_AGO = re.compile(r"([0-9]{1,9})\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, now: datetime) -> datetime:
    """ISO 8601 (``2024-05-01``, ``2024-05-01T12:00:00Z``; without a zone: UTC) or a time
    ago (``90s``, ``15m``, ``2h``, ``7d``)."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(
            f"{text[:60]!r} is no time: give ISO 8601 (2024-05-01T12:00:00Z) or an age "
            "(90s, 15m, 2h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def encode_cursor(at: datetime, record_id: int) -> str:
    raw = f"{_utc(at).isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, record_id = raw.split("|")
        return datetime.fromisoformat(at), int(record_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidRequest("cursor is not one this server gave out") from None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_document(row: AuditRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "time": _utc(row.at).isoformat().replace("+00:00", "Z"),
        "user": row.principal,
        "source": row.source,
        "address": row.address,
        "method": row.method,
        "path": row.path,
        "action": row.action,
        "kind": row.kind,
        "entity": row.entity,
        "status": row.status,
        "operations": list(row.operations or ()),
        "detail": row.detail,
    }


class AuditLog:
    """Records go to Redis first and to the store in batches (see the module's doc)."""

    def __init__(self, store: Store, connection: redis.Redis, config: Config) -> None:
        self.store = store
        self.connection = connection
        self.flush_seconds = max(1, config.audit_flush_seconds)
        self.retention_days = config.audit_retention_days
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = -PRUNE_EVERY

    def record(self, entry: Entry) -> None:
        """Keep ``entry``: on the Redis list, else straight in the store, else (both down)
        in the error log, so that it is not lost without a trace."""
        try:
            self.connection.rpush(PENDING, entry.to_json())
            return
        except redis.RedisError as exc:
            log.warning("audit: Redis cannot be reached (%s); writing to the store", exc)
        try:
            self._insert([entry])
        except (NimboError, SQLAlchemyError) as exc:
            log.error("audit record lost to the store (%s): %s", exc, entry.to_json())

    def flush(self, *, batch: int = BATCH) -> int:
        """Move every pending record into the store; the number moved. Raises
        ServiceUnavailable when Redis or the store cannot be reached (records not moved
        stay pending)."""
        moved = 0
        while True:
            try:
                raw: list[bytes] | None = self.connection.lpop(PENDING, batch)  # type: ignore[assignment]
            except redis.RedisError as exc:
                raise ServiceUnavailable(f"audit log: Redis cannot be reached: {exc}") from exc
            if not raw:
                break
            try:
                self._insert([entry for item in raw if (entry := _parse(item)) is not None])
            except BaseException:
                self._restore(raw)
                raise
            moved += len(raw)
            if len(raw) < batch:
                break
        self._prune()
        return moved

    def _insert(self, entries: Sequence[Entry]) -> None:
        if entries:
            with self.store.session(write=True) as session:
                session.execute(insert(AuditRecord), [e.row() for e in entries])

    def _restore(self, raw: list[bytes]) -> None:
        try:
            self.connection.lpush(PENDING, *reversed(raw))
        except redis.RedisError as exc:
            for item in raw:
                log.error("audit record lost (%s): %s", exc, item.decode(errors="replace"))

    def _prune(self) -> None:
        now = time.monotonic()
        if self.retention_days <= 0 or now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        cutoff = datetime.now(UTC) - timedelta(days=self.retention_days)
        with self.store.session(write=True) as session:
            session.execute(delete(AuditRecord).where(AuditRecord.at < cutoff))

    def query(self, query: Query) -> tuple[list[AuditRecord], str | None]:
        """Matching records, newest first, and the cursor of the next page (None: no more)."""
        statement = select(AuditRecord).order_by(AuditRecord.at.desc(), AuditRecord.id.desc())
        if query.user is not None:
            statement = statement.where(AuditRecord.principal == query.user)
        if query.entity is not None:
            statement = statement.where(
                or_(AuditRecord.entity == query.entity, AuditRecord.path == query.entity)
            )
        if query.action is not None:
            statement = statement.where(AuditRecord.action == query.action)
        if query.since is not None:
            statement = statement.where(AuditRecord.at >= _utc(query.since))
        if query.until is not None:
            statement = statement.where(AuditRecord.at < _utc(query.until))
        if query.cursor is not None:
            at, record_id = _utc(query.cursor[0]), query.cursor[1]
            statement = statement.where(
                or_(AuditRecord.at < at, and_(AuditRecord.at == at, AuditRecord.id < record_id))
            )
        with self.store.session() as session:
            rows = list(session.scalars(statement.limit(query.limit + 1)))
        if len(rows) <= query.limit:
            return rows, None
        rows = rows[: query.limit]
        return rows, encode_cursor(rows[-1].at, rows[-1].id)

    # --- the flusher thread -----------------------------------------------------------------

    def start(self) -> None:
        """Flush every ``audit_flush_seconds`` in a daemon thread (one per process)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-flusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is left."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=self.flush_seconds + 30)
            self._thread = None
        try:
            self.flush()
        except NimboError as exc:
            log.warning("audit: records stay pending in Redis: %s", exc.message)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except (NimboError, SQLAlchemyError) as exc:
                log.warning("audit: flush failed, will retry: %s", exc)


def _parse(item: bytes) -> Entry | None:
    try:
        return Entry.from_json(item)
    except (ValueError, TypeError, KeyError) as exc:
        log.error("audit: dropping a malformed pending record (%s): %r", exc, item[:200])
        return None


def local_entry(
    command: str,
    action: str,
    *,
    kind: str,
    entity: str = "",
    status: int = 0,
    detail: str = "",
    method: str = "CLI",
    source: str = "cli",
) -> Entry:
    """The record of something done on this machine rather than asked over HTTP: by the
    operating-system user the process runs as, ``command`` (``nimbo users add``) as the path,
    its exit status (0: done) as the status."""
    return Entry(
        at=datetime.now(UTC),
        method=method,
        path=command,
        action=action,
        status=status,
        principal=getpass.getuser(),
        source=source,
        address="local",
        kind=kind,
        entity=entity,
        detail=detail,
    )


def record_command(
    store: Store,
    command: str,
    action: str,
    *,
    kind: str,
    entity: str,
    status: int = 0,
    detail: str = "",
) -> None:
    """Record an admin command of the ``nimbo`` CLI at once (no request, no Redis): see
    :func:`local_entry`."""
    entry = local_entry(command, action, kind=kind, entity=entity, status=status, detail=detail)
    with store.session(write=True) as session:
        session.execute(insert(AuditRecord), [entry.row()])


# --- Flask ----------------------------------------------------------------------------------

bp = Blueprint("audit", __name__)
ADMIN_AUDIT = "/admin/audit"


def init_app(app: Flask, audit: AuditLog, cdmi_root: str) -> None:
    """Record the requests of ``app`` and serve ``/admin/audit``."""
    app.extensions["nimbostratus.audit"] = audit

    @app.after_request
    def _audit(response: Response) -> Response:
        entry = entry_for(response, cdmi_root)
        if entry is not None:
            audit.record(entry)
        return response

    app.register_blueprint(bp)


def _audit_of(app: object) -> AuditLog | None:
    """The audit log of a gunicorn worker's WSGI app: None for an app that is not a gateway
    (the benchmarks' baselines run under the same gunicorn settings)."""
    extensions = getattr(app, "extensions", None)
    return extensions.get("nimbostratus.audit") if isinstance(extensions, dict) else None


def start_flusher(app: object) -> None:
    """Called by gunicorn in each worker once the app is loaded (gateway.gunicorn_conf)."""
    audit = _audit_of(app)
    if audit is not None:
        audit.start()


def stop_flusher(app: object) -> None:
    """Called by gunicorn as a worker exits: nothing recorded stays behind in memory."""
    audit = _audit_of(app)
    if audit is not None:
        audit.stop()


@bp.route(ADMIN_AUDIT, methods=["GET", "POST", "PUT", "DELETE"])
def admin_audit() -> Response:
    if not current_principal().is_admin:
        raise NotFound(f"nothing at {request.path}")
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"{request.method} is not allowed here", ("GET", "HEAD"))
    audit: AuditLog = current_app.extensions["nimbostratus.audit"]
    query = Query.from_args(request.args, page_max=current_app.config["NIMBO_PAGE_DEFAULT"])
    document: dict[str, Any] = {}
    try:
        audit.flush()
    except ServiceUnavailable as exc:
        document["warning"] = f"the newest records may be missing: {exc.message}"
    rows, cursor = audit.query(query)
    document["records"] = [as_document(row) for row in rows]
    document["next"] = _next_link(cursor) if cursor else None
    return Response(json.dumps(document) + "\n", mimetype="application/json")


def _next_link(cursor: str) -> str:
    args = {k: v for k, v in request.args.items() if k != "cursor"}
    return f"{base_url().rstrip('/')}{ADMIN_AUDIT}?{urlencode({**args, 'cursor': cursor})}"
