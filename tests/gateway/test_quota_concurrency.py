"""Quotas hold under concurrency, on SQLite and on PostgreSQL: 50 simultaneous compute creates
against a quota of 10 cores let exactly 10 through; 30 simultaneous CDMI uploads against a byte
quota that holds 10 of them likewise (no placement, so no host lock serialises those writers:
on PostgreSQL the holder's counter row does, which each write's trigger locks; see
gateway.store.quota_use)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gateway.store.models import CdmiObjectRow, EntityRow
from tests.gateway.cdmi_client import Cdmi
from tests.gateway.conftest import NodeFactory, basic, compute_categories, text_plain

pytestmark = pytest.mark.redis

HOST = {"host-a": "memory://quota-swarm?cores=256&memory_mib=262144"}
Answer = tuple[int, str]


def at_once(app_client: Callable[[], FlaskClient], count: int,
            send: Callable[[FlaskClient, int], Answer]) -> list[Answer]:
    """``send`` run by ``count`` threads, each with its own test client, released together."""
    barrier = threading.Barrier(count)
    answers: list[Answer] = []
    lock = threading.Lock()

    def run(number: int) -> None:
        client = app_client()
        barrier.wait()
        answer = send(client, number)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return answers


def test_fifty_creates_against_ten_cores_let_exactly_ten_through(
    make_node: NodeFactory,
) -> None:
    node = make_node(HOST, quota_user_defaults={"cores": 10})
    body = text_plain(compute_categories(),
                      {"occi.compute.cores": 1, "occi.compute.memory": 0.5})
    headers = {**basic("alice"), "Content-Type": "text/plain"}

    def create(client: FlaskClient, _number: int) -> Answer:
        response = client.post("/compute/", data=body, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    answers = at_once(node.app.test_client, 50, create)

    assert Counter(status for status, _ in answers) == {201: 10, 409: 40}
    for status, text in answers:
        if status == 409:
            assert ("quota exceeded: cores for user alice: limit 10, in use 10, "
                    "this request 1") in text
    with node.store.session() as session:
        count, cores = session.execute(
            select(func.count(), func.sum(EntityRow.cores)).where(EntityRow.owner == "alice")
        ).one()
    assert (count, cores) == (10, 10)
    node.run_jobs()
    assert len(node.driver().list_computes()) == 10


def test_thirty_uploads_against_a_byte_quota_for_ten_let_exactly_ten_through(
    make_node: NodeFactory,
) -> None:
    node = make_node(HOST, quota_user_defaults={"cdmi_bytes": 1000})
    Cdmi(node).mkdir("box/")
    headers = {**basic("alice"), "Content-Type": "application/octet-stream"}

    def upload(client: FlaskClient, number: int) -> Answer:
        response = client.put(f"/cdmi/box/v{number}", data=b"\x01" * 100, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    answers = at_once(node.app.test_client, 30, upload)

    assert Counter(status for status, _ in answers) == {201: 10, 409: 20}
    for status, text in answers:
        if status == 409:
            assert ("quota exceeded: cdmi_bytes for user alice: limit 1000, in use 1000, "
                    "this request 100") in text
    with node.store.session() as session:
        objects, size = session.execute(
            select(func.count(), func.sum(CdmiObjectRow.size)).where(
                CdmiObjectRow.owner == "alice", CdmiObjectRow.kind == "dataobject"
            )
        ).one()
    assert (objects, size) == (10, 1000)
    blobs = [p for p in Path(node.config.effective_blob_dir).rglob("*") if p.is_file()]
    assert sorted(p.stat().st_size for p in blobs if p.stat().st_size) == [100] * 10
