"""The reconciler converges store and host: lost jobs are run again, observed power states win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from backends.base import StopMethod
from gateway.reconciler import reconcile
from gateway.store.models import Operation
from tests.gateway.conftest import Node, entity_id

pytestmark = [pytest.mark.redis, pytest.mark.libvirt]


def _age_operations(node: Node) -> None:
    with node.store.session(write=True) as session:
        session.execute(update(Operation).values(
            created_at=datetime.now(UTC) - timedelta(minutes=10)))


def test_lost_job_is_enqueued_again_and_converges(node: Node) -> None:
    location = node.create_compute()
    node.connection.flushdb()  # the job is lost: as if redis had been wiped before it ran
    _age_operations(node)
    report = reconcile(node.context, node.nimbo.queue, "host-a")
    assert len(report.requeued) == 1
    node.run_jobs()
    row = node.row(location)
    assert row is not None and row.state == "active"


def test_young_operations_are_left_alone(node: Node) -> None:
    node.create_compute()
    node.connection.flushdb()
    assert reconcile(node.context, node.nimbo.queue, "host-a").requeued == []


def test_queued_job_is_not_duplicated(node: Node) -> None:
    node.create_compute()
    _age_operations(node)
    assert reconcile(node.context, node.nimbo.queue, "host-a").requeued == []


def test_guest_that_stopped_itself_becomes_inactive(node: Node) -> None:
    location = node.create_compute()
    node.run_jobs()
    node.driver().stop_compute(entity_id(location), StopMethod.POWEROFF)
    report = reconcile(node.context, node.nimbo.queue, "host-a")
    assert report.corrected == {entity_id(location): "inactive"}
    row = node.row(location)
    assert row is not None and row.state == "inactive"


def test_vanished_domain_becomes_error_with_a_message(node: Node) -> None:
    location = node.create_compute()
    node.run_jobs()
    node.driver().delete_compute(entity_id(location))
    reconcile(node.context, node.nimbo.queue, "host-a")
    row = node.row(location)
    assert row is not None and row.state == "error"
    assert row.state_message and "missing" in row.state_message
