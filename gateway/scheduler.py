"""Placement: which host gets a new compute, storage or network.

Runs inside the create transaction. Each host row carries what is placed on it
(``cores_used``, ``memory_used_mib``, kept by the database: :mod:`gateway.store.host_load`),
so choosing a host is one query over the host rows, whatever the number of entities,
and two concurrent creates see each other: on SQLite the write transaction is ``BEGIN
IMMEDIATE``; on PostgreSQL the chosen host row is locked ``FOR UPDATE`` and checked again,
and another host is chosen when a concurrent create took the room meanwhile.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.orm import Session

from gateway.errors import CapacityExceeded, ServiceUnavailable
from gateway.store.models import Host

_CORES_LEFT = Host.cores - Host.cores_used
_MEMORY_LEFT = Host.memory_mib - Host.memory_used_mib
_CORES_FREE = _CORES_LEFT.label("cores_free")
_MEMORY_FREE = _MEMORY_LEFT.label("memory_free_mib")
_ORDER = {
    # packing fills hosts up (least free memory first), striping spreads (most first)
    "packing": (_MEMORY_FREE.asc(), _CORES_FREE.asc(), Host.name.asc()),
    "striping": (_MEMORY_FREE.desc(), _CORES_FREE.desc(), Host.name.desc()),
}
_LARGEST = (_MEMORY_FREE.desc(), _CORES_FREE.desc(), Host.name.asc())
_LOCK_ATTEMPTS = 50
_ENABLED = Host.enabled.is_(True)
_ONLY = Host.name == bindparam("only")
_FITS = (bindparam("cores") <= _CORES_LEFT) & (bindparam("memory_mib") <= _MEMORY_LEFT)
# Built once (building one is a third of its cost): by policy, and whether one host is named.
_CHOOSE = {
    (policy, named): select(Host.name)
    .where(_ENABLED, *((_ONLY,) if named else ()), _FITS)
    .order_by(*order)
    .limit(1)
    for policy, order in _ORDER.items()
    for named in (False, True)
}
_RECHECK = (
    select(Host.name).where(Host.name == bindparam("chosen"), _ENABLED, _FITS).with_for_update()
)


def place(
    session: Session, *, cores: int, memory_mib: int, policy: str, only: str | None = None
) -> str:
    """Name of the host for a request of ``cores`` and ``memory_mib``.

    ``packing`` picks the fitting host with the least free memory (fill hosts up);
    ``striping`` the one with the most. ``only`` restricts the choice to one host (a compute
    whose disks already live there). Raises CapacityExceeded naming what was short.
    """
    choose = _CHOOSE[policy, only is not None]
    params = {"cores": cores, "memory_mib": memory_mib, "only": only}
    locking = session.get_bind().dialect.name == "postgresql"
    # Core on the session's connection (a tenth of an ORM statement's CPU, inside the write
    # lock), flushed first: the entities this transaction placed already count.
    session.flush()
    connection = session.connection()
    for _ in range(_LOCK_ATTEMPTS):
        chosen = connection.execute(choose, params).scalar()
        if chosen is None:
            candidates: list[ColumnElement[bool]] = [_ENABLED]
            if only is not None:
                candidates.append(Host.name == only)
            raise _no_room(session, candidates, cores, memory_mib, only)
        if not locking:
            return str(chosen)
        # Waits for a concurrent create holding the row, then re-reads it: still fits or not.
        if connection.execute(_RECHECK, {**params, "chosen": chosen}).scalar() is not None:
            return str(chosen)
    raise ServiceUnavailable("placement: hosts kept filling up under concurrent creates; retry")


def _no_room(
    session: Session,
    candidates: list[ColumnElement[bool]],
    cores: int,
    memory_mib: int,
    only: str | None,
) -> CapacityExceeded:
    largest = session.execute(
        select(Host.name, _CORES_FREE, _MEMORY_FREE).where(*candidates).order_by(*_LARGEST).limit(1)
    ).first()
    if largest is None:
        return CapacityExceeded(
            "no hypervisor host is registered and enabled"
            if only is None
            else f"host {only} is not available"
        )
    return CapacityExceeded(
        f"no host has {cores} free cores and {memory_mib} MiB free memory "
        f"(largest free: {largest.cores_free} cores, {largest.memory_free_mib} MiB on "
        f"{largest.name})"
    )
