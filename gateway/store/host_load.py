"""What each host has handed out, kept in its own row by the database.

Placement needs every enabled host's free cores and memory on every create. Summing them from
the entities at that moment costs a scan of all placed entities (36 ms at 50,000 computes on
SQLite) inside the write transaction, which serialises creates. Instead ``hosts.cores_used``
and ``hosts.memory_used_mib`` hold the sums, and triggers on ``entities`` keep them: every
insert, delete and change of ``host``, ``cores`` or ``memory_mib`` moves the amounts, whether
it came from the ORM, a Core statement or a hand-run ``psql``. The trigger runs in the
writing transaction, so the counters commit or roll back with the rows they count.

:func:`install` is called whenever the store makes its schema. The first time (a new store,
or one from before the counters) it creates the triggers and counts the sums from the entities;
after that the triggers are the only writers of the counters and nothing is recounted.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

# Rows without load (storage, networks, links: cores and memory 0) touch no host row, so
# deleting them takes no lock on hosts.
_SQLITE = (
    """
    CREATE TRIGGER nimbo_host_load_insert AFTER INSERT ON entities
    WHEN NEW.host IS NOT NULL AND (NEW.cores <> 0 OR NEW.memory_mib <> 0)
    BEGIN
        UPDATE hosts SET cores_used = cores_used + NEW.cores,
                         memory_used_mib = memory_used_mib + NEW.memory_mib
        WHERE name = NEW.host;
    END
    """,
    """
    CREATE TRIGGER nimbo_host_load_delete AFTER DELETE ON entities
    WHEN OLD.host IS NOT NULL AND (OLD.cores <> 0 OR OLD.memory_mib <> 0)
    BEGIN
        UPDATE hosts SET cores_used = cores_used - OLD.cores,
                         memory_used_mib = memory_used_mib - OLD.memory_mib
        WHERE name = OLD.host;
    END
    """,
    """
    CREATE TRIGGER nimbo_host_load_update
    AFTER UPDATE OF host, cores, memory_mib ON entities
    WHEN OLD.host IS NOT NEW.host OR OLD.cores <> NEW.cores OR OLD.memory_mib <> NEW.memory_mib
    BEGIN
        UPDATE hosts SET cores_used = cores_used - OLD.cores,
                         memory_used_mib = memory_used_mib - OLD.memory_mib
        WHERE name = OLD.host;
        UPDATE hosts SET cores_used = cores_used + NEW.cores,
                         memory_used_mib = memory_used_mib + NEW.memory_mib
        WHERE name = NEW.host;
    END
    """,
)

_POSTGRES_FUNCTION = """
    CREATE OR REPLACE FUNCTION nimbo_host_load() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.host IS NOT DISTINCT FROM NEW.host
           AND OLD.cores = NEW.cores AND OLD.memory_mib = NEW.memory_mib THEN
            RETURN NULL;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.host IS NOT NULL
           AND (OLD.cores <> 0 OR OLD.memory_mib <> 0) THEN
            UPDATE hosts SET cores_used = cores_used - OLD.cores,
                             memory_used_mib = memory_used_mib - OLD.memory_mib
            WHERE name = OLD.host;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.host IS NOT NULL
           AND (NEW.cores <> 0 OR NEW.memory_mib <> 0) THEN
            UPDATE hosts SET cores_used = cores_used + NEW.cores,
                             memory_used_mib = memory_used_mib + NEW.memory_mib
            WHERE name = NEW.host;
        END IF;
        RETURN NULL;
    END
    $$
"""

_POSTGRES_TRIGGER = """
    CREATE TRIGGER nimbo_host_load
    AFTER INSERT OR DELETE OR UPDATE OF host, cores, memory_mib ON entities
    FOR EACH ROW EXECUTE FUNCTION nimbo_host_load()
"""

_SQLITE_INSTALLED = (
    "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'nimbo_host_load_update'"
)
_POSTGRES_INSTALLED = (
    "SELECT 1 FROM pg_trigger WHERE tgname = 'nimbo_host_load' "
    "AND tgrelid = 'entities'::regclass"
)

_RECOUNT = """
    UPDATE hosts SET
        cores_used = COALESCE(
            (SELECT SUM(e.cores) FROM entities e WHERE e.host = hosts.name), 0),
        memory_used_mib = COALESCE(
            (SELECT SUM(e.memory_mib) FROM entities e WHERE e.host = hosts.name), 0)
"""


def install(connection: Connection) -> None:
    """The triggers in place, in the caller's transaction; on first installation the
    counters counted from the entities. The caller makes it the only schema writer
    (:meth:`gateway.store.db.Store.create_schema`).

    On PostgreSQL creating the trigger locks ``entities`` against writes until this
    transaction ends, so the count cannot miss a concurrent create; the function is replaced
    on every call (no table lock), so a newer body reaches a store installed before."""
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.exec_driver_sql(_POSTGRES_FUNCTION)
        installed = connection.exec_driver_sql(_POSTGRES_INSTALLED).first() is not None
    else:
        installed = connection.exec_driver_sql(_SQLITE_INSTALLED).first() is not None
    if installed:
        return
    for statement in (_POSTGRES_TRIGGER,) if postgres else _SQLITE:
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql(_RECOUNT)
