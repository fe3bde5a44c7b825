"""The per-process entity cache: valid for one store generation, per principal, bounded."""

from __future__ import annotations

from gateway.services.entity_cache import EntityCache
from occi import infrastructure as infra
from occi.core import Resource


def _entity(entity_id: str) -> Resource:
    return Resource(id=entity_id, kind=infra.COMPUTE)


def test_entries_serve_only_the_generation_they_were_read_at() -> None:
    cache = EntityCache(10)
    cache.put(1, "alice", [_entity("a")])
    assert cache.get(1, "alice", "a") is not None
    assert cache.get(2, "alice", "a") is None
    cache.put(2, "alice", [_entity("b")])  # a newer read drops everything older
    assert cache.get(2, "alice", "a") is None
    assert cache.get(1, "alice", "b") is None


def test_entries_are_per_principal() -> None:
    cache = EntityCache(10)
    cache.put(1, "alice", [_entity("a")])
    assert cache.get(1, "bob", "a") is None
    assert set(cache.get_many(1, "alice", ["a", "x"])) == {"a"}


def test_the_oldest_entries_leave_first_and_zero_capacity_keeps_nothing() -> None:
    cache = EntityCache(2)
    cache.put(1, "alice", [_entity(i) for i in "abc"])
    assert set(cache.get_many(1, "alice", "abc")) == {"b", "c"}
    off = EntityCache(0)
    off.put(1, "alice", [_entity("a")])
    assert off.get(1, "alice", "a") is None
