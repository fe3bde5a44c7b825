"""The quota counters (gateway.store.quota_use) on SQLite and PostgreSQL: after random
sequences of writes, row by row (ORM and Core: owner, group, kind, size changes, cascades) and
through the OCCI and CDMI APIs (creates, resizes, regroupings, CDMI writes that grow and shrink,
copies, moves, snapshots, deletes), they equal a recount by the sums the quota check ran
before; counted on first install; unchanged by a rollback and by rows that hold nothing; and
Quotas.use() reads them instead of the rows."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.orm import Session

from gateway.config import Config
from gateway.services.quotas import RESOURCES, Quotas
from gateway.services.tenancy import GROUP_ATTRIBUTE
from gateway.store.db import Store
from gateway.store.models import CdmiObjectRow, EntityRow, QuotaUse, User
from gateway.store.quota_use import COUNTED
from tests.gateway.cdmi_client import CONTAINER, Cdmi
from tests.gateway.conftest import (
    INFRA,
    RESOURCE_SCHEME,
    Node,
    NodeFactory,
    basic,
    category,
    compute_categories,
    path_of,
    text_plain,
)
from tests.gateway.test_quota_concurrency import Answer, at_once

COMPUTE = f"{INFRA}compute"
STORAGE = f"{INFRA}storage"
NETWORK = f"{INFRA}network"
LINK = f"{INFRA}networkinterface"
KINDS = (COMPUTE, COMPUTE, STORAGE, STORAGE, NETWORK, LINK)
OWNERS = ("u", "v", "w")
GROUPS = (None, "g", "h")
Key = tuple[str, str, str]  # scope, name, resource


# --- the recount: the sums Quotas.use() ran before the counters -------------------------


def recount(session: Session) -> dict[Key, float]:
    """Every holder's use summed from the rows, by the queries of the quota check before the
    counters (grouped by holder instead of one holder at a time)."""
    found: dict[Key, float] = {}
    size = EntityRow.attributes["occi.storage.size"].as_float()
    for scope, entity_holder, object_holder in (
        ("user", EntityRow.owner, CdmiObjectRow.owner),
        ("group", EntityRow.group, CdmiObjectRow.group),
    ):
        for name, instances, cores, memory in session.execute(
            select(entity_holder, func.count(), func.coalesce(func.sum(EntityRow.cores), 0),
                   func.coalesce(func.sum(EntityRow.memory_mib), 0))
            .where(entity_holder.is_not(None), EntityRow.kind == COMPUTE)
            .group_by(entity_holder)
        ):
            found[(scope, name, "instances")] = instances
            found[(scope, name, "cores")] = cores
            found[(scope, name, "memory")] = memory / 1024
        for name, storage in session.execute(
            select(entity_holder, func.coalesce(func.sum(size), 0.0))
            .where(entity_holder.is_not(None), EntityRow.kind == STORAGE)
            .group_by(entity_holder)
        ):
            found[(scope, name, "storage")] = storage
        for name, cdmi_bytes in session.execute(
            select(object_holder, func.coalesce(func.sum(CdmiObjectRow.size), 0))
            .where(object_holder.is_not(None), CdmiObjectRow.kind == "dataobject")
            .group_by(object_holder)
        ):
            found[(scope, name, "cdmi_bytes")] = cdmi_bytes
    return {key: float(amount) for key, amount in found.items() if amount}


def counted(session: Session) -> dict[Key, float]:
    return {(r.scope, r.name, r.resource): r.amount for r in session.scalars(select(QuotaUse))}


def differences(store: Store) -> dict[Key, tuple[float, float]]:
    """(counter, recount) of every key where they differ (nothing: the counters are right)."""
    with store.session() as session:
        have, want = counted(session), recount(session)
    return {
        key: (have.get(key, 0.0), want.get(key, 0.0))
        for key in sorted(have.keys() | want.keys())
        if abs(have.get(key, 0.0) - want.get(key, 0.0)) > 1e-9
    }


# --- row by row -----------------------------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.create_schema()
    with store.session(write=True) as session:
        session.add_all(User(name=name, password_hash="x") for name in OWNERS)
    yield store
    store.dispose()


def entity(id_: str, kind: str, owner: str = "u", group: str | None = None, *, cores: int = 0,
           memory_mib: int = 0, size: float | None = None) -> EntityRow:
    attributes: dict[str, Any] = {"occi.core.title": id_}
    if size is not None:
        attributes["occi.storage.size"] = size
    return EntityRow(id=id_, kind=kind, owner=owner, group=group, attributes=attributes,
                     state="active", cores=cores, memory_mib=memory_mib)


def cdmi_object(id_: str, kind: str, parent: str | None, owner: str = "u",
                group: str | None = None, size: int = 0) -> CdmiObjectRow:
    return CdmiObjectRow(id=id_, kind=kind, parent_id=parent, name=id_, path=None,
                         owner=owner, group=group, size=size)


class RandomWrites:
    """Random writes of entity and CDMI rows, half through the ORM and half as Core
    statements, on whatever rows exist."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.made = 0

    def new_id(self) -> str:
        self.made += 1
        return f"r{self.made}"

    def step(self, session: Session) -> None:
        rng = self.rng
        entities = list(session.scalars(select(EntityRow.id).order_by(EntityRow.id)))
        objects = list(session.execute(
            select(CdmiObjectRow.id, CdmiObjectRow.kind).order_by(CdmiObjectRow.id)
        ))
        containers = [i for i, kind in objects if kind == "container"]
        choice = rng.choice(["entity", "entity", "object", "object", "change", "change",
                             "change_object", "change_object", "delete", "delete_object"])
        if choice == "entity" or (choice in ("change", "delete") and not entities):
            session.add(self.random_entity())
        elif choice == "object" or (choice in ("change_object", "delete_object") and not objects):
            kind = rng.choice(["container", "dataobject", "dataobject"])
            parent = rng.choice([None, *containers])
            session.add(cdmi_object(self.new_id(), kind, parent, rng.choice(OWNERS),
                                    rng.choice(GROUPS), rng.randrange(0, 5000)))
        elif choice == "change":
            self.change_entity(session, rng.choice(entities))
        elif choice == "change_object":
            self.change_object(session, rng.choice(objects)[0])
        elif choice == "delete":
            doomed = rng.sample(entities, min(len(entities), rng.randint(1, 3)))
            session.execute(delete(EntityRow).where(EntityRow.id.in_(doomed)))
        else:  # a container takes its subtree with it (ON DELETE CASCADE)
            doomed_id = rng.choice(objects)[0]
            if rng.random() < 0.5:
                session.execute(delete(CdmiObjectRow).where(CdmiObjectRow.id == doomed_id))
            else:
                session.delete(session.get(CdmiObjectRow, doomed_id))

    def random_entity(self) -> EntityRow:
        rng = self.rng
        kind = rng.choice(KINDS)
        return entity(
            self.new_id(), kind, rng.choice(OWNERS), rng.choice(GROUPS),
            cores=rng.randint(1, 8) if kind == COMPUTE else 0,
            memory_mib=rng.choice([512, 1024, 1536, 4096]) if kind == COMPUTE else 0,
            size=rng.choice([0.5, 1.0, 2.5, 0.1, 0.2, 10.0]) if kind == STORAGE else None,
        )

    def change_entity(self, session: Session, id_: str) -> None:
        rng = self.rng
        column = rng.choice(["owner", "group", "kind", "cores", "memory_mib", "size", "title"])
        values: dict[str, Any] = {
            "owner": rng.choice(OWNERS), "group": rng.choice(GROUPS), "kind": rng.choice(KINDS),
            "cores": rng.randint(0, 16), "memory_mib": rng.choice([0, 512, 2048, 8192]),
        }
        row = session.get(EntityRow, id_)
        assert row is not None
        if column in ("size", "title"):
            attributes = dict(row.attributes)
            if column == "size":
                attributes["occi.storage.size"] = rng.choice([0.3, 1.5, 4.0, 0.7])
            else:
                attributes["occi.core.title"] = f"t{rng.random()}"
            values = {"attributes": attributes}
        else:
            values = {column: values[column]}
        if rng.random() < 0.5:
            session.execute(update(EntityRow).where(EntityRow.id == id_).values(**values))
            session.expire(row)
        else:
            for name, value in values.items():
                setattr(row, name, value)

    def change_object(self, session: Session, id_: str) -> None:
        rng = self.rng
        column = rng.choice(["owner", "group", "kind", "size", "size", "mimetype"])
        value = {"owner": rng.choice(OWNERS), "group": rng.choice(GROUPS),
                 "kind": rng.choice(["container", "dataobject"]),
                 "size": rng.randrange(0, 9000), "mimetype": "text/x-changed"}[column]
        if rng.random() < 0.5:
            session.execute(
                update(CdmiObjectRow).where(CdmiObjectRow.id == id_).values({column: value})
            )
            session.expire_all()
        else:
            row = session.get(CdmiObjectRow, id_)
            assert row is not None
            setattr(row, column, value)


def test_counters_equal_a_recount_after_random_row_writes(store: Store) -> None:
    writes = RandomWrites(seed=20240611)
    for transaction in range(60):
        with store.session(write=True) as session:
            for _ in range(writes.rng.randint(1, 6)):
                writes.step(session)
                session.flush()
        assert differences(store) == {}, f"after transaction {transaction}"
    with store.session() as session:
        # the sequence did reach every resource of users and groups
        assert {(scope, resource) for scope, _, resource in recount(session)} == {
            (scope, resource) for scope in ("user", "group") for resource in COUNTED
        }


def test_first_install_counts_the_rows_of_a_store_from_before_the_counters(
    database_url: str, store: Store
) -> None:
    writes = RandomWrites(seed=7)
    with store.session(write=True) as session:
        for _ in range(80):
            writes.step(session)
            session.flush()
    with store.session() as session:
        before = recount(session)
    assert len(before) > 10
    with store.engine.begin() as connection:  # as the store was before the counters
        for table in ("entities", "cdmi_objects"):
            for trigger in ("insert", "delete", "update"):
                if store.is_sqlite:
                    connection.exec_driver_sql(f"DROP TRIGGER nimbo_quota_use_{table}_{trigger}")
                else:
                    connection.exec_driver_sql(f"DROP TRIGGER nimbo_quota_use_{trigger} ON {table}")
        connection.execute(text("DROP TABLE quota_use"))
    store.dispose()

    reopened = Store(database_url)
    reopened.create_schema()
    reopened.create_schema()  # a second start counts nothing again and adds no trigger twice
    with reopened.session() as session:
        assert counted(session) == pytest.approx(before)
    with reopened.session(write=True) as session:  # and the triggers are back, once
        session.add(entity("late", COMPUTE, "u", "g", cores=3, memory_mib=1024))
    assert differences(reopened) == {}
    reopened.dispose()


def test_a_rolled_back_transaction_leaves_the_counters_as_they_were(store: Store) -> None:
    with store.session(write=True) as session:
        session.add(entity("a", COMPUTE, "u", "g", cores=2, memory_mib=2048))
        session.add(cdmi_object("o", "dataobject", None, "u", "g", size=100))
    with store.session() as session:
        before = counted(session)
    quotas = Quotas(Config({}))
    with pytest.raises(RuntimeError), store.session(write=True) as session:
        session.add(entity("b", COMPUTE, "u", "g", cores=4, memory_mib=1024))
        session.add(entity("s", STORAGE, "u", size=2.5))
        session.execute(update(CdmiObjectRow).values(size=700, group="h"))
        session.execute(delete(EntityRow).where(EntityRow.id == "a"))
        # inside the transaction the check sees its own writes ...
        assert quotas.use(session, ("user", "u"), ["cores", "storage", "cdmi_bytes"]) == {
            "cores": 4.0, "storage": 2.5, "cdmi_bytes": 700.0}
        assert quotas.use(session, ("group", "h"), ["cdmi_bytes"]) == {"cdmi_bytes": 700.0}
        raise RuntimeError("the write fails after its rows were flushed")
    with store.session() as session:  # ... and after the rollback nothing of them is left
        assert counted(session) == before
    assert differences(store) == {}


# A trigger on quota_use that notes every row written to it (what "touch" means below).
_NOTE_SQLITE = (
    "CREATE TABLE touched (n INTEGER)",
    "CREATE TRIGGER note_insert AFTER INSERT ON quota_use BEGIN "
    "INSERT INTO touched VALUES (1); END",
    "CREATE TRIGGER note_update AFTER UPDATE ON quota_use BEGIN "
    "INSERT INTO touched VALUES (1); END",
)
_NOTE_POSTGRES = (
    "CREATE TABLE touched (n INTEGER)",
    "CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO touched VALUES (1); RETURN NULL; END $$",
    "CREATE TRIGGER note AFTER INSERT OR UPDATE ON quota_use FOR EACH ROW EXECUTE FUNCTION note()",
)


def test_rows_that_hold_nothing_leave_the_counters_alone(store: Store) -> None:
    with store.session(write=True) as session:
        session.add(entity("c", COMPUTE, "u", "g", cores=2, memory_mib=1024))
        session.add(entity("s", STORAGE, "u", "g", size=2.0))
        session.add(cdmi_object("box", "container", None, "u", "g"))
        session.add(cdmi_object("o", "dataobject", "box", "u", "g", size=10))
    with store.engine.begin() as connection:
        for statement in _NOTE_SQLITE if store.is_sqlite else _NOTE_POSTGRES:
            connection.exec_driver_sql(statement)

    with store.session(write=True) as session:
        session.add_all([entity("n", NETWORK, "u", "g"), entity("l", LINK, "u", "g"),
                         cdmi_object("box2", "container", "box", "u", "g"),
                         cdmi_object("empty", "dataobject", "box", "u", "g", size=0)])
        session.flush()
        compute, storage = session.get(EntityRow, "c"), session.get(EntityRow, "s")
        assert compute is not None and storage is not None
        compute.attributes = {**compute.attributes, "occi.compute.hostname": "vm"}
        compute.state, compute.host = "inactive", None
        storage.attributes = {**storage.attributes, "occi.core.title": "same size"}
        session.execute(update(EntityRow).where(EntityRow.id.in_(["n", "l"]))
                        .values(owner="v", group="h", attributes={"x": 1}))
        session.execute(update(CdmiObjectRow).where(CdmiObjectRow.id.in_(["box", "box2"]))
                        .values(owner="v", group="h", size=5))
        session.execute(update(CdmiObjectRow).where(CdmiObjectRow.id == "o")
                        .values(mimetype="text/x-other", path="box/o", metadata_={"a": "b"}))
        session.execute(delete(EntityRow).where(EntityRow.id.in_(["n", "l"])))
        session.execute(delete(CdmiObjectRow).where(CdmiObjectRow.id.in_(["box2", "empty"])))
    with store.session() as session:
        assert session.scalar(text("SELECT COUNT(*) FROM touched")) == 0

    with store.session(write=True) as session:  # and one that holds something does
        session.execute(update(EntityRow).where(EntityRow.id == "c").values(cores=3))
    with store.session() as session:
        assert session.scalar(text("SELECT COUNT(*) FROM touched")) == 2  # user u, group g
    assert differences(store) == {}


def test_use_reads_one_holders_counters_and_no_entity_or_object(store: Store) -> None:
    with store.session(write=True) as session:
        session.add_all(entity(f"c{i}", COMPUTE, "u", "g", cores=1, memory_mib=512)
                        for i in range(300))
        session.add_all(entity(f"s{i}", STORAGE, "u", "g", size=1.5) for i in range(30))
        session.add(cdmi_object("box", "container", None, "u", "g"))
        session.add_all(cdmi_object(f"o{i}", "dataobject", "box", "u", "g", size=10)
                        for i in range(300))
    quotas = Quotas(Config({}))
    sent: list[str] = []

    def keep(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    for holder in (("user", "u"), ("group", "g")):
        sent.clear()
        event.listen(store.engine, "before_cursor_execute", keep)
        try:
            with store.session() as session:
                use = quotas.use(session, holder, COUNTED)
        finally:
            event.remove(store.engine, "before_cursor_execute", keep)
        assert use == {"instances": 300.0, "cores": 300.0, "memory": 150.0, "storage": 45.0,
                       "cdmi_bytes": 3000.0}
        statements = [s for s in sent if s.split()[0].upper() not in ("BEGIN", "ROLLBACK")]
        assert len(statements) == 1, statements
        assert "FROM quota_use" in statements[0]
        assert "entities" not in statements[0] and "cdmi_objects" not in statements[0]


def test_quota_show_lists_the_counters(store: Store) -> None:
    with store.session(write=True) as session:
        session.add(entity("c", COMPUTE, "u", "g", cores=2, memory_mib=1536))
        session.add(entity("s1", STORAGE, "u", size=0.1))
        session.add(entity("s2", STORAGE, "u", size=0.2))
        session.add(cdmi_object("o", "dataobject", None, "u", None, size=1234))
    with store.session(write=True) as session:
        session.execute(delete(EntityRow).where(EntityRow.id.in_(["s1", "s2"])))
        session.add(entity("s3", STORAGE, "u", size=0.3))
    with store.session() as session:
        report = {line.resource: line.use for line in Quotas(Config({})).report(
            session, ("user", "u"))}
    assert list(report) == list(RESOURCES)
    # 0.1 + 0.2 - 0.1 - 0.2 + 0.3 in doubles is not 0.3; the counter is read as 0.3
    assert report == {"instances": 1.0, "cores": 2.0, "memory": 1.5, "storage": 0.3,
                      "cdmi_bytes": 1234.0, "public_addresses": 0.0}


# --- through the APIs -------------------------------------------------------------------------


@pytest.mark.redis
def test_counters_equal_a_recount_after_random_api_sequences(make_node: NodeFactory) -> None:
    node = make_node({"host-a": "memory://counters?cores=512&memory_mib=1048576"},
                     quota_user_defaults={"cores": 10_000, "cdmi_bytes": 10**9},
                     quota_group_defaults={"storage": 10_000, "cdmi_bytes": 10**9})
    with node.store.session(write=True) as session:
        for name in ("alice", "bob"):
            user = session.get(User, name)
            assert user is not None
            user.groups = ["physics", "chemistry"]
    api = ApiSequence(node, random.Random(5))
    for step in range(110):
        done = api.step()
        assert differences(node.store) == {}, f"step {step}: {done}"
    # the sequence did what it claims (each kind of write succeeded at least once)
    assert {"compute", "resize_tpl", "resize", "regroup", "storage", "resize_storage",
            "delete", "put", "overwrite", "delete_object", "copy", "move", "snapshot",
            "regroup_object", "rmdir"} <= api.succeeded


class ApiSequence:
    """Random OCCI and CDMI requests of alice and bob; ``succeeded`` names what worked."""

    def __init__(self, node: Node, rng: random.Random) -> None:
        self.node, self.rng = node, rng
        self.entities: list[tuple[str, str, str]] = []  # user, kind, location
        self.objects: list[tuple[str, str]] = []  # user, path
        self.succeeded: set[str] = set()
        self.made = 0

    def step(self) -> str:
        rng = self.rng
        name = rng.choice(list(self.actions()))
        user = rng.choice(["alice", "bob"])
        if self.actions()[name](user):
            self.succeeded.add(name)
        if rng.random() < 0.15:
            self.node.run_jobs()  # carries out deletes (rows go) and makes computes active
        return f"{user} {name}"

    def actions(self) -> dict[str, Callable[[str], bool]]:
        return {"compute": self.compute, "resize_tpl": self.resize_tpl, "resize": self.resize,
                "regroup": self.regroup, "storage": self.storage,
                "resize_storage": self.resize_storage, "delete": self.delete,
                "put": self.put, "overwrite": self.put, "delete_object": self.delete_object,
                "copy": self.copy, "move": self.move, "snapshot": self.snapshot,
                "regroup_object": self.regroup_object, "rmdir": self.rmdir}

    def group(self) -> dict[str, str]:
        return {GROUP_ATTRIBUTE: self.rng.choice(["", "physics", "chemistry"])}

    def mine(self, user: str, kind: str) -> str | None:
        found = [loc for owner, k, loc in self.entities if owner == user and k == kind]
        return self.rng.choice(found) if found else None

    def ok(self, response: Any, *statuses: int) -> bool:
        return response.status_code in (statuses or (200, 201, 204))

    # OCCI

    def compute(self, user: str) -> bool:
        """A compute of a flavour, or of sizes given as attributes (only those resize by
        attributes: a flavour's sizes are immutable)."""
        flavour = self.rng.choice(["small", "medium", "large", ""])
        attributes: dict[str, Any] = {k: v for k, v in self.group().items() if v}
        if not flavour:
            attributes.update({"occi.compute.cores": self.rng.randint(1, 4),
                               "occi.compute.memory": self.rng.choice([0.5, 1.0, 2.0])})
        body = text_plain(compute_categories(flavour=flavour or None), attributes)
        response = self.node.post_text("/compute/", body, user=user)
        if self.ok(response, 201):
            kind = "compute" if flavour else "sized"
            self.entities.append((user, kind, response.headers["Location"]))
        return self.ok(response, 201)

    def resize_tpl(self, user: str) -> bool:
        location = self.mine(user, "compute")
        if location is None:
            return False
        flavour = self.rng.choice(["small", "medium", "large"])
        body = text_plain([category("compute", INFRA, "kind"),
                           category(flavour, RESOURCE_SCHEME, "mixin")])
        return self.ok(self.node.post_text(path_of(location), body, user=user))

    def resize(self, user: str) -> bool:
        location = self.mine(user, "sized")
        if location is None:
            return False
        body = text_plain([category("compute", INFRA, "kind")],
                          {"occi.compute.cores": self.rng.randint(1, 6),
                           "occi.compute.memory": self.rng.choice([0.5, 1.0, 3.0])})
        return self.ok(self.node.post_text(path_of(location), body, user=user))

    def regroup(self, user: str) -> bool:
        location = self.mine(user, self.rng.choice(["compute", "sized", "storage"]))
        if location is None:
            return False
        kind = "compute" if "/compute/" in location else "storage"
        body = text_plain([category(kind, INFRA, "kind")], self.group())
        return self.ok(self.node.post_text(path_of(location), body, user=user))

    def storage(self, user: str) -> bool:
        size = self.rng.choice([0.5, 1.0, 2.5, 0.1, 0.2])
        body = text_plain([category("storage", INFRA, "kind")],
                          {"occi.storage.size": size, **self.group()})
        response = self.node.post_text("/storage/", body, user=user)
        if self.ok(response, 201):
            self.entities.append((user, "storage", response.headers["Location"]))
        return self.ok(response, 201)

    def resize_storage(self, user: str) -> bool:
        location = self.mine(user, "storage")
        if location is None:
            return False
        body = text_plain([category("storage", INFRA, "kind")],
                          {"occi.storage.size": self.rng.choice([0.3, 1.5, 4.0])})
        return self.ok(self.node.post_text(path_of(location), body, user=user))

    def delete(self, user: str) -> bool:
        mine = [e for e in self.entities if e[0] == user]
        if not mine:
            return False
        chosen = self.rng.choice(mine)
        response = self.node.request("DELETE", path_of(chosen[2]), user=user)
        if self.ok(response):
            self.entities.remove(chosen)
        return self.ok(response)

    # CDMI

    def cdmi(self, user: str) -> Cdmi:
        return Cdmi(self.node, user)

    def box(self, user: str) -> str:
        box = f"{user}-{self.rng.randint(0, 2)}/"
        self.cdmi(user).mkdir(box, {"metadata": {**self.group()}})
        return box

    def mine_object(self, user: str) -> str | None:
        found = [path for owner, path in self.objects if owner == user]
        return self.rng.choice(found) if found else None

    def put(self, user: str) -> bool:
        path = self.mine_object(user) if self.rng.random() < 0.5 else None
        path = path or f"{self.box(user)}o{self.new()}"
        value = "v" * self.rng.randrange(0, 400)
        response = self.cdmi(user).put(path, {"value": value})
        if self.ok(response, 201):
            self.objects.append((user, path))
        return self.ok(response)

    def new(self) -> int:
        self.made += 1
        return self.made

    def delete_object(self, user: str) -> bool:
        path = self.mine_object(user)
        if path is None:
            return False
        self.objects.remove((user, path))
        return self.ok(self.cdmi(user).request("DELETE", path))

    def copy(self, user: str) -> bool:
        source = self.mine_object(user)
        if source is None:
            return False
        path = f"{self.box(user)}c{self.new()}"
        response = self.cdmi(user).put(path, {"copy": f"/cdmi/{source}"})
        if self.ok(response, 201):
            self.objects.append((user, path))
        return self.ok(response, 201)

    def move(self, user: str) -> bool:
        source = self.mine_object(user)
        if source is None:
            return False
        path = f"{self.box(user)}m{self.new()}"
        response = self.cdmi(user).put(path, {"move": f"/cdmi/{source}"})
        if self.ok(response, 201):
            self.objects.remove((user, source))
            self.objects.append((user, path))
        return self.ok(response, 201)

    def snapshot(self, user: str) -> bool:
        box = self.box(user)
        response = self.cdmi(user).cdmi("PUT", box, {"snapshot": f"s{self.rng.randint(0, 1)}"},
                                        media=CONTAINER)
        return self.ok(response)

    def regroup_object(self, user: str) -> bool:
        path = self.mine_object(user)
        if path is None:
            return False
        return self.ok(self.cdmi(user).put(path, {"metadata": self.group()}))

    def rmdir(self, user: str) -> bool:
        box = f"{user}-{self.rng.randint(0, 2)}/"
        response = self.cdmi(user).request("DELETE", box)
        if self.ok(response):
            self.objects = [(u, p) for u, p in self.objects if not p.startswith(box)]
        return self.ok(response)



@pytest.mark.redis
@pytest.mark.parametrize("mixed", [True, False], ids=["mixed", "links"])
def test_concurrent_requests_of_two_users_in_one_group_hold_both_kinds_of_lock(
    make_node: NodeFactory, mixed: bool
) -> None:
    """Requests that link an interface on a public network to a compute made before write
    no counter: only the check's advisory locks serialise them ("links": without those locks
    more than the limit pass). "mixed": half the requests create a compute with such an
    interface instead (they write counter rows of the user and the group, then take the
    advisory locks). Either way exactly the allowed number of addresses are handed out, and
    no request waits on another in a cycle (a deadlock would answer 503)."""
    node = make_node({"host-a": "memory://counters?cores=512&memory_mib=1048576"},
                     quota_user_defaults={"cores": 100, "memory": 100},
                     quota_group_defaults={"cores": 100, "public_addresses": 6},
                     group_policy="full")  # members may link to the group's network
    with node.store.session(write=True) as session:
        for name in ("alice", "bob"):
            user = session.get(User, name)
            assert user is not None
            user.groups = ["physics"]
    # one public network (an admin's) per request: leases on one network would queue the
    # requests on its first free address, whatever the quota check does
    public = [
        node.create("network", text_plain(
            [category("network", INFRA, "kind"),
             category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")],
            {"occi.network.address": f"10.{n}.0.0/24", GROUP_ATTRIBUTE: "physics"}), user="root")
        for n in range(24)
    ]
    sized = {"occi.compute.cores": 1, "occi.compute.memory": 0.5, GROUP_ATTRIBUTE: "physics"}
    users = ("alice", "bob")
    bare = [node.create_compute(user=users[n % 2], attributes=sized) for n in range(24)]

    def request(client: FlaskClient, number: int) -> Answer:
        headers = {**basic(users[number % 2]), "Content-Type": "text/plain"}
        network = path_of(public[number])
        if mixed and number % 4 < 2:
            link = f'<{network}>; rel="{INFRA}network"; category="{INFRA}networkinterface"'
            body = text_plain(compute_categories(), sized, links=[link])
            response = client.post("/compute/", data=body, headers=headers)
        else:
            mine = bare[number]  # of the same user
            nic = text_plain([category("networkinterface", INFRA, "kind")],
                             {"occi.core.source": path_of(mine), "occi.core.target": network})
            response = client.post("/networkinterface/", data=nic, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    answers = at_once(node.app.test_client, 24, request)

    assert Counter(status for status, _ in answers) == {201: 6, 409: 18}, answers
    assert all("public_addresses for group physics: limit 6, in use 6, this request 1" in text
               for status, text in answers if status == 409)
    assert differences(node.store) == {}
    with node.store.session() as session:
        use = Quotas(node.config).use(session, ("group", "physics"), ["public_addresses"])
    assert use == {"public_addresses": 6.0}
