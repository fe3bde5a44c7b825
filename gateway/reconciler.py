"""Converges the store (what should exist) and a host (what does exist).

Run periodically by every worker for its own host:

* operations left ``queued`` or ``running`` with no live RQ job (the API crashed between commit
  and enqueue, or a worker died mid-job) are enqueued again; jobs are idempotent, so a rerun
  converges;
* computes with no operation in flight take the power state libvirt reports (a guest that shut
  itself down becomes ``inactive``; a domain that vanished becomes ``error`` with a message);
* the volumes of saved images that no image names any more (removed through the API or the
  CLI) are deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select

from gateway import jobs
from gateway.errors import BackendError
from gateway.queue import JobQueue, redis_errors
from gateway.runtime import WorkerContext
from gateway.services.images import orphaned_image_volumes
from gateway.services.plans import JobFunc
from gateway.store.models import EntityRow, Operation
from occi import infrastructure as infra

log = logging.getLogger(__name__)

# Which job carries an operation, by entity kind and verb.
_JOBS: dict[tuple[str, str], JobFunc] = {
    (infra.COMPUTE.type_id, "provision"): jobs.provision_compute,
    (infra.COMPUTE.type_id, "delete"): jobs.delete_compute,
    (infra.STORAGE.type_id, "provision"): jobs.provision_storage,
    (infra.STORAGE.type_id, "delete"): jobs.delete_storage,
    (infra.NETWORK.type_id, "provision"): jobs.provision_network,
    (infra.NETWORK.type_id, "delete"): jobs.delete_network,
}
_ACTION_JOBS: dict[str, JobFunc] = {
    infra.COMPUTE.type_id: jobs.act_on_compute,
    infra.STORAGE.type_id: jobs.act_on_storage,
    infra.NETWORK.type_id: jobs.act_on_network,
}
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


@dataclass
class Report:
    requeued: list[str] = field(default_factory=list)
    corrected: dict[str, str] = field(default_factory=dict)
    removed_volumes: list[str] = field(default_factory=list)


def job_for(kind: str, verb: str) -> JobFunc:
    if verb == "attach":
        return jobs.attach_link
    if verb == "detach":
        return jobs.detach_link
    return _JOBS.get((kind, verb)) or _ACTION_JOBS[kind]


def reconcile(context: WorkerContext, queue: JobQueue, host: str, *, grace: float = 30.0) -> Report:
    """One pass for ``host``; operations younger than ``grace`` seconds are left alone."""
    report = Report()
    _requeue_lost(context, queue, host, grace, report)
    _observe_computes(context, host, report)
    _sweep_image_volumes(context, host, report)
    if report.requeued or report.corrected or report.removed_volumes:
        log.info(
            "reconciled %s: requeued %s, corrected %s, removed volumes %s",
            host,
            report.requeued,
            report.corrected,
            report.removed_volumes,
        )
    return report


def _sweep_image_volumes(context: WorkerContext, host: str, report: Report) -> None:
    try:
        driver = context.driver(host)
        volumes = [v.id for v in driver.list_volumes()]
    except BackendError as exc:
        log.warning("reconciler cannot list volumes of %s: %s", host, exc.message)
        return
    with context.store.session() as session:
        orphans = orphaned_image_volumes(session, volumes)
    for volume_id in orphans:
        try:
            driver.delete_volume(volume_id)
        except BackendError as exc:
            log.warning("image volume %s on %s not deleted: %s", volume_id, host, exc.message)
            continue
        report.removed_volumes.append(volume_id)


def _requeue_lost(
    context: WorkerContext, queue: JobQueue, host: str, grace: float, report: Report
) -> None:
    cutoff = datetime.now(UTC) - timedelta(seconds=grace)
    with context.store.session() as session:
        stale = session.execute(
            select(Operation, EntityRow.kind)
            .join(EntityRow, EntityRow.id == Operation.entity_id)
            .where(Operation.host == host, Operation.status.in_(("queued", "running")))
        ).all()
    for op, kind in stale:
        created = op.created_at if op.created_at.tzinfo else op.created_at.replace(tzinfo=UTC)
        if created > cutoff or _job_alive(queue, op.id):
            continue
        with context.store.session(write=True) as session:
            row = session.get(Operation, op.id)
            if row is None or row.status not in ("queued", "running"):
                continue
            row.status = "queued"  # a job that died while running is run again from the top
        queue.enqueue(host, job_for(kind, op.verb), op.entity_id, op.id)
        report.requeued.append(op.id)


def _job_alive(queue: JobQueue, operation_id: str) -> bool:
    with redis_errors():
        try:
            job = Job.fetch(f"op-{operation_id}", connection=queue.connection)
        except NoSuchJobError:
            return False
        return job.get_status(refresh=True) in _LIVE


def _observe_computes(context: WorkerContext, host: str, report: Report) -> None:
    with context.store.session() as session:
        busy = select(Operation.entity_id).where(Operation.status.in_(("queued", "running")))
        rows = session.scalars(
            select(EntityRow).where(
                EntityRow.host == host,
                EntityRow.kind == infra.COMPUTE.type_id,
                EntityRow.deleting.is_(False),
                EntityRow.id.not_in(busy),
            )
        ).all()
    if not rows:
        return
    try:
        driver = context.driver(host)
        observed = {info.id: info for info in driver.list_computes()}
    except BackendError as exc:
        log.warning("reconciler cannot list domains of %s: %s", host, exc.message)
        return
    for row in rows:
        info = observed.get(row.id)
        state = jobs.COMPUTE_STATES[info.state] if info else "error"
        if state == row.state or (info is None and row.state == "error"):
            continue
        message = None if info else "the domain is missing on its host; delete this compute"
        with context.store.session(write=True) as session:
            current = session.get(EntityRow, row.id)
            if current is not None and not current.deleting:
                current.state, current.state_message = state, message
        report.corrected[row.id] = state
