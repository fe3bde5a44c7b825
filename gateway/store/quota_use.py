"""What each user and group holds, kept in ``quota_use`` by the database.

The quota check (:mod:`gateway.services.quotas`) needs a holder's use at every checked write.
Summing it from the rows costs a scan of everything the holder has (2.8 ms at 20,000 computes
of one user, and a million index entries for a CDMI user with a million objects) inside the
write transaction, which serialises writers. Instead ``quota_use`` holds one row per holder
and resource, ``(scope, name, resource) -> amount``, and triggers on ``entities`` and
``cdmi_objects`` keep it, whether a write came from the ORM, a Core statement or a hand-run
``psql``:

``instances``, ``cores``, ``memory``
    Computes, their ``cores`` and their ``memory_mib`` / 1024 (GiB; exact, being a power of 2).
``storage``
    ``occi.storage.size`` (GiB, from the JSON ``attributes``) of storage entities.
``cdmi_bytes``
    ``size`` of CDMI data objects (containers hold none).

Amounts are in the units of the quota check (:data:`gateway.services.quotas.UNITS`), stored as
doubles: counts and bytes are exact up to 2**53 (8 PiB); storage sizes are fractions of GiB, so
adding and removing them may leave a residue of a few units in the last place, which the check
rounds away. A user's use is the sum over the rows it owns; a group's, over the rows whose
``group`` names it (``scope`` is ``user`` or ``group``). Addresses on public networks are not
kept here: whether a network is public depends on its owner's ``users.is_admin``, a join that
a trigger on ``entities`` or ``leases`` would miss when that flag changes; the check counts them
from the leases as before.

Each trigger runs one ``INSERT ... ON CONFLICT DO UPDATE`` (a holder's first row is made on
demand) of the difference between the row after and before, summed per holder and resource;
nothing is written for a difference of zero, and rows that hold nothing (networks, links,
containers, computes whose ``attributes`` alone change) do not run the statement at all. The
triggers run in the writing transaction, so the counters commit or roll back with the rows they
count, and a transaction reads its own writes in them.

Concurrency (PostgreSQL): the upsert locks the counter rows it changes until the transaction
ends, so concurrent writes that grow or shrink one holder's resource serialise on that row, as
creates on one host do on its host row. This is also what keeps quota checks of counted
resources from overshooting: a transaction checks ``(holder, resource)`` only after its own
write grew it, i.e. while holding that row; a second transaction growing it waits at its write,
then adds to the committed amount (a check of something the request did not grow, such as a
regroup into the group an object had, reads unlocked but adds nothing to overshoot with). So the
check takes advisory locks only for
``public_addresses`` (see :meth:`gateway.services.quotas.Quotas._enforce`).

Why the advisory locks cannot deadlock against the counter rows: a wait-for cycle through both
would need a transaction holding an advisory lock to wait for a counter row. The advisory locks
are taken by ``Quotas._enforce`` after its flush, and then the check only reads (a plain
SELECT waits for no row lock); the checks that take them (``check_created``,
``check_changed``) are the last step of the create and update transactions, which write
nothing after them. So a holder of an advisory lock never waits for a counter row, and among
themselves the advisory locks are taken in one sorted order. What remains are row locks alone:
one statement locks its counter rows in the order (scope, name, resource); two transactions
that each write rows of the same two holders in opposite orders, in separate statements (say
two trees spanning groups A and B copied at once, one A first, the other B first), can wait on
each other like any two writers of the same rows; PostgreSQL detects it, aborts one, and the
store answers it with 503 (retry).

:func:`install` is called whenever the store makes its schema. The first time (a new store, or
one from before the counters) it creates the triggers and counts the amounts from the rows;
after that the triggers are the only writers of ``quota_use`` and nothing is recounted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from occi import infrastructure as infra

COUNTED = ("instances", "cores", "memory", "storage", "cdmi_bytes")
"""The resources kept in ``quota_use``."""

_COMPUTE = infra.COMPUTE.type_id
_STORAGE = infra.STORAGE.type_id
_DATAOBJECT = "dataobject"
_HOLDERS = (("user", "owner"), ("group", '"group"'))  # scope, column naming the holder


Part = tuple[str, str, str]
"""(resource, amount, condition): SQL of what a row holds of a resource, and when."""


def _entity_parts(row: str, postgres: bool) -> list[Part]:
    """What the entity named ``row`` (NEW, OLD or an alias) holds."""
    real = "double precision" if postgres else "REAL"
    compute, storage = f"{row}.kind = {_quoted(_COMPUTE)}", f"{row}.kind = {_quoted(_STORAGE)}"
    return [
        ("instances", f"CAST(1 AS {real})", compute),
        ("cores", f"CAST(COALESCE({row}.cores, 0) AS {real})", compute),
        ("memory", f"CAST(COALESCE({row}.memory_mib, 0) AS {real}) / 1024", compute),
        ("storage", f"COALESCE({_storage_size(row, postgres)}, 0)", storage),
    ]


def _object_parts(row: str, postgres: bool) -> list[Part]:
    """What the CDMI object named ``row`` holds."""
    real = "double precision" if postgres else "REAL"
    kind = f"{row}.kind = {_quoted(_DATAOBJECT)}"
    return [("cdmi_bytes", f"CAST(COALESCE({row}.size, 0) AS {real})", kind)]


@dataclass(frozen=True)
class _Table:
    """One counted table: its columns that matter and what a row holds."""

    name: str
    columns: tuple[str, ...]  # UPDATE OF these may change what a row holds
    kinds: tuple[str, ...]  # rows of other kinds hold nothing
    parts: Callable[[str, bool], list[Part]]

    def holds(self, row: str) -> str:
        return f"{row}.kind IN ({', '.join(_quoted(k) for k in self.kinds)})"

    def changed(self, postgres: bool) -> str:
        """True when an update may change what the row holds (a trigger's WHEN)."""
        differs = "IS DISTINCT FROM" if postgres else "IS NOT"
        tests = [f"OLD.{c} {differs} NEW.{c}" for c in self.columns if c != "attributes"]
        if "attributes" in self.columns:  # of the attributes only the storage size counts
            tests.append(
                f"{_storage_size('OLD', postgres)} {differs} {_storage_size('NEW', postgres)}"
            )
        return f"({self.holds('OLD')} OR {self.holds('NEW')}) AND ({' OR '.join(tests)})"


_ENTITIES = _Table(
    "entities",
    ("owner", '"group"', "kind", "cores", "memory_mib", "attributes"),
    (_COMPUTE, _STORAGE),
    _entity_parts,
)
_CDMI = _Table("cdmi_objects", ("owner", '"group"', "kind", "size"), (_DATAOBJECT,), _object_parts)
_TABLES = (_ENTITIES, _CDMI)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _storage_size(row: str, postgres: bool) -> str:
    if postgres:
        return f"CAST({row}.attributes ->> 'occi.storage.size' AS double precision)"
    return f"CAST(json_extract({row}.attributes, '$.\"occi.storage.size\"') AS REAL)"


def _held(table: _Table, row: str, sign: str, postgres: bool, source: str = "") -> str:
    """SELECTs of (scope, name, resource, amount) for what the row ``row`` holds, negated
    when ``sign`` is ``-``; ``source`` is a FROM clause when ``row`` is a table alias."""
    selects = []
    for scope, column in _HOLDERS:
        for resource, amount, condition in table.parts(row, postgres):
            selects.append(
                f"SELECT {_quoted(scope)} AS scope, {row}.{column} AS name, "
                f"{_quoted(resource)} AS resource, {sign}({amount}) AS amount{source} "
                f"WHERE {condition} AND {row}.{column} IS NOT NULL"
            )
    return "\n        UNION ALL ".join(selects)


def _upsert(held: Sequence[str]) -> str:
    """Add the sums of ``held`` per holder and resource to ``quota_use``, skipping zeros; in
    one order, so that one statement locks counter rows as every other does."""
    return f"""
    INSERT INTO quota_use (scope, name, resource, amount)
    SELECT scope, name, resource, SUM(amount) FROM (
        {" UNION ALL ".join(held)}
    ) AS change
    WHERE true GROUP BY scope, name, resource HAVING SUM(amount) <> 0
    ORDER BY scope, name, resource
    ON CONFLICT (scope, name, resource) DO UPDATE SET amount = quota_use.amount + excluded.amount
    """


def _sqlite_triggers(table: _Table) -> list[str]:
    prefix, name = f"nimbo_quota_use_{table.name}", table.name
    return [
        f"""CREATE TRIGGER {prefix}_insert AFTER INSERT ON {name} WHEN {table.holds("NEW")}
        BEGIN {_upsert([_held(table, "NEW", "+", False)])}; END""",
        f"""CREATE TRIGGER {prefix}_delete AFTER DELETE ON {name} WHEN {table.holds("OLD")}
        BEGIN {_upsert([_held(table, "OLD", "-", False)])}; END""",
        f"""CREATE TRIGGER {prefix}_update AFTER UPDATE OF {", ".join(table.columns)} ON {name}
        WHEN {table.changed(False)}
        BEGIN {_upsert([_held(table, "NEW", "+", False), _held(table, "OLD", "-", False)])};
        END""",
    ]


def _postgres_function(table: _Table) -> str:
    new, old = _held(table, "NEW", "+", True), _held(table, "OLD", "-", True)
    return f"""
    CREATE OR REPLACE FUNCTION nimbo_quota_use_{table.name}() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN {_upsert([new])};
        ELSIF TG_OP = 'DELETE' THEN {_upsert([old])};
        ELSE {_upsert([new, old])};
        END IF;
        RETURN NULL;
    END
    $$
    """


def _postgres_triggers(table: _Table) -> list[str]:
    run = f"FOR EACH ROW EXECUTE FUNCTION nimbo_quota_use_{table.name}()"
    return [
        f"""CREATE TRIGGER nimbo_quota_use_insert AFTER INSERT ON {table.name}
        {run.replace("EXECUTE", f"WHEN ({table.holds('NEW')}) EXECUTE")}""",
        f"""CREATE TRIGGER nimbo_quota_use_delete AFTER DELETE ON {table.name}
        {run.replace("EXECUTE", f"WHEN ({table.holds('OLD')}) EXECUTE")}""",
        f"""CREATE TRIGGER nimbo_quota_use_update
        AFTER UPDATE OF {", ".join(table.columns)} ON {table.name}
        {run.replace("EXECUTE", f"WHEN ({table.changed(True)}) EXECUTE")}""",
    ]


def recount_statement(postgres: bool) -> str:
    """The amounts counted from the rows, into an empty ``quota_use``."""
    held = [
        _held(table, "counted", "+", postgres, f" FROM {table.name} AS counted")
        for table in _TABLES
    ]
    return _upsert(held)


_SQLITE_INSTALLED = (
    "SELECT 1 FROM sqlite_master WHERE type = 'trigger' "
    "AND name = 'nimbo_quota_use_cdmi_objects_update'"
)
_POSTGRES_INSTALLED = (
    "SELECT 1 FROM pg_trigger WHERE tgname = 'nimbo_quota_use_update' "
    "AND tgrelid = 'cdmi_objects'::regclass"
)


def install(connection: Connection) -> None:
    """The triggers in place, in the caller's transaction; on first installation the
    counters counted from the rows. The caller makes it the only schema writer
    (:meth:`gateway.store.db.Store.create_schema`).

    On PostgreSQL creating a trigger locks its table against writes until this transaction
    ends, so the count cannot miss a concurrent write; the functions are replaced on every
    call (no table lock), so a newer body reaches a store installed before."""
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        for table in _TABLES:
            connection.exec_driver_sql(_postgres_function(table))
        installed = connection.exec_driver_sql(_POSTGRES_INSTALLED).first() is not None
    else:
        installed = connection.exec_driver_sql(_SQLITE_INSTALLED).first() is not None
    if installed:
        return
    for table in _TABLES:
        for statement in _postgres_triggers(table) if postgres else _sqlite_triggers(table):
            connection.exec_driver_sql(statement)
    connection.exec_driver_sql("DELETE FROM quota_use")  # a table left from before the triggers
    connection.exec_driver_sql(recount_statement(postgres))
