"""Engine and transactions. SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` so that a
create transaction (placement + rows) is serialised; PostgreSQL locks host rows instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import ServiceUnavailable
from gateway.store.models import Base


class Store:
    """The state store: an engine and a session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        with _translated():
            Base.metadata.create_all(self.engine)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception.

        ``write=True`` takes SQLite's write lock at the start (``BEGIN IMMEDIATE``) so that
        read-check-write sequences (placement, quotas, unique names) cannot interleave.
        """
        with _translated(), self._sessions() as session, session.begin():
            if write and self.is_sqlite:
                session.connection(execution_options={"nimbo_write": True})
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise ServiceUnavailable(f"state store unavailable: {exc.orig}") from exc
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
        write = connection.get_execution_options().get("nimbo_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
