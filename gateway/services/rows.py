"""Store rows to OCCI model objects (for rendering) in as few queries as a listing allows.

Reads select plain columns (:data:`ENTITY_COLUMNS`) on a Core connection or a session: a
listing of thousands of entities never builds ORM objects. Anything with those attributes is
an :class:`EntityRecord` (a Core row, or an :class:`EntityRow` a write transaction holds).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Select, bindparam, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gateway.store.models import EntityMixin, EntityRow
from occi import infrastructure as infra
from occi.core import Action, Entity, Kind, Link, Mixin, Resource
from occi.registry import Registry

Reader = Connection | Session
_ENTITIES = EntityRow.__table__.c
_MIXINS = EntityMixin.__table__.c
ENTITY_COLUMNS = (
    _ENTITIES.id,
    _ENTITIES.kind,
    _ENTITIES.owner,
    _ENTITIES.group,
    _ENTITIES.attributes,
    _ENTITIES.state,
    _ENTITIES.state_message,
    _ENTITIES.host,
    _ENTITIES.source,
    _ENTITIES.target,
    _ENTITIES.deleting,
)
CHUNK = 900  # SQLite caps bound parameters per statement


class EntityRecord(Protocol):
    """The columns of an entity a rendering needs."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def group(self) -> str | None: ...
    @property
    def attributes(self) -> dict[str, Any]: ...
    @property
    def state(self) -> str: ...
    @property
    def state_message(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def target(self) -> str | None: ...
    @property
    def deleting(self) -> bool: ...


def entity_query(*where: ColumnElement[bool]) -> Select[Any]:
    """``SELECT`` :data:`ENTITY_COLUMNS` ``WHERE`` all of ``where``."""
    return select(*ENTITY_COLUMNS).where(*where)


def records(
    reader: Reader, query: Select[Any], params: dict[str, Any] | None = None
) -> list[EntityRecord]:
    # Core rows carry the ENTITY_COLUMNS names as attributes: they are EntityRecords.
    return cast(list[EntityRecord], reader.execute(query, params).all())


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def valid_actions(kind: Kind, state: str) -> list[Action]:
    """Actions of ``kind`` allowed from ``state`` (rendered as action links)."""
    rules = infra.ACTION_STATES.get(kind.type_id, {})
    return [a for a in kind.actions if state in rules.get(a.term, ())]


def core_id(entity_id: str) -> str:
    """``occi.core.id`` of an entity: a URN for UUIDs, a client-chosen plain id as it is."""
    return f"urn:uuid:{entity_id}" if _UUID.match(entity_id) else entity_id


def _attributes(row: EntityRecord, kind: Kind) -> dict[str, object]:
    attrs: dict[str, object] = {"occi.core.id": core_id(row.id)}
    attrs.update(row.attributes or {})
    attrs[infra.OWNER_ATTRIBUTE] = row.owner
    if row.group is not None:
        attrs[infra.GROUP_ATTRIBUTE] = row.group
    state_name = infra.STATE_ATTRIBUTE.get(kind.type_id)
    if state_name:
        attrs[state_name] = row.state
        if row.state_message:
            attrs[f"{state_name}.message"] = row.state_message
    if kind.type_id == infra.COMPUTE.type_id:
        attrs[infra.CONSOLE_ATTRIBUTE] = infra.console_location(row.id)
    return attrs


def _mixins(names: Sequence[str], registry: Registry) -> list[Mixin]:
    return [registry.mixins[n] for n in names if n in registry.mixins]


def to_link(row: EntityRecord, registry: Registry, mixin_names: Sequence[str]) -> Link:
    kind = registry.kind(row.kind)
    target = row.target or ""
    target_kind = registry.by_location(target.rsplit("/", 1)[0] + "/") if target else None
    attrs = _attributes(row, kind)
    attrs["occi.core.source"] = f"{infra.COMPUTE.location}{row.source}"
    attrs["occi.core.target"] = target
    return Link(
        id=row.id,
        kind=kind,
        mixins=_mixins(mixin_names, registry),
        attributes=attrs,
        actions=valid_actions(kind, row.state),
        source=f"{infra.COMPUTE.location}{row.source}",
        target=target,
        source_kind=infra.COMPUTE,
        target_kind=target_kind if isinstance(target_kind, Kind) else None,
    )


def to_entities(
    reader: Reader, rows: Sequence[EntityRecord], registry: Registry, *, full: bool = True
) -> list[Entity]:
    """Model objects for ``rows``; ``full`` loads mixins and inline links (else bare kinds,
    enough for location-only renderings)."""
    if not full:
        return [Resource(id=r.id, kind=registry.kind(r.kind)) for r in rows]
    resource_ids = [r.id for r in rows if r.source is None]
    link_rows: list[EntityRecord] = []
    for start in range(0, len(resource_ids), CHUNK):
        chunk = resource_ids[start : start + CHUNK]
        link_rows += records(
            reader, entity_query(_ENTITIES.source.in_(chunk), _ENTITIES.deleting.is_(False))
        )
    mixins = _mixins_of(reader, [r.id for r in rows] + [link.id for link in link_rows])
    return build(rows, link_rows, mixins, registry)


# One entity, the most frequent read: fixed statements (built and cache-keyed once).
_ONE = entity_query(_ENTITIES.id == bindparam("id"))
_LINKS_OF_ONE = entity_query(_ENTITIES.source == bindparam("id"), _ENTITIES.deleting.is_(False))
_MIXINS_OF_ONE = (
    select(_MIXINS.entity_id, _MIXINS.mixin)
    .where(
        or_(
            _MIXINS.entity_id == bindparam("id"),
            _MIXINS.entity_id.in_(
                select(_ENTITIES.id).where(_ENTITIES.source == bindparam("id")).scalar_subquery()
            ),
        )
    )
    .order_by(_MIXINS.entity_id, _MIXINS.position)
)


def find(reader: Reader, entity_id: str) -> EntityRecord | None:
    row: EntityRecord | None = reader.execute(_ONE, {"id": entity_id}).first()
    return row


def to_entity(reader: Reader, row: EntityRecord, registry: Registry) -> Entity:
    """The model object of one entity found with :func:`find`, with its links and mixins."""
    links = records(reader, _LINKS_OF_ONE, {"id": row.id}) if row.source is None else []
    mixins: dict[str, list[str]] = defaultdict(list)
    for entity_id, mixin in reader.execute(_MIXINS_OF_ONE, {"id": row.id}):
        mixins[entity_id].append(mixin)
    return build([row], links, mixins, registry)[0]


def build(
    rows: Sequence[EntityRecord],
    link_rows: Sequence[EntityRecord],
    mixins: dict[str, list[str]],
    registry: Registry,
) -> list[Entity]:
    """Model objects from fetched rows: ``link_rows`` are the live links whose source is one
    of ``rows``, ``mixins`` the mixin type-ids of every row and link, in order."""
    links_by_source: dict[str, list[EntityRecord]] = defaultdict(list)
    for link in link_rows:
        links_by_source[link.source or ""].append(link)
    out: list[Entity] = []
    for row in rows:
        if row.source is not None:
            out.append(to_link(row, registry, mixins.get(row.id, [])))
            continue
        kind = registry.kind(row.kind)
        out.append(
            Resource(
                id=row.id,
                kind=kind,
                mixins=_mixins(mixins.get(row.id, []), registry),
                attributes=_attributes(row, kind),
                actions=valid_actions(kind, row.state),
                links=[
                    to_link(link, registry, mixins.get(link.id, []))
                    for link in links_by_source.get(row.id, [])
                ],
            )
        )
    return out


def _mixins_of(reader: Reader, ids: Sequence[str]) -> dict[str, list[str]]:
    """Mixin type-ids per entity, in order."""
    out: dict[str, list[str]] = defaultdict(list)
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        pairs = reader.execute(
            select(_MIXINS.entity_id, _MIXINS.mixin)
            .where(_MIXINS.entity_id.in_(ids[start : start + CHUNK]))
            .order_by(_MIXINS.entity_id, _MIXINS.position)
        )
        for entity_id, mixin in pairs:
            out[entity_id].append(mixin)
    return out
