"""Shared fixtures: throwaway real services (see tests/services.py).

The services start once per test session and only when a test asks for them. A fixture skips
its tests only when the service's program is not installed at all; ``scripts/setup`` installs
them, so under ``make test`` they always run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.services import (
    PostgresServer,
    RedisServer,
    ServiceBinaryMissing,
    start_postgres,
    start_redis,
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
