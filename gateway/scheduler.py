"""Placement: which host gets a new compute, storage or network.

Runs inside the create transaction. Used capacity is summed from the entities placed on each
host, so two concurrent creates see each other (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: host
rows locked ``FOR UPDATE``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.errors import CapacityExceeded
from gateway.store.models import EntityRow, Host


@dataclass(frozen=True)
class HostLoad:
    name: str
    cores_free: int
    memory_free_mib: int
    cores_total: int
    memory_total_mib: int


def host_loads(session: Session, *, lock: bool) -> list[HostLoad]:
    hosts_query = select(Host).where(Host.enabled.is_(True)).order_by(Host.name)
    if lock and session.get_bind().dialect.name == "postgresql":
        hosts_query = hosts_query.with_for_update()
    hosts = session.scalars(hosts_query).all()
    used = dict(
        (row.host, (int(row.cores or 0), int(row.memory or 0)))
        for row in session.execute(
            select(
                EntityRow.host,
                func.sum(EntityRow.cores).label("cores"),
                func.sum(EntityRow.memory_mib).label("memory"),
            )
            .where(EntityRow.host.is_not(None))
            .group_by(EntityRow.host)
        )
    )
    return [
        HostLoad(
            h.name,
            h.cores - used.get(h.name, (0, 0))[0],
            h.memory_mib - used.get(h.name, (0, 0))[1],
            h.cores,
            h.memory_mib,
        )
        for h in hosts
    ]


def place(
    session: Session, *, cores: int, memory_mib: int, policy: str, only: str | None = None
) -> str:
    """Name of the host for a request of ``cores`` and ``memory_mib``.

    ``packing`` picks the fitting host with the least free memory (fill hosts up);
    ``striping`` the one with the most. ``only`` restricts the choice to one host (a compute
    whose disks already live there). Raises CapacityExceeded naming what was short.
    """
    loads = host_loads(session, lock=True)
    if only is not None:
        loads = [h for h in loads if h.name == only]
    if not loads:
        raise CapacityExceeded(
            "no hypervisor host is registered and enabled"
            if only is None
            else f"host {only} is not available"
        )
    fitting = [h for h in loads if h.cores_free >= cores and h.memory_free_mib >= memory_mib]
    if not fitting:
        best = max(loads, key=lambda h: (h.memory_free_mib, h.cores_free))
        raise CapacityExceeded(
            f"no host has {cores} free cores and {memory_mib} MiB free memory "
            f"(largest free: {best.cores_free} cores, {best.memory_free_mib} MiB on {best.name})"
        )
    def free(h: HostLoad) -> tuple[int, int, str]:
        return (h.memory_free_mib, h.cores_free, h.name)

    chosen = min(fitting, key=free) if policy == "packing" else max(fitting, key=free)
    return chosen.name
