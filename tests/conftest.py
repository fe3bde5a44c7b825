"""Shared fixtures: throwaway real services (see tests/services.py).

The services start once per test session and only when a test asks for them. A fixture skips
its tests only when the service's program is not installed at all; ``scripts/setup`` installs
them, so under ``make test`` they always run.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import event
from sqlalchemy.pool import Pool

from tests.services import (
    PostgresServer,
    RedisServer,
    ServiceBinaryMissing,
    start_postgres,
    start_redis,
)


class _ConnectionHolders:
    """Which thread holds which pooled connection. A thread that takes a second connection
    while it holds one deadlocks once concurrent requests have emptied the pool (each holds
    one and waits for another): the gateway must never do it, and every test checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: dict[int, int] = {}  # id(connection record) -> thread ident
        self.second_takes: list[str] = []

    def checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        thread = threading.get_ident()
        with self._lock:
            if thread in self._holder.values():
                self.second_takes.append("".join(traceback.format_stack(limit=25)[:-1]))
            self._holder[id(record)] = thread

    def checkin(self, _dbapi: Any, record: Any) -> None:
        with self._lock:
            self._holder.pop(id(record), None)


_holders = _ConnectionHolders()
event.listen(Pool, "checkout", _holders.checkout)
event.listen(Pool, "checkin", _holders.checkin)


@pytest.fixture(autouse=True)
def _one_pooled_connection_per_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test during which any thread took a second pooled connection while it held
    one (see _ConnectionHolders); tests of the store itself that do so on purpose are marked
    ``holds_two_connections``."""
    _holders.second_takes.clear()
    yield
    taken, _holders.second_takes[:] = list(_holders.second_takes), []
    if taken and request.node.get_closest_marker("holds_two_connections") is None:
        pytest.fail(
            f"a thread took a second pooled connection while holding one ({len(taken)} "
            f"times); the first time from:\n{taken[0]}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on a unix socket, for the whole session."""
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except ServiceBinaryMissing as exc:
        pytest.skip(f"redis-server is not installed (run scripts/setup): {exc}")
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """URL of an empty Redis database, flushed before and after the test."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
        yield redis_server.url
        client.flushall()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster on a unix socket with an empty ``nimbo`` database."""
    tmpdir: Path = tmp_path_factory.mktemp("postgres")
    try:
        server = start_postgres(tmpdir)
    except ServiceBinaryMissing as exc:
        pytest.skip(f"PostgreSQL is not installed (run scripts/setup): {exc}")
    yield server
    server.stop()
