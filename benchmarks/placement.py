"""Placement at scale: choosing a host among thousands, with tens of thousands of computes.

    .venv/bin/python benchmarks/placement.py [--entities N] [--hosts H] [--database-url URL]
                                             [--rounds R] [--quick]

Builds a store (a throwaway SQLite file unless ``--database-url`` names another, e.g. a
PostgreSQL database you own: the tables are made in it and dropped afterwards) holding H
hosts and N computes spread over them, then times, each in a transaction of its own:

- ``place()``: what the gateway does, one query over the host rows and the load counters the
  database keeps (:mod:`gateway.store.host_load`);
- baseline, in the same run on the same store: the summing placement the gateway used before
  the counters (every enabled host loaded, and the cores and memory of every placed entity
  summed per host), choosing the same host.

Then the other sum every create runs when its owner has a quota: the owner's use
(instances, cores, memory, storage) through ``Quotas.use``, which reads the computes' sums from
an index alone, against the single query it replaced (one pass over the owner's rows, storage
sizes read from their JSON attributes). All N computes belong to one user here, the worst case.

Prints milliseconds for both sides of each and the ratios. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# The project before benchmarks/ (the scripts' own directory, first on sys.path): its auth.py
# must not shadow the auth package that the gateway's services import.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from gateway.config import Config
from gateway.scheduler import place
from gateway.services.quotas import Quotas
from gateway.store.db import Store
from gateway.store.models import Base, EntityRow, Host, User

COMPUTE = "http://schemas.ogf.org/occi/infrastructure#compute"
STORAGE = "http://schemas.ogf.org/occi/infrastructure#storage"
RESOURCES = ["instances", "cores", "memory", "storage"]


def single_query_use(session: Session, owner: str) -> tuple[int, int, int, float]:
    """The baseline: quota use as it was summed before (one query over the owner's rows)."""
    size = EntityRow.attributes["occi.storage.size"].as_float()
    instances, cores, memory, gib = session.execute(
        select(
            func.count(case((EntityRow.kind == COMPUTE, 1))),
            func.coalesce(func.sum(EntityRow.cores), 0),
            func.coalesce(func.sum(EntityRow.memory_mib), 0),
            func.coalesce(func.sum(case((EntityRow.kind == STORAGE, size), else_=0.0)), 0),
        ).where(EntityRow.owner == owner, EntityRow.kind.in_((COMPUTE, STORAGE)))
    ).one()
    return instances, cores, memory, gib


def summing_place(session: Session, *, cores: int, memory_mib: int) -> str:
    """The baseline: placement as it was before the counters (striping)."""
    hosts = session.scalars(select(Host).where(Host.enabled.is_(True)).order_by(Host.name)).all()
    used = {
        row.host: (int(row.cores or 0), int(row.memory or 0))
        for row in session.execute(
            select(
                EntityRow.host,
                func.sum(EntityRow.cores).label("cores"),
                func.sum(EntityRow.memory_mib).label("memory"),
            )
            .where(EntityRow.host.is_not(None))
            .group_by(EntityRow.host)
        )
    }
    free = [
        (h.memory_mib - used.get(h.name, (0, 0))[1], h.cores - used.get(h.name, (0, 0))[0], h.name)
        for h in hosts
    ]
    fitting = [f for f in free if f[1] >= cores and f[0] >= memory_mib]
    return max(fitting)[2]


def fill(store: Store, entities: int, hosts: int) -> None:
    with store.session(write=True) as session:
        session.add(User(name="bench", password_hash="x"))
        session.execute(
            insert(Host),
            [
                {"name": f"host{i:05d}", "uri": "memory://x", "cores": 4096,
                 "memory_mib": 4096 * 4096, "enabled": True}
                for i in range(hosts)
            ],
        )
    batch = 10_000
    for start in range(0, entities, batch):
        with store.session(write=True) as session:
            session.execute(
                insert(EntityRow),
                [
                    {"id": uuid.uuid4().hex, "kind": COMPUTE, "owner": "bench",
                     "attributes": {"occi.compute.hostname": f"vm{i}"}, "state": "active",
                     "host": f"host{i % hosts:05d}", "cores": 1 + i % 4,
                     "memory_mib": 1024 * (1 + i % 4)}
                    for i in range(start, min(entities, start + batch))
                ],
            )


def timed(store: Store, rounds: int, choose: Callable[[Session], str]) -> tuple[list[float], str]:
    times: list[float] = []
    chosen = ""
    for _ in range(rounds):
        with store.session() as session:
            began = time.perf_counter()
            chosen = choose(session)
            times.append((time.perf_counter() - began) * 1000)
    return times, chosen


OWNER = ("user", "bench")


def report(name: str, times: list[float], baseline: str, old: list[float]) -> None:
    p50, p50_old = statistics.median(times), statistics.median(old)
    print(f"{'':24}{'p50 ms':>10}{'max ms':>10}")
    print(f"{name:24}{p50:10.2f}{max(times):10.2f}")
    print(f"{baseline:24}{p50_old:10.2f}{max(old):10.2f}")
    print(f"ratio baseline/new at p50: {p50_old / p50:.1f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=50_000)
    parser.add_argument("--hosts", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--quick", action="store_true", help="10,000 computes on 200 hosts")
    args = parser.parse_args(argv)
    if args.quick:
        args.entities, args.hosts, args.rounds = 10_000, 200, 10
    with tempfile.TemporaryDirectory(prefix="nimbo-placement-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'nimbo.db'}"
        store = Store(url)
        store.create_schema()
        try:
            began = time.monotonic()
            fill(store, args.entities, args.hosts)
            print(
                f"store: {store.engine.dialect.name}, {args.entities} computes on {args.hosts} "
                f"hosts (filled in {time.monotonic() - began:.1f} s); {args.rounds} placements "
                "each, one transaction each"
            )
            timed(store, 2, lambda s: place(s, cores=2, memory_mib=2048, policy="striping"))
            new, new_host = timed(
                store,
                args.rounds,
                lambda s: place(s, cores=2, memory_mib=2048, policy="striping"),
            )
            old, old_host = timed(
                store, args.rounds, lambda s: summing_place(s, cores=2, memory_mib=2048)
            )
            if new_host != old_host:
                print(f"note: the two chose different hosts ({new_host} / {old_host})")
            report("place() (counters)", new, "baseline (summing)", old)

            quotas = Quotas(Config({"data_dir": tmp}))
            use, _ = timed(store, args.rounds, lambda s: str(quotas.use(s, OWNER, RESOURCES)))
            single, _ = timed(store, args.rounds, lambda s: str(single_query_use(s, "bench")))
            print(f"\nquota use of the one user holding all {args.entities} computes:")
            report("Quotas.use (index)", use, "baseline (one query)", single)
        finally:
            if args.database_url:
                Base.metadata.drop_all(store.engine)
                if store.engine.dialect.name == "postgresql":
                    with store.engine.begin() as connection:
                        connection.exec_driver_sql("DROP FUNCTION IF EXISTS nimbo_host_load()")
            store.dispose()


if __name__ == "__main__":
    main()
