"""Entities as an API process last read them, for as long as nothing was written since.

Monitoring probes and dashboards poll the same entities and listings many times between two
changes. Each read first asks the store for its generation (one small query, see
:meth:`gateway.store.db.Store.generation`); while it is the one the cached entities were read
at, they are served without the three queries and the model building a fresh read costs. Any
committed write anywhere changes the generation and the whole cache is dropped at the next read,
so a cached entity is never older than what a fresh read would return at that moment.

Entries are per principal: what an entity shows depends on the principal's registry (user
mixins), and an entry exists only if the principal was allowed to see the entity.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from occi.core import Entity


class EntityCache:
    """Model objects by (principal name, entity id), all of one store generation."""

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
