"""The store's transactions: the SQLite write gate and the Core read connection."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.errors import ServiceUnavailable
from gateway.store.db import Store
from gateway.store.models import Meta


def _store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'nimbo.db'}")
    store.create_schema()
    return store


def _hold_gate(database: Path, holding, release) -> None:  # type: ignore[no-untyped-def]
    """Child process: open a write transaction, say so, wait, then write and commit."""
    store = Store(f"sqlite:///{database}")
    with store.session(write=True) as session:
        holding.set()
        release.wait(30)
        session.add(Meta(key="child", value=1))
    store.dispose()


def test_a_second_write_transaction_on_one_thread_is_refused_not_deadlocked(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    with store.session(write=True) as outer:
        outer.add(Meta(key="outer", value=1))
        with (
            pytest.raises(RuntimeError, match="already open on this thread"),
            store.session(write=True),
        ):
            pass
    with store.session() as session:
        assert session.get(Meta, "outer") is not None  # the outer one still committed
    store.dispose()


def test_writers_in_other_processes_queue_on_the_gate_file(tmp_path: Path) -> None:
    database = tmp_path / "nimbo.db"
    store = _store(tmp_path)
    spawn = multiprocessing.get_context("spawn")
    holding, release = spawn.Event(), spawn.Event()
    child = spawn.Process(target=_hold_gate, args=(database, holding, release))
    child.start()
    try:
        assert holding.wait(60), "the child never opened its write transaction"
        gate = os.open(f"{database}.write-lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # held by the child, across processes
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(gate)
        release.set()
        with store.session(write=True) as session:  # waits for the child's commit
            assert session.get(Meta, "child") is not None
            session.add(Meta(key="parent", value=2))
    finally:
        release.set()
        child.join(60)
    assert child.exitcode == 0
    with store.read() as reader:
        keys = set(reader.scalars(select(Meta.__table__.c.key)))
    assert {"child", "parent"} <= keys
    store.dispose()


@pytest.mark.holds_two_connections
def test_a_read_connection_sees_each_new_commit_without_reopening(tmp_path: Path) -> None:
    store = _store(tmp_path)
    version = select(Meta.__table__.c.value).where(Meta.__table__.c.key == "v")
    with store.read() as reader:
        assert reader.scalar(version) is None
        with store.session(write=True) as session:
            session.add(Meta(key="v", value=7))
        assert reader.scalar(version) == 7  # no snapshot held between statements
    store.dispose()


@pytest.mark.holds_two_connections
def test_the_generation_changes_with_every_committed_write_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.read() as reader:
        first = store.generation(reader)
        with store.session() as session:
            session.get(Meta, "anything")
        assert store.generation(reader) == first  # a read changes nothing
        with store.session(write=True) as session:
            session.add(Meta(key="k", value=1))
        second = store.generation(reader)
        assert second != first
        with pytest.raises(ValueError), store.session(write=True) as session:
            session.add(Meta(key="rolled-back", value=1))
            raise ValueError("the transaction fails")
        assert store.generation(reader) == second  # nothing committed
    store.dispose()


def test_the_current_generation_sees_every_commit_of_any_process(database_url: str) -> None:
    """The cache's check without a read connection (current_generation): on SQLite a driver
    connection of the thread's own, on PostgreSQL a pooled one; both see what another
    store (another API process) committed, and nothing else."""
    store, other = Store(database_url), Store(database_url)
    store.create_schema()
    first = store.current_generation()
    assert store.current_generation() == first  # asking changes nothing
    with other.session(write=True) as session:
        session.add(Meta(key="from-elsewhere", value=1))
    second = store.current_generation()
    assert second != first
    with pytest.raises(ValueError), other.session(write=True) as session:
        session.add(Meta(key="rolled-back", value=1))
        raise ValueError("the transaction fails")
    assert store.current_generation() == second
    with store.read() as reader:
        assert store.generation(reader) == second  # the same value as a read's
    store.dispose()
    other.dispose()


def _generation_in_child(store: Store, answers) -> None:  # type: ignore[no-untyped-def]
    inherited = store._own.connection[1]
    generation = store.current_generation()
    pid, connection = store._own.connection
    answers.put((generation, pid == os.getpid() and connection is not inherited))


def test_a_forked_process_asks_on_a_connection_of_its_own(tmp_path: Path) -> None:
    """gunicorn forks its workers: a connection the parent's thread opened is not used in the
    child (SQLite connections must not cross a fork)."""
    store = _store(tmp_path)
    parent = store.current_generation()
    inherited = store._own.connection
    answers = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(
        target=_generation_in_child, args=(store, answers)
    )
    child.start()
    assert answers.get(timeout=30) == (parent, True)  # the same answer, on a new connection
    child.join(30)
    assert child.exitcode == 0
    assert store._own.connection is inherited  # the parent's is still its own
    with store.session(write=True) as session:
        session.add(Meta(key="k", value=1))
    assert store.current_generation() != parent
    store.dispose()


def test_changes_in_a_read_session_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(RuntimeError, match="read session"), store.session() as session:
        session.add(Meta(key="sneaky", value=1))
        session.flush()
    with store.session() as session:
        assert session.get(Meta, "sneaky") is None
    store.dispose()


@pytest.mark.holds_two_connections
def test_an_emptied_pool_is_service_unavailable_not_an_unhandled_error(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'nimbo.db'}", pool_timeout=0.1)
    store.create_schema()
    held = [store.engine.connect() for _ in range(15)]  # pool_size 5 + max_overflow 10
    try:
        with pytest.raises(ServiceUnavailable, match="every connection"), store.read():
            pass
    finally:
        for connection in held:
            connection.close()
    with store.read() as reader:  # and the store serves again once they are back
        assert reader.scalar(select(Meta.__table__.c.value).limit(1)) is not None
    store.dispose()
