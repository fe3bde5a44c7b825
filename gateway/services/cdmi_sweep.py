"""Orphaned CDMI values: blobs no object names, and the sweep that removes them.

A data object's value is the blob named by its object ID (``cdmi_objects.id``; the blob store
lower-cases ids). Copies and snapshots get new IDs and copied blobs; a move keeps ID and blob.
A blob no row names is left behind, for ever, when a process dies (or a commit fails)

- after publishing a new object's value and before its row commits: published ahead of the
  write transaction (:meth:`CdmiService._publish_ahead
  <gateway.services.cdmi.CdmiService._publish_ahead>`), or inside it (a create by ID, a
  plain-HTTP create, the empty value of a create without one, copies and snapshots);
- after a row's delete committed and before its blob was deleted (a delete, a move over an
  object, a snapshot taken again).

:func:`sweep_orphans` lists the published blobs older than a grace period
(``cdmi_orphan_grace_seconds``), looks their IDs up in batches and deletes those no row
names. Safe beside running API processes:

- every lookup runs after the listing of the blobs it checks, on the newest commit (see
  :meth:`Store.read <gateway.store.db.Store.read>`), so a row committed before the lookup
  (also one committed after the listing) keeps its blob;
- a row can still appear after the lookup only from the transaction that published the blob
  (IDs are new and random), and that published it longer than the grace period ago: no write
  transaction waits that long (values are staged before it, and publishing is its last step);
- a blob published again meanwhile under a named ID is named, so kept.

It runs in the first API process of ``nimbo serve`` as that process starts
(:func:`sweep_in_background`) and as ``nimbo cdmi sweep``; a sweep that removed something is
recorded in the audit log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError

from backends.blob import BlobStore, PublishedBlob
from gateway.errors import BackendError, NimboError
from gateway.store.db import Store
from gateway.store.models import CdmiObjectRow

if TYPE_CHECKING:
    from gateway.audit import AuditLog, Entry

log = logging.getLogger(__name__)

BATCH = 400
"""Blob IDs looked up per query (each in two spellings: 800 parameters, under SQLite's old
limit of 999)."""

T = CdmiObjectRow.__table__.c
_NAMED = select(T.id).where(T.id.in_(bindparam("ids", expanding=True)))


@dataclass
class SweepReport:
    """What a sweep removed (or, dry, would remove), and what it could not."""

    files: int = 0
    bytes: int = 0
    failures: list[str] = field(default_factory=list)
    """One message per blob that could not be deleted (it stays for the next sweep)."""

    @property
    def summary(self) -> str:
        text = f"{self.files} orphaned blob file(s), {self.bytes} bytes"
        if self.failures:
            text += f"; {len(self.failures)} could not be removed"
        return text


def sweep_orphans(
    store: Store,
    blobs: BlobStore,
    *,
    grace: float,
    now: float | None = None,
    dry_run: bool = False,
    on_orphan: Callable[[PublishedBlob], None] | None = None,
    report: SweepReport | None = None,
) -> SweepReport:
    """Delete every blob published more than ``grace`` seconds before ``now`` (default: the
    time of the call) that no CDMI object names; ``dry_run``: delete nothing, only report.

    ``on_orphan`` is called with each blob removed (or, dry, found). A blob that cannot be
    deleted is logged and counted in :attr:`SweepReport.failures`; the sweep goes on. Pass
    ``report`` to keep the count of what was removed when the sweep fails half way:
    :class:`~gateway.errors.BackendError` when the blob store cannot be listed,
    :class:`~gateway.errors.ServiceUnavailable` when the state store cannot be read."""
    report = report if report is not None else SweepReport()
    cutoff = (time.time() if now is None else now) - grace
    for batch in _batches(blobs.published(older_than=cutoff), BATCH):
        named = _named(store, [blob.blob_id for blob in batch])
        for blob in batch:
            if blob.blob_id in named:
                continue
            if not dry_run:
                try:
                    blobs.delete(blob.blob_id)
                except BackendError as exc:
                    log.warning("cdmi sweep: orphaned blob %s stays: %s", blob.blob_id, exc)
                    report.failures.append(exc.message)
                    continue
            report.files += 1
            report.bytes += blob.size
            if on_orphan is not None:
                on_orphan(blob)
    return report


def _batches(blobs: Iterable[PublishedBlob], size: int) -> Iterator[list[PublishedBlob]]:
    listing = iter(blobs)
    while batch := list(islice(listing, size)):
        yield batch


def _named(store: Store, blob_ids: list[str]) -> set[str]:
    """Which of ``blob_ids`` (lower case) a row names. Object IDs are stored upper case;
    both spellings are asked for, so that no row is missed whatever its case."""
    spellings = sorted({*blob_ids, *(blob_id.upper() for blob_id in blob_ids)})
    with store.read() as reader:
        found = reader.execute(_NAMED, {"ids": spellings}).scalars()
        return {str(object_id).lower() for object_id in found}


# --- when it runs -----------------------------------------------------------------------------


def sweep_in_background(app: object) -> threading.Thread | None:
    """Sweep the CDMI blob store of ``app`` (a Flask app from gateway.app) in a daemon thread,
    so that the process serves requests meanwhile; the thread, or None for an app without the
    gateway. Called by gunicorn in the first worker of ``nimbo serve`` (gateway.gunicorn_conf):
    once per start of the server, off the request path, and not in the master, which forks."""
    extensions = getattr(app, "extensions", None)
    nimbo: Any = extensions.get("nimbostratus") if isinstance(extensions, dict) else None
    if nimbo is None:
        return None
    grace = nimbo.config.cdmi_orphan_grace_seconds
    thread = threading.Thread(
        target=_sweep_at_start,
        args=(nimbo.cdmi.store, nimbo.cdmi.blobs, nimbo.audit, grace),
        name="cdmi-orphan-sweep",
        daemon=True,
    )
    thread.start()
    return thread


def _sweep_at_start(store: Store, blobs: BlobStore, audit: AuditLog, grace: float) -> None:
    report = SweepReport()
    try:
        sweep_orphans(store, blobs, grace=grace, report=report)
    except (NimboError, SQLAlchemyError) as exc:
        log.warning("cdmi sweep at start stopped (the next start tries again): %s", exc)
    if report.files or report.failures:
        log.info("cdmi sweep at start: removed %s", report.summary)
        audit.record(_start_entry(report))


def _start_entry(report: SweepReport) -> Entry:
    """The audit record of a sweep at start: by the operating-system user the server runs
    as, as ``nimbo cdmi sweep`` records the one who ran it (gateway.audit.record_command)."""
    from gateway.audit import local_entry

    return local_entry(
        "nimbo serve",
        "sweep",
        kind="blob",
        detail=f"removed {report.summary}",
        method="START",
        source="gateway",
    )
