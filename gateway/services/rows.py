"""Store rows to OCCI model objects (for rendering) in as few queries as a listing allows."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gateway.store.models import EntityMixin, EntityRow
from occi import infrastructure as infra
from occi.core import Action, Entity, Kind, Link, Mixin, Resource
from occi.registry import Registry

T = TypeVar("T")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def valid_actions(kind: Kind, state: str) -> list[Action]:
    """Actions of ``kind`` allowed from ``state`` (rendered as action links)."""
    rules = infra.ACTION_STATES.get(kind.type_id, {})
    return [a for a in kind.actions if state in rules.get(a.term, ())]


def core_id(entity_id: str) -> str:
    """``occi.core.id`` of an entity: a URN for UUIDs, a client-chosen plain id as it is."""
    return f"urn:uuid:{entity_id}" if _UUID.match(entity_id) else entity_id


def _attributes(row: EntityRow, kind: Kind) -> dict[str, object]:
    attrs: dict[str, object] = {"occi.core.id": core_id(row.id)}
    attrs.update(row.attributes or {})
    state_name = infra.STATE_ATTRIBUTE.get(kind.type_id)
    if state_name:
        attrs[state_name] = row.state
        if row.state_message:
            attrs[f"{state_name}.message"] = row.state_message
    return attrs


def _mixins(names: Sequence[str], registry: Registry) -> list[Mixin]:
    return [registry.mixins[n] for n in names if n in registry.mixins]


def to_link(row: EntityRow, registry: Registry, mixin_names: Sequence[str]) -> Link:
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
    session: Session, rows: Sequence[EntityRow], registry: Registry, *, full: bool = True
) -> list[Entity]:
    """Model objects for ``rows``; ``full`` loads mixins and inline links (else bare kinds,
    enough for location-only renderings)."""
    if not full:
        return [Resource(id=r.id, kind=registry.kind(r.kind)) for r in rows]
    ids = [r.id for r in rows]
    mixins = _mixins_of(session, ids)
    links_by_source: dict[str, list[EntityRow]] = defaultdict(list)
    resource_ids = [r.id for r in rows if r.source is None]
    if resource_ids:
        link_rows = _chunked(
            session,
            resource_ids,
            lambda chunk: select(EntityRow).where(
                EntityRow.source.in_(chunk), EntityRow.deleting.is_(False)
            ),
        )
        link_mixins = _mixins_of(session, [link.id for link in link_rows])
        for link in link_rows:
            links_by_source[link.source or ""].append(link)
        mixins.update(link_mixins)
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


def _mixins_of(session: Session, ids: Sequence[str]) -> dict[str, list[str]]:
    """Mixin type-ids per entity, in order; plain tuples (no ORM objects) for big listings."""
    out: dict[str, list[str]] = defaultdict(list)
    ids = list(ids)
    for start in range(0, len(ids), 900):
        pairs = session.execute(
            select(EntityMixin.entity_id, EntityMixin.mixin)
            .where(EntityMixin.entity_id.in_(ids[start : start + 900]))
            .order_by(EntityMixin.entity_id, EntityMixin.position)
        )
        for entity_id, mixin in pairs:
            out[entity_id].append(mixin)
    return out


def _chunked(session: Session, ids: list[str], build: Callable[[list[str]], Select[T]]) -> list[T]:
    """Run ``build(chunk)`` for chunks of ``ids`` (SQLite caps bound parameters)."""
    out: list[T] = []
    for start in range(0, len(ids), 900):
        out.extend(session.scalars(build(ids[start : start + 900])).all())
    return out
