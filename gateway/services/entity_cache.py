"""Entities as an API process last read them, for as long as nothing was written since.

Monitoring probes and dashboards poll the same entities and listings many times between two
changes. Each read first asks the store for its generation (one small query, see
:meth:`gateway.store.db.Store.generation`); while it is the one the cached entities were read
at, they are served without the three queries and the model building a fresh read costs. Any
committed write anywhere changes the generation and the whole cache is dropped at the next read,
so a cached entity is never older than what a fresh read would return at that moment.

Entries are per principal, keyed by :func:`gateway.services.tenancy.access_key` (name, admin
flag, token scope and groups, as the principal of each request carries them): what an entity
shows depends on the principal's registry (user mixins), and an entry exists only if that
principal was allowed to see the entity. A principal whose groups (or scope) changed has
another key and never meets an entry made for the old membership; a change of an entity's
owner or group is a write, which drops the whole cache; the group policy is a setting, fixed
for the life of the process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from occi.core import Entity


class EntityCache:
    """Model objects by (principal's access key, entity id), all of one store generation."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._generation: object = None
        self._entries: dict[tuple[str, str], Entity] = {}
        self._lock = threading.Lock()

    def get(self, generation: object, principal: str, entity_id: str) -> Entity | None:
        with self._lock:
            if generation != self._generation:
                return None
            return self._entries.get((principal, entity_id))

    def get_many(
        self, generation: object, principal: str, entity_ids: Iterable[str]
    ) -> dict[str, Entity]:
        with self._lock:
            if generation != self._generation:
                return {}
            entries = self._entries
            found = ((i, entries.get((principal, i))) for i in entity_ids)
            return {i: e for i, e in found if e is not None}

    def put(self, generation: object, principal: str, entities: Iterable[Entity]) -> None:
        """Remember ``entities`` as read at ``generation`` (read before the entities were)."""
        if self.capacity <= 0 or generation is None:
            return
        with self._lock:
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation
            for entity in entities:
                if len(self._entries) >= self.capacity:
                    del self._entries[next(iter(self._entries))]  # the oldest entry
                self._entries[(principal, entity.id)] = entity
