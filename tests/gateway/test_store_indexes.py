"""Indexes a model gains reach stores made before them, and the quota use of a holder's
computes is read from its counters by primary key (no entity visited, however many computes it
has; see gateway.store.quota_use)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text

from gateway.config import Config
from gateway.services.quotas import Quotas
from gateway.store.db import RETIRED_INDEXES, Store
from gateway.store.models import EntityRow, User

COMPUTE = "http://schemas.ogf.org/occi/infrastructure#compute"
STORAGE = "http://schemas.ogf.org/occi/infrastructure#storage"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.create_schema()
    yield store
    store.dispose()


def indexes(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return {str(i["name"]) for i in inspect(connection).get_indexes("entities")}


def test_a_store_made_before_an_index_gains_it(store: Store, database_url: str) -> None:
    assert {"ix_entities_owner_kind", "ix_entities_group_load"} <= indexes(store)
    with store.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_entities_group_load"))
    store.dispose()
    reopened = Store(database_url)
    reopened.create_schema()
    reopened.create_schema()  # and making it again finds it there
    assert "ix_entities_group_load" in indexes(reopened)
    reopened.dispose()


def test_the_indexes_of_the_old_quota_sums_are_dropped(store: Store, database_url: str) -> None:
    """Stores made before the quota counters had indexes for the sums; every write paid for
    them and nothing reads them now."""
    with store.engine.begin() as connection:
        connection.execute(
            text("CREATE INDEX ix_entities_owner_load ON entities (owner, kind, cores, memory_mib)")
        )
        for holder in ("owner", "group"):
            connection.execute(
                text(
                    f"CREATE INDEX ix_cdmi_objects_{holder}_kind_size "
                    f'ON cdmi_objects ("{holder}", kind, size)'
                )
            )
    store.dispose()
    reopened = Store(database_url)
    reopened.create_schema()
    with reopened.engine.connect() as connection:
        cdmi = {str(i["name"]) for i in inspect(connection).get_indexes("cdmi_objects")}
    assert not set(RETIRED_INDEXES) & (indexes(reopened) | cdmi)
    assert "ix_entities_owner_kind" in indexes(reopened)
    reopened.dispose()


def test_quota_use_counts_computes_and_storage_of_the_holder(store: Store, tmp_path: Path) -> None:
    with store.session(write=True) as session:
        session.add_all([User(name="u", password_hash="x"), User(name="v", password_hash="x")])
    with store.session(write=True) as session:
        session.add_all(
            [
                EntityRow(
                    id="c1",
                    kind=COMPUTE,
                    owner="u",
                    group="g",
                    attributes={},
                    state="active",
                    cores=2,
                    memory_mib=1536,
                ),
                EntityRow(
                    id="c2",
                    kind=COMPUTE,
                    owner="u",
                    attributes={},
                    state="active",
                    cores=1,
                    memory_mib=512,
                ),
                EntityRow(
                    id="s1",
                    kind=STORAGE,
                    owner="u",
                    group="g",
                    attributes={"occi.storage.size": 2.5},
                    state="online",
                ),
                EntityRow(
                    id="c3",
                    kind=COMPUTE,
                    owner="v",
                    group="g",
                    attributes={},
                    state="active",
                    cores=4,
                    memory_mib=4096,
                ),
            ]
        )
    quotas = Quotas(Config({"data_dir": str(tmp_path)}))
    resources = ["instances", "cores", "memory", "storage"]
    with store.session() as session:
        assert quotas.use(session, ("user", "u"), resources) == {
            "instances": 2.0,
            "cores": 3.0,
            "memory": 2.0,
            "storage": 2.5,
        }
        assert quotas.use(session, ("group", "g"), resources) == {
            "instances": 2.0,
            "cores": 6.0,
            "memory": 5.5,
            "storage": 2.5,
        }
        assert quotas.use(session, ("user", "v"), ["storage"]) == {"storage": 0.0}


def test_a_holders_compute_use_is_read_by_primary_key(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'nimbo.db'}")
    store.create_schema()
    quotas = Quotas(Config({"data_dir": str(tmp_path)}))
    for holder in (("user", "u"), ("group", "g")):
        sent: list[tuple[str, Any]] = []

        def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            sent.append((statement, parameters))  # noqa: B023 (used before the loop goes on)

        event.listen(store.engine, "before_cursor_execute", keep)
        try:
            with store.session() as session:
                quotas.use(session, holder, ["instances", "cores", "memory"])
        finally:
            event.remove(store.engine, "before_cursor_execute", keep)
        ((statement, parameters),) = [s for s in sent if s[0] != "BEGIN"]  # (SQLite's own)
        assert "FROM quota_use" in statement and "entities" not in statement, statement
        with store.engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        steps = " ".join(str(step) for step in plan)
        assert "USING INDEX sqlite_autoindex_quota_use_1 (scope=? AND name=?)" in steps, plan
    store.dispose()
