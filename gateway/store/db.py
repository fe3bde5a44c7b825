"""Engine and transactions.

SQLite gets WAL, ``BEGIN IMMEDIATE`` for write transactions (a create's placement and rows are
serialised) and a :class:`WriteGate` in front of them; PostgreSQL locks host rows instead.
Reads that only render go through :meth:`Store.read`: a Core connection without the ORM's
per-statement cost and, on SQLite, without a transaction (WAL readers never wait).

:meth:`Store.generation` changes whenever any write transaction commits, so a process may keep
what it read for as long as the generation it read it at is current (see
:mod:`gateway.services.entity_cache`). Writes happen only in ``session(write=True)``; a flush in
any other session is a programming error and raises.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DefaultClause, create_engine, event, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateColumn, CreateIndex

from gateway.errors import ConfigurationError, ServiceUnavailable
from gateway.store import host_load, quota_use
from gateway.store.models import Base, Meta

GENERATION = "generation"
RETIRED_INDEXES = (
    "ix_entities_owner_load",
    "ix_cdmi_objects_owner_kind_size",
    "ix_cdmi_objects_group_kind_size",
)
"""Indexes stores made before gateway.store.quota_use have (the quota check summed from them);
nothing reads them now and every write paid for them: :meth:`Store.create_schema` drops
them."""
# Any number fits the advisory lock; this one is "nimbo" in ASCII.
_POSTGRES_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(474901235311)"
_META = Meta.__table__.c
_BUMP = update(Meta).where(Meta.key == GENERATION).values(value=Meta.value + 1)
_SQLITE_GENERATION = select(_META.value).where(_META.key == GENERATION)
# PostgreSQL: the snapshot (xmin:xmax:in-progress xids) changes with every write transaction
# that starts or ends, and equal snapshots see the same commits: a generation without a hot row.
_POSTGRES_GENERATION = text("SELECT pg_current_snapshot()::text")


class WriteGate:
    """Queues the writers of one SQLite file in the kernel rather than in SQLite.

    SQLite lets one writer in at a time; the others retry in its busy handler, which sleeps
    1, 2, 5, 10 … 100 ms between attempts. Under a burst of creates (API processes and the
    worker writing back states) those sleeps, not the work, made the tail latency. Here every
    writer first takes an exclusive ``flock`` on ``<database>.write-lock``, held for the
    transaction and handed to the next waiter the moment it is released; inside a process a
    lock orders the threads. ``flock`` is per open file, so the threads share one descriptor.
    """

    def __init__(self, database: Path | None) -> None:
        self._lock = threading.Lock()
        self._path = database.with_name(database.name + ".write-lock") if database else None
        self._fd: int | None = None
        self._pid = -1
        self._owner = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        if getattr(self._owner, "inside", False):
            # A second write transaction on this thread would wait for the first forever.
            raise RuntimeError("a write transaction is already open on this thread")
        with self._lock:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._owner.inside = True
            try:
                yield
            finally:
                self._owner.inside = False
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None or os.getpid() != self._pid:  # a fork (gunicorn) gets its own
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        return self._fd


class Store:
    """The state store: an engine and a session factory."""

    def __init__(self, url: str, *, pool_timeout: float = 30.0) -> None:
        """``pool_timeout``: seconds a thread waits for a free pooled connection before the
        store answers ServiceUnavailable."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        database: Path | None = None
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                database = Path(path)
                database.parent.mkdir(parents=True, exist_ok=True)
                kwargs["pool_timeout"] = pool_timeout  # (a :memory: database has no queue)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_timeout"] = pool_timeout
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._gate = WriteGate(database) if self.is_sqlite else None
        self._database = database
        self._own = threading.local()  # per thread: (pid, driver connection), see below
        event.listen(self._sessions, "before_flush", _refuse_flush_outside_writes)
        self._generation_sql = str(
            (_SQLITE_GENERATION if self.is_sqlite else _POSTGRES_GENERATION).compile(
                self.engine, compile_kwargs={"literal_binds": True}
            )
        )

    def create_schema(self) -> None:
        """The tables, and what a store made by an older version lacks (columns, indexes,
        triggers), by one schema writer at a time: on SQLite the write gate queues the
        processes that start together, on PostgreSQL an advisory lock held to the end of the
        transaction."""
        with _translated():
            Base.metadata.create_all(self.engine)
            gate = self._gate.held() if self._gate is not None else _nothing()
            with gate, self.engine.begin() as connection:
                if not self.is_sqlite:
                    connection.exec_driver_sql(_POSTGRES_SCHEMA_LOCK)
                self._add_new_columns(connection)
                for index in RETIRED_INDEXES:
                    connection.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
                host_load.install(connection)
                quota_use.install(connection)
        if self.is_sqlite:
            with self.session(write=True) as session:
                if session.get(Meta, GENERATION) is None:
                    session.add(Meta(key=GENERATION, value=0))

    def _add_new_columns(self, connection: Connection) -> None:
        """Columns and indexes a model gained after its table was made (``create_all`` makes
        only missing tables): added, in the caller's transaction. Only nullable columns and
        columns with a server default can be added to a table that holds rows; any other is
        a ConfigurationError naming it."""
        inspector = inspect(connection)
        quote = self.engine.dialect.identifier_preparer
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            new = [c for c in table.columns if c.name not in have]
            for column in new:
                default = column.server_default
                if not column.nullable and not isinstance(default, DefaultClause):
                    raise ConfigurationError(
                        f"the store's table {table.name} lacks column {column.name}, which "
                        "cannot be added to existing rows; migrate it by hand"
                    )
                # name, type, default and NULL-ness as create_all would have made them
                spec = CreateColumn(column).compile(dialect=self.engine.dialect)
                # Another process may add it first: SQLite's are queued by the gate,
                # PostgreSQL's wait for its lock and then find the column.
                guard = "" if self.is_sqlite else "IF NOT EXISTS "
                connection.exec_driver_sql(
                    f"ALTER TABLE {quote.format_table(table)} ADD COLUMN {guard}{spec}"
                )
            indexed = {i["name"] for i in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in indexed:  # new, or on a new column
                    connection.execute(CreateIndex(index, if_not_exists=True))

    def generation(self, reader: Connection) -> object:
        """A value that differs after every committed write (compare, never order).

        Asked on every read, so it goes straight to the driver (a fifth of a Core statement's
        cost); ``reader`` runs without a transaction, so the driver sees the newest commit."""
        return self._generation_on(reader.connection.dbapi_connection)

    def current_generation(self) -> object:
        """:meth:`generation` without a :meth:`read` connection, for a read that a cache may
        answer whole (the read is opened only when the cache misses).

        A SQLite file is asked on a driver connection each thread keeps for this query alone
        (6 us against 20 us for a pool checkout and 45 us for a :meth:`read`); it runs in
        autocommit and only reads, so it holds no lock between calls. PostgreSQL
        connections are too dear to keep one more per thread: there a pooled driver
        connection is checked out."""
        if self._database is not None:
            return self._generation_on(self._own_connection(self._database))
        with _translated():
            dbapi_connection = self.engine.raw_connection()
        try:
            return self._generation_on(dbapi_connection)
        finally:
            dbapi_connection.close()  # back to the pool, reset (no transaction is left open)

    def _own_connection(self, database: Path) -> sqlite3.Connection:
        own: tuple[int, sqlite3.Connection] | None = getattr(self._own, "connection", None)
        if own is None or own[0] != os.getpid():  # none yet, or one from before a fork
            try:
                connection = sqlite3.connect(
                    database, timeout=30, isolation_level=None, check_same_thread=False
                )
            except sqlite3.Error as exc:
                raise ServiceUnavailable(f"state store unavailable: {exc}") from exc
            own = (os.getpid(), connection)
            self._own.connection = own
        return own[1]

    def _generation_on(self, dbapi_connection: Any) -> object:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self._generation_sql)
            row = cursor.fetchone()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raise ServiceUnavailable(f"state store unavailable: {exc}") from exc
        finally:
            cursor.close()
        return row[0] if row else None

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception.

        ``write=True`` takes SQLite's write lock at the start (``BEGIN IMMEDIATE``) so that
        read-check-write sequences (placement, quotas, unique names) cannot interleave.
        """
        if write and self._gate is not None:
            with self._gate.held(), self._session(write=True) as session:
                yield session
        else:
            with self._session(write=write) as session:
                yield session

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[Session]:
        with _translated(), self._sessions() as session, session.begin():
            session.info["write"] = write
            if write and self.is_sqlite:
                session.connection(execution_options={"nimbo_write": True})
            yield session
            if write and self.is_sqlite:
                # in the transaction: the new generation commits with it. Core on the
                # session's connection: through the ORM, synchronising the session with
                # the UPDATE took a third of an empty write transaction's CPU (100 us)
                session.connection().execute(_BUMP)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A Core connection for reads that build responses: Core statements cost a tenth of
        ORM ones. SQLite runs each statement on the newest commit (no BEGIN); PostgreSQL in
        autocommit, so no transaction is opened either."""
        with _translated(), self.engine.connect() as connection:
            if self.is_sqlite:
                yield connection.execution_options(nimbo_read=True)
            else:
                yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _refuse_flush_outside_writes(session: Session, _context: Any, _instances: Any) -> None:
    if not session.info.get("write") and (session.new or session.dirty or session.deleted):
        raise RuntimeError("changes made in a read session; use Store.session(write=True)")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise ServiceUnavailable(f"state store unavailable: {exc.orig}") from exc
    except PoolTimeout as exc:
        raise ServiceUnavailable(
            "state store busy: every connection of this process is in use; retry shortly"
        ) from exc
    except SQLAlchemyError:
        raise


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN IMMEDIATE works.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("nimbo_read", False):
            return  # autocommit: every SELECT sees the newest commit
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("nimbo_write") else "BEGIN")
