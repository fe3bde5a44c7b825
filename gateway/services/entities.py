"""What OCCI verbs mean: the service behind the OCCI blueprint.

Every write runs in one transaction (rows, placement, operation records) and enqueues its jobs
after the commit. If the queue refuses a job, the rows are rolled back by a compensating
transaction and the client gets a 503: nothing half-written stays behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from auth.principal import Principal
from backends.base import DEFAULT_CONSOLE_BYTES
from gateway import jobs
from gateway.config import Config
from gateway.errors import (
    BackendError,
    Conflict,
    InvalidAttribute,
    InvalidRequest,
    NotFound,
    NotImplementedByServer,
    PayloadTooLarge,
    ServiceUnavailable,
)
from gateway.queue import JobQueue
from gateway.scheduler import place
from gateway.services.catalog import Catalog
from gateway.services.entity_cache import EntityCache
from gateway.services.plans import (
    JobFunc,
    Planner,
    apply_template_sizes,
    compute_size,
    location_path,
    operation,
    without_state,
)
from gateway.services.quotas import Quotas, held
from gateway.services.rows import (
    CHUNK,
    EntityRecord,
    core_id,
    entity_query,
    find,
    records,
    to_entities,
    to_entity,
    valid_actions,
)
from gateway.services.tenancy import (
    GROUP_ATTRIBUTE,
    OWNER_ATTRIBUTE,
    Tenancy,
    access_key,
    group_name,
)
from gateway.store.db import Store
from gateway.store.models import EntityMixin, EntityRow, Image, Lease, Operation, UserMixin
from occi import infrastructure as infra
from occi.core import ActionRequest, Entity, EntityRequest, Kind, Mixin, Resource
from occi.registry import Registry
from occi.validation import canonical_attributes, check_attributes, coerce, definitions

Job = tuple[str | None, JobFunc, str, str]
R = TypeVar("R", bound=EntityRecord)

CONSOLE_WAIT_SECONDS = 10
"""How long a console read waits for the host's worker before answering 503 (to become the
setting ``console_wait`` in :mod:`gateway.defaults`)."""
CONSOLE_MAX_BYTES = 1024 * 1024
"""The most of a console log one read returns; a larger ``?bytes=`` gets this much."""


@dataclass(frozen=True)
class Page:
    """``?page=&number=`` (1-based)."""

    page: int
    number: int


@dataclass
class Filter:
    """Collection filter: entities having every category and every attribute value."""

    categories: Sequence[str] = ()
    attributes: dict[str, Any] | None = None


class OcciService:
    def __init__(self, store: Store, queue: JobQueue, catalog: Catalog, config: Config) -> None:
        self.store = store
        self.queue = queue
        self.catalog = catalog
        self.config = config
        self.cache = EntityCache(config.entity_cache_size)
        self.tenancy = Tenancy.from_config(config)
        self.quotas = Quotas(config)

    def registry(self, principal: Principal) -> Registry:
        return self.catalog.registry(principal)

    # --- reading --------------------------------------------------------------------------

    def collection(
        self,
        principal: Principal,
        category: Kind | Mixin,
        *,
        full: bool,
        flt: Filter | None = None,
        page: Page | None = None,
    ) -> list[Entity]:
        if page is not None and page.number > self.config.page_max:
            raise PayloadTooLarge(
                f"number={page.number} is over the maximum page size {self.config.page_max}"
            )
        full = full or bool(flt and flt.attributes)
        with self.store.read() as reader:
            # Before anything the entities are built from (registry, rows): see EntityCache.put.
            generation = self.store.generation(reader) if full else None
            registry = self.catalog.registry(principal, reader)
            query = self._visible_records(principal)
            if isinstance(category, Kind):
                kinds = [k.type_id for k in registry.kinds.values() if k.is_a(category)]
                query = query.where(EntityRow.kind.in_(kinds))
            else:
                query = query.where(
                    EntityRow.id.in_(
                        select(EntityMixin.entity_id).where(EntityMixin.mixin == category.type_id)
                    )
                )
            for type_id in flt.categories if flt else ():
                query = _with_category(query, registry, type_id)
            query = query.order_by(EntityRow.created_at, EntityRow.id)
            if page is not None and not (flt and flt.attributes):
                query = query.offset((page.page - 1) * page.number).limit(page.number)
            if not full:
                entities = to_entities(reader, records(reader, query), registry, full=False)
            else:
                entities = self._full(reader, generation, principal, registry, query)
        if flt and flt.attributes:
            wanted = canonical_attributes(flt.attributes)
            entities = [
                e
                for e in entities
                if all(_equal(e.attributes.get(k), v) for k, v in wanted.items())
            ]
            if page is not None:
                entities = entities[(page.page - 1) * page.number : page.page * page.number]
        return entities

    def everything(self, principal: Principal) -> list[Entity]:
        """Every entity visible to the principal (``GET /``), as locations."""
        with self.store.read() as reader:
            registry = self.catalog.registry(principal, reader)
            query = self._visible_records(principal).order_by(EntityRow.created_at)
            return to_entities(reader, records(reader, query), registry, full=False)

    def get(self, principal: Principal, kind: Kind, entity_id: str) -> Entity:
        # The generation is read before the row: a write committed in between leaves a newer
        # entity under an older generation, which no later read asks for.
        generation = self.store.current_generation()
        key = access_key(principal)
        entity = self.cache.get(generation, key, entity_id)
        if entity is None:
            with self.store.read() as reader:
                row = self._seen(principal, kind, entity_id, find(reader, entity_id))
                entity = to_entity(reader, row, self.catalog.registry(principal, reader))
            self.cache.put(generation, key, [entity])
        if entity.kind.type_id != kind.type_id:
            raise NotFound(f"no {kind.term} {entity_id}")
        return entity

    def console(self, principal: Principal, compute_id: str, max_bytes: int | None) -> str:
        """The end of a compute's serial console: its last ``max_bytes`` bytes (default
        ``DEFAULT_CONSOLE_BYTES``, at most :data:`CONSOLE_MAX_BYTES`), read by the worker of
        the compute's host, where the log is (ServiceUnavailable when it does not answer in
        :data:`CONSOLE_WAIT_SECONDS`). NotFound as for :meth:`get`."""
        if max_bytes is not None and max_bytes < 1:
            raise InvalidRequest(f"bytes must be a positive whole number, not {max_bytes}")
        size = min(max_bytes or DEFAULT_CONSOLE_BYTES, CONSOLE_MAX_BYTES)
        with self.store.read() as reader:
            row = self._seen(principal, infra.COMPUTE, compute_id, find(reader, compute_id))
        if row.host is None:
            return ""  # never placed: no host has a console of it
        tail = self.queue.call(
            row.host, jobs.read_console, compute_id, size, wait=CONSOLE_WAIT_SECONDS
        )
        if tail.error is not None:
            raise BackendError(f"console of compute {compute_id}: {tail.error}")
        return tail.text

    def _full(
        self,
        reader: Connection,
        generation: object,
        principal: Principal,
        registry: Registry,
        query: Select[Any],
    ) -> list[Entity]:
        """The entities ``query`` selects, with mixins and links; cached ones from the cache."""
        ids = list(reader.scalars(query.with_only_columns(EntityRow.id)))
        key = access_key(principal)
        known = self.cache.get_many(generation, key, ids)
        missing = [i for i in ids if i not in known]
        fresh: list[Entity] = []
        for start in range(0, len(missing), CHUNK):
            chunk = records(
                reader,
                query.where(EntityRow.id.in_(missing[start : start + CHUNK]))
                .limit(None)
                .offset(None),
            )
            fresh += to_entities(reader, chunk, registry)
        self.cache.put(generation, key, fresh)
        known.update((e.id, e) for e in fresh)
        return [known[i] for i in ids if i in known]

    # --- creating and changing ------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        kind: Kind | None,
        requests: Sequence[EntityRequest],
        entity_id: str | None = None,
    ) -> list[Entity]:
        if not requests:
            raise InvalidRequest("the request holds no entity")
        registry = self.catalog.registry(principal)  # before the write lock: keep it short
        with self.store.session(write=True) as session:
            planner = Planner(
                session, registry, principal, self.config, self.catalog.default_flavour(registry)
            )
            plans = [planner.create(r, kind, entity_id) for r in requests]
            self.quotas.check_created(session, principal, [p.entity for p in plans])
            created = [(p.entity.id, p.entity.kind) for p in plans]
        self._enqueue(
            [job for plan in plans for job in plan.jobs], undo_create=[i for i, _ in created]
        )
        # A create answers with locations only: the entities as far as a location needs them.
        return [Resource(id=i, kind=registry.kind(k)) for i, k in created]

    def replace(
        self, principal: Principal, kind: Kind, entity_id: str, request: EntityRequest
    ) -> tuple[Entity, bool]:
        """PUT: create at this URL, or replace mixins and mutable attributes (links kept)."""
        with self.store.session() as session:
            exists = session.get(EntityRow, entity_id) is not None
        if not exists:
            return self.create(principal, kind, [request], entity_id)[0], True
        return self.update(principal, kind, entity_id, request, replace=True), False

    def update(
        self,
        principal: Principal,
        kind: Kind,
        entity_id: str,
        request: EntityRequest,
        *,
        replace: bool = False,
    ) -> Entity:
        """Partial update (POST to the entity); ``replace`` makes the request's mixins the
        whole set. A new resource_tpl or a new size is a resize."""
        pending: list[Job] = []
        with self.store.session(write=True) as session:
            row = self._load(session, principal, kind, entity_id)
            before = held(row)  # for the quota check of a resize or a new group
            registry = self.catalog.registry(principal, session)
            entity_kind = registry.kind(row.kind)
            current = list(
                session.scalars(
                    select(EntityMixin.mixin)
                    .where(EntityMixin.entity_id == entity_id)
                    .order_by(EntityMixin.position)
                )
            )
            mixins = self._updated_mixins(registry, entity_kind, current, request, replace)
            defs = definitions(entity_kind, mixins)
            attrs = without_state(entity_kind, canonical_attributes(request.attributes))
            for server_side in ("occi.core.id", "occi.core.source", "occi.core.target"):
                given = attrs.pop(server_side, None)
                if server_side == "occi.core.id" and given not in (None, core_id(row.id), row.id):
                    raise InvalidRequest(f"occi.core.id {given} differs from the URL's id")
            attrs = check_attributes(attrs, defs, entity_kind.term)
            self._regroup(session, principal, row, attrs)
            merged = {**(row.attributes or {}), **attrs}
            _check_immutable(row.attributes or {}, attrs, defs)
            _check_addressing(session, row, attrs)
            resize = self._resize(session, row, entity_kind, mixins, merged)
            row.attributes = {k: v for k, v in merged.items() if v is not None}
            session.execute(delete(EntityMixin).where(EntityMixin.entity_id == entity_id))
            session.flush()
            for position, mixin in enumerate(mixins):
                session.add(
                    EntityMixin(entity_id=entity_id, mixin=mixin.type_id, position=position)
                )
            self.quotas.check_changed(session, principal, row, before)
            if resize is not None:
                pending.append(resize)
        self._enqueue(pending)
        return self.get(principal, kind, entity_id)

    def _updated_mixins(
        self,
        registry: Registry,
        kind: Kind,
        current: list[str],
        request: EntityRequest,
        replace: bool,
    ) -> list[Mixin]:
        asked = [registry.mixin(t) for t in request.mixins if t not in registry.kinds]
        if request.kind and request.kind != kind.type_id:
            raise InvalidRequest(f"an entity's kind cannot change (it is {kind.type_id})")
        for mixin in asked:
            if not mixin.applies_to(kind):
                raise InvalidRequest(f"mixin {mixin.type_id} does not apply to {kind.type_id}")
        old = [registry.mixins[t] for t in current if t in registry.mixins]
        old_os = [m for m in old if m.depends_on(infra.OS_TPL)]
        new_os = [m for m in asked if m.depends_on(infra.OS_TPL)]
        if new_os and old_os and new_os != old_os:
            raise NotImplementedByServer(
                "replacing the OS template of an existing compute is "
                "not offered; create a new compute instead"
            )
        if replace:
            keep_os = old_os if not new_os else []
            return list(dict.fromkeys([*keep_os, *asked]))
        if any(m.depends_on(infra.RESOURCE_TPL) for m in asked):
            old = [m for m in old if not m.depends_on(infra.RESOURCE_TPL)]
        return list(dict.fromkeys([*old, *asked]))

    def _resize(
        self,
        session: Session,
        row: EntityRow,
        kind: Kind,
        mixins: list[Mixin],
        attrs: dict[str, Any],
    ) -> Job | None:
        if kind == infra.COMPUTE:
            apply_template_sizes(mixins, attrs)
            cores, memory = compute_size(attrs)
            if (cores, memory) == (row.cores, row.memory_mib):
                return None
            row.cores, row.memory_mib = 0, 0
            session.flush()
            assert row.host is not None
            place(
                session,
                cores=cores,
                memory_mib=memory,
                policy=self.config.placement_policy,
                only=row.host,
            )
            row.cores, row.memory_mib, row.state_message = cores, memory, "resize queued"
            return (
                row.host,
                jobs.act_on_compute,
                row.id,
                operation(session, row.id, "resize", row.host),
            )
        if kind == infra.STORAGE:
            old = float((row.attributes or {}).get("occi.storage.size", 0))
            new = float(attrs.get("occi.storage.size", old))
            if new < old:
                raise Conflict(f"a volume cannot shrink (from {old} GiB to {new} GiB)")
            if new > old:
                row.state_message = "resize queued"
                return (
                    row.host,
                    jobs.act_on_storage,
                    row.id,
                    operation(session, row.id, "resize", row.host),
                )
        return None

    # --- deleting -------------------------------------------------------------------------

    def delete(self, principal: Principal, kind: Kind, entity_id: str) -> None:
        with self.store.session(write=True) as session:
            row = self._load(session, principal, kind, entity_id)
            pending = self._mark_deleted(session, row)
        self._enqueue(pending)

    def delete_collection(self, principal: Principal, category: Kind | Mixin) -> None:
        if isinstance(category, Mixin):
            self.dissociate(principal, category, None)
            return
        pending: list[Job] = []
        with self.store.session(write=True) as session:
            rows = session.scalars(
                self._changeable(principal).where(EntityRow.kind == category.type_id)
            ).all()
            for row in rows:
                if not row.deleting:
                    pending.extend(self._mark_deleted(session, row))
        self._enqueue(pending)

    def _mark_deleted(self, session: Session, row: EntityRow) -> list[Job]:
        if row.kind in (infra.STORAGE.type_id, infra.NETWORK.type_id):
            users = session.scalars(
                select(EntityRow.source).where(
                    EntityRow.target_id == row.id, EntityRow.deleting.is_(False)
                )
            ).all()
            if users:
                raise Conflict(
                    f"{row.kind.rsplit('#', 1)[1]} {row.id} is linked from compute "
                    f"{', '.join(sorted(set(filter(None, users))))}; delete the link "
                    "or the compute first"
                )
        row.deleting, row.state_message = True, "deleting"
        if row.kind == infra.COMPUTE.type_id:
            for link in session.scalars(select(EntityRow).where(EntityRow.source == row.id)):
                link.deleting = True
            return [
                (
                    row.host,
                    jobs.delete_compute,
                    row.id,
                    operation(session, row.id, "delete", row.host),
                )
            ]
        if row.source is not None:
            compute = session.get(EntityRow, row.source)
            host = compute.host if compute else None
            return [(host, jobs.detach_link, row.id, operation(session, row.id, "detach", host))]
        job = jobs.delete_storage if row.kind == infra.STORAGE.type_id else jobs.delete_network
        return [(row.host, job, row.id, operation(session, row.id, "delete", row.host))]

    # --- actions --------------------------------------------------------------------------

    def act(
        self, principal: Principal, kind: Kind, entity_id: str, request: ActionRequest
    ) -> Entity | Mixin:
        with self.store.session(write=True) as session:
            row = self._load(session, principal, kind, entity_id)
            registry = self.catalog.registry(principal, session)
            job, made = self._trigger(session, principal, registry, row, request)
        self._enqueue([job])
        return made if made is not None else self.get(principal, kind, entity_id)

    def act_on_collection(
        self, principal: Principal, category: Kind | Mixin, request: ActionRequest
    ) -> list[Entity]:
        pending: list[Job] = []
        with self.store.session(write=True) as session:
            registry = self.catalog.registry(principal, session)
            query = self._changeable(principal)
            if isinstance(category, Kind):
                query = query.where(EntityRow.kind == category.type_id)
            else:
                query = query.where(
                    EntityRow.id.in_(
                        select(EntityMixin.entity_id).where(EntityMixin.mixin == category.type_id)
                    )
                )
            rows = session.scalars(query.order_by(EntityRow.created_at)).all()
            for row in rows:
                pending.append(self._trigger(session, principal, registry, row, request)[0])
        self._enqueue(pending)
        return self.collection(principal, category, full=False)

    def _trigger(
        self,
        session: Session,
        principal: Principal,
        registry: Registry,
        row: EntityRow,
        request: ActionRequest,
    ) -> tuple[Job, Mixin | None]:
        kind = registry.kind(row.kind)
        action = registry.actions.get(request.action)
        if action is None or action not in kind.actions:
            raise InvalidRequest(f"action {request.action} is not defined for {kind.term}")
        allowed = valid_actions(kind, row.state)
        if action not in allowed:
            names = ", ".join(a.term for a in allowed) or "none"
            raise Conflict(
                f"action {action.term} is not valid while the {kind.term} is "
                f"{row.state} (valid now: {names})"
            )
        # No "busy" refusal: a host's jobs run in order on its one queue, and each drives the
        # domain to a target state idempotently, so an action behind a pending one is safe.
        params = {}
        for name, value in canonical_attributes(request.attributes).items():
            definition = action.attribute(name)
            if definition is None:
                raise InvalidAttribute(f"action {action.term} has no parameter {name}")
            params[name] = coerce(definition, value)
        made = None
        if action == infra.SAVE:
            made, params = self._save(session, principal, registry, row, params)
        row.state_message = f"{action.term} queued"
        job = {
            infra.COMPUTE: jobs.act_on_compute,
            infra.STORAGE: jobs.act_on_storage,
            infra.NETWORK: jobs.act_on_network,
        }[kind]
        return (
            row.host,
            job,
            row.id,
            operation(session, row.id, action.term, row.host, params),
        ), made

    def _save(
        self,
        session: Session,
        principal: Principal,
        registry: Registry,
        row: EntityRow,
        params: dict[str, Any],
    ) -> tuple[Mixin, dict[str, Any]]:
        from gateway.services.catalog import bump_catalog
        from occi.registry import OsImage, os_template

        base = str(params.get("name") or (row.attributes or {}).get("occi.core.title") or "image")
        term = _term(base)
        taken = {m.term for m in registry.templates(infra.OS_TPL)}
        if term in taken or session.get(Image, term) is not None:
            term = f"{term}-{row.id[:8]}"
        if session.get(Image, term) is not None:
            raise Conflict(f"an OS template named {term} exists already; pass another name")
        session.add(
            Image(
                term=term,
                title=f"Saved from compute {row.id}",
                source="",
                owner=principal.name,
                group=row.group,
                state="saving",
                origin_compute=row.id,
            )
        )
        bump_catalog(session)
        return os_template(OsImage(term, term), self.catalog.os_scheme), {**params, "image": term}

    # --- mixin collections ----------------------------------------------------------------

    def associate(
        self, principal: Principal, mixin: Mixin, locations: Sequence[str], *, replace: bool = False
    ) -> list[Entity]:
        if not mixin.user_defined:
            raise InvalidRequest(
                f"{mixin.type_id} is a provider template; attach it by updating the entity"
            )
        with self.store.session(write=True) as session:
            self._check_mixin_change(session, principal, mixin)
            rows = [self._by_location(session, principal, loc) for loc in locations]
            if replace:
                session.execute(
                    delete(EntityMixin).where(
                        EntityMixin.mixin == mixin.type_id,
                        EntityMixin.entity_id.in_(self._changeable_ids(principal)),
                    )
                )
                session.flush()
            for row in rows:
                if session.get(EntityMixin, (row.id, mixin.type_id)) is None:
                    session.add(EntityMixin(entity_id=row.id, mixin=mixin.type_id, position=99))
        return self.collection(principal, mixin, full=False)

    def dissociate(
        self, principal: Principal, mixin: Mixin, locations: Sequence[str] | None
    ) -> None:
        if not mixin.user_defined:
            raise InvalidRequest(
                f"{mixin.type_id} is a provider template; detach it by updating the entity"
            )
        with self.store.session(write=True) as session:
            self._check_mixin_change(session, principal, mixin)
            query = delete(EntityMixin).where(
                EntityMixin.mixin == mixin.type_id,
                EntityMixin.entity_id.in_(self._changeable_ids(principal)),
            )
            if locations is not None:
                ids = [self._by_location(session, principal, loc).id for loc in locations]
                query = query.where(EntityMixin.entity_id.in_(ids))
            session.execute(query)

    # --- helpers --------------------------------------------------------------------------

    def _changeable(self, principal: Principal) -> Select[Any]:
        """Live entities the principal may change, as ORM rows (for writes)."""
        where = self.tenancy.changeable(principal, EntityRow.owner, EntityRow.group)
        query = select(EntityRow).where(EntityRow.deleting.is_(False))
        return query if where is None else query.where(where)

    def _visible_records(self, principal: Principal) -> Select[Any]:
        """Live entities the principal may see, as plain columns (for renderings)."""
        where = self.tenancy.visible(principal, EntityRow.owner, EntityRow.group)
        query = entity_query(EntityRow.deleting.is_(False))
        return query if where is None else query.where(where)

    def _changeable_ids(self, principal: Principal) -> Select[Any]:
        where = self.tenancy.changeable(principal, EntityRow.owner, EntityRow.group)
        return select(EntityRow.id) if where is None else select(EntityRow.id).where(where)

    def _seen(self, principal: Principal, kind: Kind, entity_id: str, row: R | None) -> R:
        """``row`` if it is a live entity of ``kind`` the principal may see, else the 404 of
        an id that does not exist (the same answer: nothing tells the two apart)."""
        if (
            row is None
            or row.deleting
            or row.kind != kind.type_id
            or not self.tenancy.sees(principal, row.owner, row.group)
        ):
            raise NotFound(f"no {kind.term} {entity_id}")
        return row

    def _load(
        self, session: Session, principal: Principal, kind: Kind, entity_id: str
    ) -> EntityRow:
        """The entity to change: 404 as for :meth:`_seen`, 403 for a group member who may
        only read it."""
        row = self._seen(principal, kind, entity_id, session.get(EntityRow, entity_id))
        self.tenancy.check_change(
            principal, row.owner, row.group, NotFound(f"no {kind.term} {entity_id}")
        )
        return row

    def _check_mixin_change(self, session: Session, principal: Principal, mixin: Mixin) -> None:
        """A user mixin's collection changes only by those who may change the mixin."""
        row = session.get(UserMixin, mixin.type_id)
        if row is not None:
            self.tenancy.check_change(
                principal, row.owner, row.group, NotFound(f"no collection at {mixin.location}")
            )

    def _regroup(
        self, session: Session, principal: Principal, row: EntityRow, attrs: dict[str, Any]
    ) -> None:
        """Take the owner and group attributes out of an update's ``attrs``: the owner never
        changes, the group only by the owner or an admin, and a link's follows its source
        compute (whose links change with it)."""
        owner = attrs.pop(OWNER_ATTRIBUTE, None)
        if owner is not None and owner != row.owner:
            raise InvalidAttribute(f"{OWNER_ATTRIBUTE} is immutable (it is {row.owner!r})")
        if GROUP_ATTRIBUTE not in attrs:
            return
        asked = attrs.pop(GROUP_ATTRIBUTE)
        if row.source is not None:
            if group_name(asked) != row.group:
                raise InvalidAttribute(
                    f"a link's {GROUP_ATTRIBUTE} is its source compute's "
                    f"({row.group or 'none'}); change the compute's"
                )
            return
        group = self.tenancy.regroup(principal, row.owner, row.group, asked)
        if group != row.group:
            row.group = group
            session.execute(
                update(EntityRow).where(EntityRow.source == row.id).values(group=group)
            )

    def _by_location(self, session: Session, principal: Principal, location: str) -> EntityRow:
        path = location_path(location)
        for kind in infra.KINDS:
            if kind.location and path.startswith(kind.location):
                return self._load(session, principal, kind, path.removeprefix(kind.location))
        raise NotFound(f"no entity at {location}")

    def _enqueue(self, pending: Sequence[Job], undo_create: Sequence[str] = ()) -> None:
        done: list[Job] = []
        try:
            for host, job, entity_id, op_id in pending:
                self.queue.enqueue(host, job, entity_id, op_id)
                done.append((host, job, entity_id, op_id))
        except ServiceUnavailable:
            self._compensate([p for p in pending if p not in done], undo_create)
            raise

    def _compensate(self, failed: Sequence[Job], created: Sequence[str]) -> None:
        """The queue refused: remove what a create wrote, fail the operations it could not
        enqueue (the reconciler re-enqueues nothing that is failed)."""
        with self.store.session(write=True) as session:
            for _host, _job, entity_id, op_id in failed:
                op = session.get(Operation, op_id)
                if op is not None:
                    op.status, op.message = "failed", "job queue unavailable"
                row = session.get(EntityRow, entity_id)
                if row is not None and entity_id not in created:
                    row.state_message = "job queue unavailable; retry the request"
                    row.deleting = False
                    if row.kind == infra.COMPUTE.type_id:
                        _undo_link_deletion(session, row.id)
            if created:
                ids = list(created) + list(
                    session.scalars(select(EntityRow.id).where(EntityRow.source.in_(created)))
                )
                session.execute(delete(EntityMixin).where(EntityMixin.entity_id.in_(ids)))
                session.execute(delete(Lease).where(Lease.link_id.in_(ids)))
                session.execute(delete(Operation).where(Operation.entity_id.in_(ids)))
                session.execute(delete(EntityRow).where(EntityRow.id.in_(ids)))


def _undo_link_deletion(session: Session, compute_id: str) -> None:
    """A compute delete the queue refused also marked its links deleting: unmark them, except
    links with a detach of their own still pending."""
    detaching = select(Operation.entity_id).where(
        Operation.verb == "detach", Operation.status.in_(("queued", "running"))
    )
    for link in session.scalars(
        select(EntityRow).where(EntityRow.source == compute_id, EntityRow.id.not_in(detaching))
    ):
        link.deleting = False


_LEASED = ("occi.networkinterface.address", "occi.networkinterface.mac")


def _check_addressing(session: Session, row: EntityRow, new: dict[str, Any]) -> None:
    """Leased addresses change only by re-creating the interface; a network's range only
    while nothing holds a lease in it."""
    old = row.attributes or {}
    if row.kind == infra.NETWORKINTERFACE.type_id:
        leased = session.scalar(select(Lease.address).where(Lease.link_id == row.id))
        for name in _LEASED:
            if leased is not None and name in new and str(new[name]).lower() != str(
                old.get(name, "")
            ).lower():
                raise Conflict(
                    f"{name} comes from the interface's lease ({old.get(name)}); delete the "
                    "interface and link a new one to change it"
                )
    if row.kind == infra.NETWORK.type_id:
        changed = any(
            name in new and new[name] != old.get(name)
            for name in ("occi.network.address", "occi.network.gateway")
        )
        in_use = session.scalar(select(Lease.link_id).where(Lease.network_id == row.id).limit(1))
        if changed and in_use is not None:
            raise Conflict(
                f"network {row.id} has leased addresses; its address range and gateway "
                "change only when no interface is linked to it"
            )


def _check_immutable(old: dict[str, Any], new: dict[str, Any], defs: dict[str, Any]) -> None:
    for name, value in new.items():
        definition = defs.get(name)
        if definition is not None and not definition.mutable and name in old and old[name] != value:
            raise InvalidAttribute(f"{name} is immutable (it is {old[name]!r})")


def _with_category(query, registry: Registry, type_id: str):  # type: ignore[no-untyped-def]
    if type_id in registry.kinds:
        kind = registry.kinds[type_id]
        return query.where(
            EntityRow.kind.in_([k.type_id for k in registry.kinds.values() if k.is_a(kind)])
        )
    if type_id in registry.mixins:
        return query.where(
            EntityRow.id.in_(select(EntityMixin.entity_id).where(EntityMixin.mixin == type_id))
        )
    raise InvalidRequest(f"unknown category {type_id} in filter")


def _equal(have: Any, want: Any) -> bool:
    if isinstance(have, int | float) and not isinstance(have, bool):
        try:
            return float(have) == float(want)
        except (TypeError, ValueError):
            return False
    return have == want or str(have) == str(want)


def _term(text: str) -> str:
    import re

    term = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower()
    return term[:48] or "image"
