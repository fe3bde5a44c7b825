"""The categories a principal sees: infrastructure, provider templates (flavours from the
configuration, public images and the images and user mixins the principal sees under
:mod:`gateway.services.tenancy`: their own and their groups').

A :class:`~occi.registry.Registry` is cached per :func:`~gateway.services.tenancy.access_key`
(name, admin flag, groups) and rebuilt when the store's ``catalog_version`` changes (bumped by
every change of images or user mixins).
"""

from __future__ import annotations

import threading

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from auth.principal import Principal
from gateway.config import Config
from gateway.services.tenancy import Tenancy, access_key
from gateway.store.db import Store
from gateway.store.models import Image, Meta, UserMixin
from occi import infrastructure as infra
from occi.core import Mixin
from occi.registry import Flavour, OsImage, Registry, os_template, resource_template

CATALOG_VERSION = "catalog_version"
_META = Meta.__table__.c
_VERSION = select(_META.value).where(_META.key == CATALOG_VERSION)


def bump_catalog(session: Session) -> None:
    """Invalidate every cached registry; call inside the transaction that changed the catalog."""
    changed = session.execute(
        update(Meta).where(Meta.key == CATALOG_VERSION).values(value=Meta.value + 1)
    )
    if not getattr(changed, "rowcount", 0):
        session.add(Meta(key=CATALOG_VERSION, value=1))


def template_scheme(config: Config, parent: str) -> str:
    """Scheme of the provider templates below ``parent`` (``os_tpl`` or ``resource_tpl``)."""
    return config.template_scheme.rstrip("/") + f"/{parent}#"


def flavours(config: Config) -> list[Flavour]:
    return [
        Flavour(
            term=term,
            title=str(spec.get("title", term)),
            cores=int(spec["cores"]),
            memory=float(spec["memory"]),
            share=int(spec.get("share", 1)),
        )
        for term, spec in config.flavours.items()
    ]


class Catalog:
    """Builds and caches registries."""

    def __init__(self, store: Store, config: Config) -> None:
        self._store = store
        self._config = config
        self.tenancy = Tenancy.from_config(config)
        self.os_scheme = template_scheme(config, "os_tpl")
        self.resource_scheme = template_scheme(config, "resource_tpl")
        self._flavour_mixins = [
            resource_template(f, self.resource_scheme) for f in flavours(config)
        ]
        self._cache: dict[str, tuple[int, Registry]] = {}
        self._lock = threading.Lock()

    def registry(
        self, principal: Principal, reader: Connection | Session | None = None
    ) -> Registry:
        """The principal's registry; one cheap query checks that the cached one is current."""
        if reader is None:
            with self._store.read() as own:
                return self.registry(principal, own)
        version = reader.scalar(_VERSION) or 0
        key = access_key(principal)
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached[0] == version:
            return cached[1]
        if isinstance(reader, Session):
            registry = self._build(principal, reader)
        else:
            # On the reader's own connection: a second one taken from the pool while this one
            # is held deadlocks a pool that concurrent requests have emptied.
            with Session(bind=reader) as session:
                registry = self._build(principal, session)
        with self._lock:
            self._cache[key] = (version, registry)
        return registry

    def _build(self, principal: Principal, session: Session) -> Registry:
        seen = self.tenancy.visible(principal, Image.owner, Image.group)
        query = select(Image)
        if seen is not None:
            query = query.where(or_(Image.owner.is_(None), seen))
        images = session.scalars(query).all()
        os_mixins = [
            os_template(OsImage(i.term, i.title or i.term), self.os_scheme) for i in images
        ]
        seen = self.tenancy.visible(principal, UserMixin.owner, UserMixin.group)
        mixins = select(UserMixin) if seen is None else select(UserMixin).where(seen)
        user = [user_mixin(row) for row in session.scalars(mixins)]
        return Registry.build(templates=[*self._flavour_mixins, *os_mixins], user_mixins=user)

    def default_flavour(self, registry: Registry) -> Mixin | None:
        return registry.mixins.get(self.resource_scheme + self._config.default_flavour)


def user_mixin(row: UserMixin) -> Mixin:
    depends = tuple(m for m in (infra_mixin(d) for d in row.depends) if m is not None)
    return Mixin(
        row.scheme,
        row.term,
        row.title,
        depends=depends,
        location=row.location,
        user_defined=True,
        owner=row.owner,
    )


def infra_mixin(type_id: str) -> Mixin | None:
    for mixin in infra.MIXINS:
        if mixin.type_id == type_id:
            return mixin
    return None
