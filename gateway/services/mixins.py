"""User-defined mixins (tags) through the query interface, and image registration.

A user mixin has an owner (its creator) and at most one group, with the tenancy rules of
entities (gateway.services.tenancy): who sees it in the query interface and its collection,
who may change its collection or delete it. Its group is the one named with the create
(``org.nimbostratus.group``: an ``X-OCCI-Attribute`` beside the ``Category`` in text
renderings, ``{"mixins": […], "attributes": {…}}`` in JSON), which must be one of the
creator's groups (admins name any; an empty name: none), else ``tenancy_default_group``. The
owner (or an admin) POSTing the same definition again with a group changes it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from auth.principal import Principal
from gateway.errors import Conflict, Forbidden, InvalidAttribute, InvalidRequest, NotFound
from gateway.services.catalog import Catalog, bump_catalog
from gateway.services.images import remove_image
from gateway.services.tenancy import GROUP_ATTRIBUTE
from gateway.store.db import Store
from gateway.store.models import EntityMixin, Image, UserMixin
from occi.core import CategoryRef

RESERVED_SCHEME = "http://schemas.ogf.org/occi/"
_LOCATION = re.compile(r"^/[A-Za-z0-9._~/-]*/$")
_TERM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DEFAULT = object()  # no group named: tenancy_default_group decides


class MixinService:
    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    def add(
        self,
        principal: Principal,
        refs: Sequence[CategoryRef],
        attributes: Mapping[str, object] | None = None,
    ) -> None:
        """Create user mixins; each needs an unused location ending in ``/``. ``attributes``:
        the values sent with them (only ``org.nimbostratus.group``, their group)."""
        if not refs:
            raise InvalidRequest("no mixin in the request")
        others = sorted(set(attributes or {}) - {GROUP_ATTRIBUTE})
        if others:
            raise InvalidAttribute(
                f"a new user mixin takes no attribute but {GROUP_ATTRIBUTE}, not "
                + ", ".join(others)
            )
        asked = (attributes or {}).get(GROUP_ATTRIBUTE, _DEFAULT)
        tenancy = self.catalog.tenancy
        group = tenancy.new_group(principal, None if asked is _DEFAULT else asked)
        with self.store.session(write=True) as session:
            registry = self.catalog.registry(principal, session)
            taken = {k.location for k in registry.kinds.values() if k.location}
            taken |= {m.location for m in registry.mixins.values() if m.location}
            taken |= set(session.scalars(select(UserMixin.location)))
            for ref in refs:
                _check_new(ref)
                assert ref.location is not None
                existing = session.get(UserMixin, ref.type_id)
                if (
                    existing is not None
                    and _same(existing, ref, principal)
                    and tenancy.sees(principal, existing.owner, existing.group)
                ):  # (one out of a token's scope is someone else's: 409 as for them)
                    # the same definition again: nothing changes, but the group if one is named
                    if asked is not _DEFAULT:
                        existing.group = tenancy.regroup(
                            principal, existing.owner, existing.group, asked
                        )
                    continue
                if registry.find(ref.type_id) or existing is not None:
                    raise Conflict(f"category {ref.type_id} exists already")
                if ref.location in taken or ref.location.startswith(("/-/", "/.well-known/")):
                    raise Conflict(f"location {ref.location} is taken")
                taken.add(ref.location)
                session.add(
                    UserMixin(
                        type_id=ref.type_id,
                        scheme=ref.scheme,
                        term=ref.term,
                        title=ref.title or "",
                        location=ref.location,
                        depends=list(ref.rel),
                        owner=principal.name,
                        group=group,
                    )
                )
            bump_catalog(session)

    def remove(self, principal: Principal, refs: Sequence[CategoryRef]) -> None:
        if not refs:
            raise InvalidRequest("no mixin in the request")
        with self.store.session(write=True) as session:
            registry = self.catalog.registry(principal, session)
            tenancy = self.catalog.tenancy
            for ref in refs:
                if self._remove_own_image(session, principal, ref):
                    continue
                row = session.get(UserMixin, ref.type_id)
                missing = NotFound(f"no user mixin {ref.type_id}")
                if row is None or not tenancy.sees(principal, row.owner, row.group):
                    if registry.find(ref.type_id) is not None:
                        raise Forbidden(
                            f"{ref.type_id} is defined by the provider and cannot be deleted"
                        )
                    raise missing
                tenancy.check_change(principal, row.owner, row.group, missing)
                session.execute(delete(EntityMixin).where(EntityMixin.mixin == ref.type_id))
                session.delete(row)
            bump_catalog(session)


    def _remove_own_image(self, session: Session, principal: Principal, ref: CategoryRef) -> bool:
        """An os_tpl a ``save`` made is its owner's (and their group's, by the group policy)
        to delete, as a user mixin is; a registered image stays the provider's (403, and
        ``nimbo image rm`` for administrators). False when ``ref`` is no such image."""
        if ref.scheme != self.catalog.os_scheme:
            return False
        image = session.get(Image, ref.term)
        if image is None or image.origin_compute is None:
            return False
        tenancy = self.catalog.tenancy
        missing = NotFound(f"no OS template {ref.type_id}")
        if not tenancy.sees(principal, image.owner, image.group):
            raise missing
        tenancy.check_change(principal, image.owner, image.group, missing)
        remove_image(session, self.catalog.os_scheme, ref.term)
        return True


def _same(row: UserMixin, ref: CategoryRef, principal: Principal) -> bool:
    return (
        row.owner == principal.name
        and row.location == ref.location
        and list(row.depends) == list(ref.rel)
        and row.title == (ref.title or "")
    )


def _check_new(ref: CategoryRef) -> None:
    if ref.cls not in (None, "mixin"):
        raise InvalidRequest(f"only mixins can be added to the query interface, not {ref.cls}")
    if ref.scheme.startswith(RESERVED_SCHEME):
        raise InvalidRequest(f"scheme {ref.scheme} is reserved for the OCCI standard")
    if not ref.scheme.endswith("#") or not _TERM.match(ref.term):
        raise InvalidRequest(
            f"{ref.type_id} is not a valid category (scheme must end in '#', "
            "term letters, digits, '-', '_' and '.')"
        )
    if not ref.location:
        raise InvalidRequest(f"mixin {ref.type_id} needs a location ending in '/'")
    if not _LOCATION.match(ref.location):
        raise InvalidRequest(f"location {ref.location} must be a path ending in '/'")


def register_image(
    store: Store,
    term: str,
    source: str,
    *,
    title: str = "",
    checksum: str | None = None,
    owner: str | None = None,
) -> Image:
    """Register an os_tpl image from a local file (checksum verified or computed) or a URL."""
    if not _TERM.match(term):
        raise InvalidRequest(f"image name {term!r}: letters, digits, '-', '_' and '.' only")
    size = 0
    if "://" not in source:
        path = Path(source).resolve()
        if not path.is_file():
            raise InvalidRequest(f"{path} is not a file")
        digest, file_size = _sha256(path)
        size = _virtual_size(path, file_size)
        if checksum and checksum.lower() != f"sha256:{digest}":
            raise InvalidRequest(f"checksum mismatch for {path}: file has sha256:{digest}")
        checksum, source = f"sha256:{digest}", str(path)
    elif checksum and not re.fullmatch(r"sha256:[0-9a-fA-F]{64}", checksum):
        raise InvalidRequest("checksum must be sha256:<64 hex digits>")
    with store.session(write=True) as session:
        if session.get(Image, term) is not None:
            raise Conflict(f"an image named {term} is registered already")
        image = Image(
            term=term,
            title=title or term,
            source=source,
            checksum=checksum,
            size_bytes=size,
            owner=owner,
            state="ready",
        )
        session.add(image)
        bump_catalog(session)
        return image


QCOW2_MAGIC = b"QFI\xfb"


def _virtual_size(path: Path, file_size: int) -> int:
    """The size a guest sees: a qcow2's virtual size (bytes 24-31 of its header, big-endian),
    a raw image's file size. A root disk is never made smaller than this."""
    with path.open("rb") as handle:
        header = handle.read(32)
    if header[:4] == QCOW2_MAGIC and len(header) == 32:
        return int.from_bytes(header[24:32], "big")
    return file_size


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
