"""The throwaway services of tests/services.py really run and answer."""

from __future__ import annotations

import pytest
import redis
import sqlalchemy

from tests.services import PostgresServer, RedisServer


@pytest.mark.redis
def test_redis_answers_ping_on_its_unix_socket(redis_server: RedisServer) -> None:
    assert redis_server.url == f"unix://{redis_server.socket_path}"
    assert redis_server.socket_path.is_socket()
    with redis_server.client() as client:
        assert client.ping() is True


@pytest.mark.redis
def test_redis_url_starts_empty(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0
        client.set("leftover", b"1")  # the next test must not see it


@pytest.mark.redis
def test_redis_url_is_flushed_between_tests(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.get("leftover") is None
        assert client.dbsize() == 0


@pytest.mark.redis
def test_redis_does_not_persist(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("port") == {"port": "0"}


@pytest.mark.postgres
def test_postgres_answers_select_through_sqlalchemy(postgres_server: PostgresServer) -> None:
    engine = sqlalchemy.create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select 1")).scalar_one() == 1
            database = conn.execute(sqlalchemy.text("select current_database()")).scalar_one()
            assert database == "nimbo"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_listens_on_no_tcp_address(postgres_server: PostgresServer) -> None:
    engine = sqlalchemy.create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            show = conn.execute(sqlalchemy.text("show listen_addresses")).scalar_one()
    finally:
        engine.dispose()
    assert show == ""
    assert (postgres_server.socket_dir / ".s.PGSQL.5432").is_socket()
