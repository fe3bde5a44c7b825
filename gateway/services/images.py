"""Removing an OS template (``os_tpl``): a user's own saved image through the query interface
(``DELETE /-/`` naming it, see :meth:`gateway.services.mixins.MixinService.remove`), any image by an
administrator (``nimbo image rm``).

An image that a compute still starts from stays: that compute's root disk is a copy-on-write
clone backed by the image's bytes (409 naming the computes). The volume a ``save`` made is
deleted by its host's reconciler once no image names it (:func:`gateway.reconciler.reconcile`);
a file or URL an administrator registered is theirs and is left alone.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import Conflict, NotFound
from gateway.services.catalog import bump_catalog
from gateway.store.models import EntityMixin, EntityRow, Image

SAVED_IMAGE_PREFIX = "image-"
"""Volume id prefix of the images ``save`` makes (see :func:`gateway.jobs.image_volume_id`)."""

_USERS_SHOWN = 5


def remove_image(session: Session, os_scheme: str, term: str) -> Image:
    """Delete the image ``term`` (its mixin in ``os_scheme``) in the caller's transaction (the
    catalogue is bumped); the caller has checked that the principal may. NotFound when there
    is none; Conflict while a save is still copying it or a compute starts from it."""
    image = session.get(Image, term)
    if image is None:
        raise NotFound(f"no OS template {term}")
    if image.state == "saving":
        raise Conflict(
            f"os_tpl {term} is still being saved from compute {image.origin_compute}; "
            "delete it once the save has finished"
        )
    mixin = os_scheme + term
    users = session.scalars(
        select(EntityRow.id)
        .join(EntityMixin, EntityMixin.entity_id == EntityRow.id)
        .where(EntityMixin.mixin == mixin, EntityRow.deleting.is_(False))
        .order_by(EntityRow.created_at)
    ).all()
    if users:
        shown = ", ".join(users[:_USERS_SHOWN]) + (" …" if len(users) > _USERS_SHOWN else "")
        raise Conflict(
            f"os_tpl {term} is the disk image of {len(users)} compute(s) ({shown}), whose "
            "root disks are clones of it: delete them first"
        )
    session.delete(image)
    bump_catalog(session)
    return image


def orphaned_image_volumes(session: Session, volume_ids: list[str]) -> list[str]:
    """Of a host's volumes, those holding a saved image that no image names any more."""
    prefix = SAVED_IMAGE_PREFIX
    saved = {v: v.removeprefix(prefix) for v in volume_ids if v.startswith(prefix)}
    if not saved:
        return []
    named = set(session.scalars(select(Image.term).where(Image.term.in_(saved.values()))))
    return sorted(v for v, term in saved.items() if term not in named)
