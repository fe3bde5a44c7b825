"""The per-host load counters (gateway.store.host_load) on SQLite and PostgreSQL: kept by
the database through creates, resizes, moves, deletes (ORM and Core) and rollbacks; counted
when a store from before them is opened, installed once however often the schema is made;
and what placement reads through the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, func, select, text, update

from gateway.store.db import Store
from gateway.store.models import EntityRow, Host, User
from tests.gateway.conftest import (
    NodeFactory,
    compute_categories,
    entity_id,
    path_of,
    text_plain,
)

COMPUTE = "http://schemas.ogf.org/occi/infrastructure#compute"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.create_schema()
    with store.session(write=True) as session:
        session.add(User(name="u", password_hash="x"))
        session.add_all(
            Host(name=name, uri=f"memory://{name}", cores=64, memory_mib=65536)
            for name in ("h1", "h2")
        )
    yield store
    store.dispose()


def entity(id_: str, host: str | None, cores: int, memory_mib: int) -> EntityRow:
    return EntityRow(id=id_, kind=COMPUTE, owner="u", attributes={}, state="active",
                     host=host, cores=cores, memory_mib=memory_mib)


def counters(store: Store) -> dict[str, tuple[int, int]]:
    with store.session() as session:
        return {h.name: (h.cores_used, h.memory_used_mib)
                for h in session.scalars(select(Host).order_by(Host.name))}


def sums(store: Store) -> dict[str, tuple[int, int]]:
    found = {"h1": (0, 0), "h2": (0, 0)}
    with store.session() as session:
        for host, cores, memory in session.execute(
            select(EntityRow.host, func.sum(EntityRow.cores), func.sum(EntityRow.memory_mib))
            .where(EntityRow.host.is_not(None)).group_by(EntityRow.host)
        ):
            found[host] = (int(cores), int(memory))
    return found


def test_counters_follow_every_kind_of_write(store: Store) -> None:
    with store.session(write=True) as session:
        session.add_all([entity("a", "h1", 2, 2048), entity("b", "h1", 1, 512),
                         entity("c", "h2", 4, 4096), entity("s", "h2", 0, 0),
                         entity("unplaced", None, 8, 8192)])
    assert counters(store) == {"h1": (3, 2560), "h2": (4, 4096)}

    with store.session(write=True) as session:  # a resize, a move, an unchanged update
        a, c = session.get(EntityRow, "a"), session.get(EntityRow, "c")
        assert a is not None and c is not None
        a.cores, a.memory_mib = 6, 6144
        c.host = "h1"
        session.execute(update(EntityRow).where(EntityRow.id == "b").values(cores=1, state="x"))
    assert counters(store) == {"h1": (11, 10752), "h2": (0, 0)}

    with store.session(write=True) as session:  # an ORM delete and a Core delete
        b = session.get(EntityRow, "b")
        session.delete(b)
        session.execute(delete(EntityRow).where(EntityRow.id.in_(["c", "s", "unplaced"])))
    assert counters(store) == {"h1": (6, 6144), "h2": (0, 0)} == sums(store)


def test_a_rolled_back_write_leaves_the_counters_as_they_were(store: Store) -> None:
    with store.session(write=True) as session:
        session.add(entity("a", "h1", 2, 2048))
    with pytest.raises(RuntimeError), store.session(write=True) as session:
        session.add(entity("b", "h1", 4, 4096))
        session.flush()
        assert session.scalar(select(Host.cores_used).where(Host.name == "h1")) == 6
        raise RuntimeError("the create fails after its entity was flushed")
    assert counters(store) == {"h1": (2, 2048), "h2": (0, 0)}


def test_making_the_schema_again_installs_nothing_twice(store: Store) -> None:
    with store.session(write=True) as session:
        session.add(entity("a", "h1", 2, 2048))
    store.create_schema()
    store.create_schema()
    with store.session(write=True) as session:  # one trigger per write, not three
        session.add(entity("b", "h1", 1, 1024))
    assert counters(store) == {"h1": (3, 3072), "h2": (0, 0)} == sums(store)


def test_a_store_from_before_the_counters_gains_and_fills_them(database_url: str) -> None:
    store = Store(database_url)
    store.create_schema()
    with store.session(write=True) as session:
        session.add(User(name="u", password_hash="x"))
        session.add_all(Host(name=n, uri="memory://x", cores=8, memory_mib=8192)
                        for n in ("h1", "h2"))
    with store.session(write=True) as session:
        session.add_all([entity("a", "h1", 2, 2048), entity("b", "h1", 1, 1024)])
    with store.engine.begin() as connection:  # as the store was before the counters
        if store.is_sqlite:
            for trigger in ("insert", "delete", "update"):
                connection.exec_driver_sql(f"DROP TRIGGER nimbo_host_load_{trigger}")
        else:
            connection.exec_driver_sql("DROP TRIGGER nimbo_host_load ON entities")
        connection.execute(text("ALTER TABLE hosts DROP COLUMN cores_used"))
        connection.execute(text("ALTER TABLE hosts DROP COLUMN memory_used_mib"))
    store.dispose()

    reopened = Store(database_url)
    reopened.create_schema()
    assert counters(reopened) == {"h1": (3, 3072), "h2": (0, 0)}
    with reopened.session(write=True) as session:  # and the triggers are back
        session.add(entity("c", "h2", 4, 4096))
    assert counters(reopened) == {"h1": (3, 3072), "h2": (4, 4096)}
    reopened.dispose()


@pytest.mark.redis
def test_placement_through_the_api_reads_what_the_counters_say(make_node: NodeFactory) -> None:
    node = make_node({"one": "memory://one?cores=4&memory_mib=4096"})
    attributes = {"occi.compute.cores": 2, "occi.compute.memory": 2.0}
    first = node.create_compute(attributes=attributes)
    second = node.create_compute(attributes=attributes)
    refused = node.post_text(
        "/compute/", text_plain(compute_categories(), {"occi.compute.cores": 1})
    )
    assert refused.status_code == 503, refused.get_data(as_text=True)
    assert "largest free: 0 cores, 0 MiB on one" in refused.get_data(as_text=True)

    node.run_jobs()
    assert node.request("DELETE", path_of(first)).status_code in (200, 204)
    node.run_jobs()
    with node.store.session() as session:
        host = session.get(Host, "one")
        assert host is not None
        assert (host.cores_used, host.memory_used_mib) == (2, 2048)
    assert node.row(second) is not None and entity_id(second)
    third = node.create_compute(attributes=attributes)  # the room first had is free again
    assert node.row(third) is not None
