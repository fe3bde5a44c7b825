"""Quotas: how much of each resource a user, and a group, may hold.

Resources (the keys of the settings ``quota_user_defaults``/``quota_group_defaults`` and of
``nimbo quota set``), and what counts towards them:

``instances``, ``cores``, ``memory``
    Computes, their ``occi.compute.cores`` and their ``occi.compute.memory`` (GiB).
``storage``
    GiB of storage entities (``occi.storage.size``), CDMI exports included. A compute's root
    disk does not count: it is a copy-on-write clone of an image the user does not size, and
    ``instances`` bounds how many there are.
``cdmi_bytes``
    The sizes of the CDMI data objects owned (copies and snapshots included).
``public_addresses``
    Addresses leased on public networks. A network is *public* when an administrator account
    (``users.is_admin``) owns it: the site's provider networks. Every address leased on one
    counts against the owner (and the group) of the network interface that holds it,
    administrators' own interfaces included.

A user's use is the sum over the rows it owns; a group's, the sum over the rows whose
``group`` column names it. A row counts until it is removed: an entity being deleted holds its
resources until its host's worker has removed it (as it does for placement), so a delete frees
quota once it is carried out.

Limits: the setting's defaults, overridden per user or group by rows of ``quota_limits``
(``nimbo quota set``; a ``None`` override means unlimited). A resource without a limit is
unlimited. Administrators are held to quotas like everyone else unless
``quota_exempt_admins`` is set; then their requests are not checked.

Where the use comes from: ``quota_use``, kept by triggers of the store on every write of an
entity or CDMI object (:mod:`gateway.store.quota_use`), so a check reads one holder's counters
in one indexed read however much it holds; ``public_addresses`` alone is counted from the
leases (whether a network is public depends on its owner's admin flag, a join no trigger on the
counted rows would follow).

How the check holds under concurrency: the write transaction first writes its rows, then calls
a ``check_*`` method here, which reads the use *after* the write and refuses when that passes a
limit of a resource the request grows (a request that only shrinks or keeps a resource always
passes, even over a lowered limit). The refusal raises :class:`QuotaExceeded` and the caller's
transaction rolls back. SQLite serialises write transactions (``BEGIN IMMEDIATE`` and the
store's write gate). On PostgreSQL a write that grows a holder's counted resource has locked
that holder's counter row (the trigger's upsert) until its transaction ends: of two concurrent
requests for one user, the second waits at its write and then adds to what the first committed.
For ``public_addresses`` the check first takes a transaction-scoped advisory lock for each user
and group it checks, in one global order, and counts in statements that begin after it (why
these locks cannot deadlock against the counter rows: :mod:`gateway.store.quota_use`).
A request for which no limit applies reads no use: one indexed read of the overrides is its
whole cost.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from auth.principal import Principal
from gateway.config import Config
from gateway.errors import ConfigurationError, InvalidRequest, QuotaExceeded
from gateway.store.models import CdmiObjectRow, EntityRow, Lease, QuotaLimit, QuotaUse, User
from gateway.store.quota_use import COUNTED
from occi import infrastructure as infra

_LEASED = "public_addresses"  # counted from the leases; every other resource is COUNTED
RESOURCES = (*COUNTED, _LEASED)
"""Every resource a quota can limit, in the order ``nimbo quota show`` lists them."""
UNITS = {"memory": "GiB", "storage": "GiB", "cdmi_bytes": "bytes"}
_MAY_LEASE = frozenset({infra.COMPUTE.type_id, infra.NETWORKINTERFACE.type_id})  # inline links
_EPSILON = 1e-9  # GiB sums are floats: 0.1 + 0.2 must not pass a limit of 0.3
# Counters of GiB are read to a billionth (about a byte): adding and removing fractions leaves
# a residue in the last places of a double, which must not show (-0.000) or count.
_GIB_DIGITS = 9
_SUFFIXES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# A public address: a lease held by the interface _NIC on the network _NET.
_NIC = aliased(EntityRow, name="nic")
_NET = aliased(EntityRow, name="net")

Holder = tuple[str, str]
"""(scope, name): ``("user", "alice")`` or ``("group", "physics")``."""
Amounts = dict[str, float]
"""resource -> amount, in the resource's unit (GiB for memory and storage)."""


@dataclass(frozen=True)
class Line:
    """One resource of one holder, as ``nimbo quota show`` prints it."""

    resource: str
    limit: float | None  # None: unlimited
    origin: str  # "default", "set" (an override) or "" (no limit anywhere)
    use: float


def parse_limit(resource: str, text: str) -> float | None:
    """A limit as given to ``nimbo quota set`` (``unlimited``, a number, or for
    ``cdmi_bytes`` a number with a K/M/G/T binary suffix); None means unlimited."""
    if resource not in RESOURCES:
        raise InvalidRequest(f"unknown resource {resource!r} (known: {', '.join(RESOURCES)})")
    value = text.strip().lower()
    if value in ("unlimited", "none"):
        return None
    factor = 1
    if resource == "cdmi_bytes" and value[-1:] in _SUFFIXES:
        factor, value = _SUFFIXES[value[-1]], value[:-1]
    try:
        number = float(value) * factor
    except ValueError:
        raise InvalidRequest(f"{resource}={text}: not a number or 'unlimited'") from None
    return _checked(resource, number, f"{resource}={text}")


def limits_setting(name: str, value: Mapping[str, Any]) -> dict[str, float]:
    """The setting ``name`` (resource -> limit) checked: known resources, numbers >= 0."""
    limits: dict[str, float] = {}
    for resource, limit in value.items():
        if resource not in RESOURCES:
            raise ConfigurationError(
                f"{name}: unknown resource {resource!r} (known: {', '.join(RESOURCES)})"
            )
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            raise ConfigurationError(f"{name}: {resource} must be a number, not {limit!r}")
        try:
            limits[resource] = _checked(resource, float(limit), f"{name}.{resource}")
        except InvalidRequest as exc:
            raise ConfigurationError(exc.message) from exc
    return limits


def _checked(resource: str, number: float, shown: str) -> float:
    if not number >= 0 or number == float("inf"):
        raise InvalidRequest(f"{shown}: a limit is a number >= 0 or 'unlimited'")
    if resource not in UNITS and not number.is_integer():
        raise InvalidRequest(f"{shown}: {resource} is counted in whole numbers")
    return number


def amount_text(value: float) -> str:
    """``10`` rather than ``10.0``; fractions to three decimals at most."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Held:
    """What an entity holds and for which group, taken before an update (see
    :meth:`Quotas.check_changed`)."""

    group: str | None
    amounts: Amounts


def held(row: EntityRow) -> Held:
    return Held(row.group, footprint(row))


def footprint(row: EntityRow) -> Amounts:
    """What one entity holds of the entity resources (addresses are counted from leases)."""
    if row.kind == infra.COMPUTE.type_id:
        return {"instances": 1, "cores": row.cores or 0, "memory": (row.memory_mib or 0) / 1024}
    if row.kind == infra.STORAGE.type_id:
        return {"storage": float((row.attributes or {}).get("occi.storage.size") or 0)}
    return {}


class Quotas:
    """The quota check of the write paths, and the figures ``nimbo quota show`` prints."""

    def __init__(self, config: Config) -> None:
        self.defaults: dict[str, dict[str, float]] = {
            "user": limits_setting("quota_user_defaults", config.quota_user_defaults),
            "group": limits_setting("quota_group_defaults", config.quota_group_defaults),
        }
        self.exempt_admins: bool = config.quota_exempt_admins

    # --- the checks of the write paths (inside the caller's write transaction) ------------

    def check_created(self, session: Session, principal: Principal, rows: list[EntityRow]) -> None:
        """After a create wrote ``rows`` (and the links and leases made with them)."""
        if self._exempt(principal) or not rows:
            return
        demand: dict[Holder, Amounts] = {}
        for row in rows:
            _add(demand, _holders(row.owner, row.group), footprint(row))
        if not any(row.kind in _MAY_LEASE for row in rows) and not _positive(demand):
            return  # e.g. a network: holds nothing a quota limits
        limits = self._limits(session, demand)
        if any("public_addresses" in found for found in limits.values()):
            for holders, count in self._new_addresses(session, [row.id for row in rows]):
                _add(demand, holders, {"public_addresses": count})
            missing = [holder for holder in demand if holder not in limits]
            limits.update(self._limits(session, missing) if missing else {})
        self._enforce(session, demand, limits)

    def check_changed(
        self, session: Session, principal: Principal, row: EntityRow, before: Held
    ) -> None:
        """After an update of ``row`` (``before``: :func:`held` then). A resize grows its owner
        and group by the difference; a move to another group grows that group by everything
        the row holds, its interfaces' public addresses included."""
        if self._exempt(principal):
            return
        now = footprint(row)
        grown = {r: now.get(r, 0) - before.amounts.get(r, 0) for r in now}
        demand: dict[Holder, Amounts] = {}
        _add(demand, [("user", row.owner)], grown)
        moved = row.group is not None and row.group != before.group
        if row.group is not None:
            _add(demand, [("group", row.group)], now if moved else grown)
        if not _positive(demand):
            return
        limits = self._limits(session, demand)
        if moved and "public_addresses" in limits[("group", str(row.group))]:
            count = session.scalar(_public_leases(func.count(), _NIC.source == row.id)) or 0
            _add(demand, [("group", str(row.group))], {"public_addresses": count})
        self._enforce(session, demand, limits)

    def check_cdmi(
        self, session: Session, principal: Principal, grown: Iterable[tuple[CdmiObjectRow, int]]
    ) -> None:
        """After data objects were written: each row with the bytes it grew by."""
        if self._exempt(principal):
            return
        demand: dict[Holder, Amounts] = {}
        for row, growth in grown:
            if growth > 0:
                _add(demand, _holders(row.owner, row.group), {"cdmi_bytes": growth})
        if demand:
            self._enforce(session, demand, self._limits(session, demand))

    def check_cdmi_regrouped(
        self, session: Session, principal: Principal, rows: Iterable[CdmiObjectRow]
    ) -> None:
        """After data objects moved into a group: the new group takes on their bytes (their
        owner's use does not change, so only the group is checked)."""
        if self._exempt(principal):
            return
        demand: dict[Holder, Amounts] = {}
        for row in rows:
            if row.group and row.size > 0:
                _add(demand, [("group", row.group)], {"cdmi_bytes": row.size})
        if demand:
            self._enforce(session, demand, self._limits(session, demand))

    def check_cdmi_upload(
        self,
        session: Session,
        principal: Principal,
        owner: str,
        group: str | None,
        growth: int,
    ) -> None:
        """Before the body of an upload of known length is read: refuse, with the same
        :class:`QuotaExceeded` as :meth:`check_cdmi` would give once the value is staged, an
        upload that grows ``owner`` and ``group`` by ``growth`` bytes past a limit.

        This reads without a lock, so it only spares reading and staging a body that cannot
        fit; :meth:`check_cdmi` in the write transaction remains the check that holds under
        concurrency (and the only one for bodies of unknown length)."""
        if self._exempt(principal) or growth <= 0:
            return
        demand: dict[Holder, Amounts] = {}
        _add(demand, _holders(owner, group), {"cdmi_bytes": growth})
        limits = self._limits(session, demand)
        for holder in sorted(demand):
            limit = limits[holder].get("cdmi_bytes")
            if limit is None:
                continue
            use = self.use(session, holder, ["cdmi_bytes"])["cdmi_bytes"] + growth
            if use > limit + _EPSILON:
                raise _exceeded(holder, "cdmi_bytes", limit, use, growth)

    def _exempt(self, principal: Principal) -> bool:
        return self.exempt_admins and principal.is_admin

    # --- limits and use ------------------------------------------------------------------

    def _limits(
        self, session: Session, holders: Iterable[Holder]
    ) -> dict[Holder, dict[str, float]]:
        """The limits that apply to each holder (unlimited resources left out)."""
        wanted = list(holders)
        overrides = self.overrides(session, wanted)
        limits: dict[Holder, dict[str, float]] = {}
        for holder in wanted:
            merged: dict[str, float | None] = {
                **self.defaults[holder[0]],
                **overrides.get(holder, {}),
            }
            limits[holder] = {r: v for r, v in merged.items() if v is not None}
        return limits

    def overrides(
        self, session: Session, holders: Iterable[Holder]
    ) -> dict[Holder, dict[str, float | None]]:
        """The rows of ``quota_limits`` of ``holders``, in one read of the primary key."""
        wanted = list(holders)
        found: dict[Holder, dict[str, float | None]] = {}
        if not wanted:
            return found
        params: dict[str, str] = {}
        for i, (scope, name) in enumerate(wanted):
            params[f"scope{i}"], params[f"name{i}"] = scope, name
        session.flush()  # what the session holds counts; Core on its connection, no ORM round
        rows = session.connection().execute(_overrides_statement(len(wanted)), params)
        for row in rows:
            found.setdefault((row.scope, row.name), {})[row.resource] = row.maximum
        return found

    def _enforce(
        self,
        session: Session,
        demand: Mapping[Holder, Amounts],
        limits: Mapping[Holder, Mapping[str, float]],
    ) -> None:
        checked = {
            holder: [r for r, amount in amounts.items() if amount > 0 and r in limits[holder]]
            for holder, amounts in demand.items()
        }
        checked = {holder: resources for holder, resources in checked.items() if resources}
        if not checked:
            return
        session.flush()
        self._lock(session, [h for h, resources in checked.items() if _LEASED in resources])
        for holder, resources in sorted(checked.items()):
            use = self.use(session, holder, resources)
            for resource in resources:
                limit, asked = limits[holder][resource], demand[holder][resource]
                if use[resource] > limit + _EPSILON:
                    raise _exceeded(holder, resource, limit, use[resource], asked)

    def _lock(self, session: Session, holders: Iterable[Holder]) -> None:
        """PostgreSQL: serialise the checks of public addresses of each holder until this
        transaction ends. Counted resources need no lock here: the write that grew them holds
        the holder's counter row (see the module docstring)."""
        if session.get_bind().dialect.name != "postgresql":
            return  # SQLite: write transactions are serialised already
        for holder in sorted(holders):  # one global order: no deadlock between two checks
            session.execute(select(func.pg_advisory_xact_lock(_lock_key(holder))))

    def use(self, session: Session, holder: Holder, resources: Iterable[str]) -> Amounts:
        """What ``holder`` holds now of ``resources`` (this transaction's writes included: the
        counters are written by triggers in the writing transaction)."""
        wanted = set(resources)
        scope, name = holder
        use: Amounts = dict.fromkeys(wanted, 0.0)
        if wanted.intersection(COUNTED):
            session.flush()  # the triggers of what the session holds run; Core, no ORM round
            for resource, amount in session.connection().execute(
                _USE, {"scope": scope, "name": name}
            ):
                if resource in wanted:
                    use[resource] = _counted(resource, amount)
        if _LEASED in wanted:
            holds = _NIC.owner == name if scope == "user" else _NIC.group == name
            use[_LEASED] = float(session.scalar(_public_leases(func.count(), holds)) or 0)
        return use

    def _new_addresses(
        self, session: Session, ids: list[str]
    ) -> list[tuple[list[Holder], int]]:
        """Public addresses leased to the interfaces ``ids`` or to those of computes ``ids``."""
        query = _public_leases(
            func.count(), or_(_NIC.id.in_(ids), _NIC.source.in_(ids)), _NIC.owner, _NIC.group
        ).group_by(_NIC.owner, _NIC.group)
        return [(_holders(owner, group), count) for owner, group, count in session.execute(query)]

    # --- nimbo quota show ------------------------------------------------------------------

    def report(self, session: Session, holder: Holder) -> list[Line]:
        """Every resource of ``holder``: its limit, where the limit comes from, and the use."""
        overrides = self.overrides(session, [holder]).get(holder, {})
        use = self.use(session, holder, RESOURCES)
        lines = []
        for resource in RESOURCES:
            if resource in overrides:
                limit, origin = overrides[resource], "set"
            elif resource in self.defaults[holder[0]]:
                limit, origin = self.defaults[holder[0]][resource], "default"
            else:
                limit, origin = None, ""
            lines.append(Line(resource, limit, origin, use[resource]))
        return lines


def _counted(resource: str, amount: float) -> float:
    """A counter as the check compares it: GiB to a billionth, never -0."""
    if UNITS.get(resource) == "GiB":
        return round(amount, _GIB_DIGITS) + 0.0
    return float(amount)


def _positive(demand: Mapping[Holder, Amounts]) -> bool:
    return any(amount > 0 for amounts in demand.values() for amount in amounts.values())


def _holders(owner: str, group: str | None) -> list[Holder]:
    return [("user", owner)] + ([("group", group)] if group else [])


def _add(demand: dict[Holder, Amounts], holders: list[Holder], amounts: Amounts) -> None:
    for holder in holders:
        mine = demand.setdefault(holder, {})
        for resource, amount in amounts.items():
            mine[resource] = mine.get(resource, 0) + amount


def _exceeded(
    holder: Holder, resource: str, limit: float, use: float, asked: float
) -> QuotaExceeded:
    """The refusal of a request for ``asked`` of ``resource`` that would bring ``holder``'s
    use to ``use``."""
    return QuotaExceeded(
        f"quota exceeded: {_named(resource)} for {holder[0]} {holder[1]}: "
        f"limit {amount_text(limit)}, in use {amount_text(use - asked)}"
        f", this request {amount_text(asked)}"
    )


def _named(resource: str) -> str:
    return f"{resource} (GiB)" if UNITS.get(resource) == "GiB" else resource


def _lock_key(holder: Holder) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock``, stable across processes."""
    digest = hashlib.sha256(f"nimbostratus quota {holder[0]} {holder[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _public_leases(count: Any, where: ColumnElement[bool], *columns: Any) -> Any:
    """SELECT ``columns``, ``count`` over leases on public networks held by interfaces
    matching ``where`` (``nic`` is the interface, ``net`` the network)."""
    return (
        select(*columns, count)
        .select_from(Lease)
        .join(_NIC, _NIC.id == Lease.link_id)
        .join(_NET, _NET.id == Lease.network_id)
        .join(User, User.name == _NET.owner)
        .where(where, User.is_admin.is_(True))
    )


_USE = (
    select(QuotaUse.__table__.c.resource, QuotaUse.__table__.c.amount)
    .where(
        QuotaUse.__table__.c.scope == bindparam("scope"),
        QuotaUse.__table__.c.name == bindparam("name"),
    )
)
"""The counters of one holder: a read of the primary key's first two columns."""


@functools.cache
def _overrides_statement(holders: int) -> Select[Any]:
    """The read of the quota rows of ``holders`` holders (bound ``scope<i>``, ``name<i>``),
    built once per count: every create and upload runs it inside the write transaction, and
    building it cost more than running it."""
    table = QuotaLimit.__table__.c
    return select(table.scope, table.name, table.resource, table.maximum).where(
        or_(
            *(
                and_(table.scope == bindparam(f"scope{i}"), table.name == bindparam(f"name{i}"))
                for i in range(holders)
            )
        )
    )
