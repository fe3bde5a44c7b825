"""A CDMI data-object create against everything that can change between the checks a request
makes before its write transaction and that transaction: the checks that decide (the object,
its twin with or without the slash, the parent container and its ACL) are made again in the
transaction, on what is committed then; a loser leaves no row and no value behind.

Races are forced by running the other request right after the create published its value
ahead (``CdmiService._publish_ahead``, the last step before the transaction), and are also run
for real from threads. The cost side: a create reads and writes ``cdmi_objects`` in a bounded
number of statements."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, event, select
from werkzeug.test import TestResponse

from gateway.store.models import CdmiObjectRow
from tests.gateway.cdmi_client import CONTAINER, Cdmi
from tests.gateway.conftest import Node
from tests.gateway.test_cdmi import snapshot_of

OWNER_AND_BOB_ADD = [
    {"acetype": "ALLOW", "identifier": "OWNER@", "aceflags": "0x03", "acemask": "ALL_PERMS"},
    {"acetype": "ALLOW", "identifier": "bob", "aceflags": "0x00", "acemask": "0x0000000B"},
]


@pytest.fixture
def c(node: Node) -> Cdmi:
    return Cdmi(node)


def description(response: TestResponse) -> str:
    return str(json.loads(response.get_data())["error"]["description"])


def after_publish_ahead(
    node: Node, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object]
) -> None:
    """Run ``meanwhile`` once, between the next create's publish ahead and its transaction."""
    service = node.nimbo.cdmi
    ahead = service._publish_ahead

    def then(*args: Any) -> str | None:
        fresh = ahead(*args)
        monkeypatch.setattr(service, "_publish_ahead", ahead)
        meanwhile()
        return fresh

    monkeypatch.setattr(service, "_publish_ahead", then)


def tree_is_whole(node: Node) -> None:
    """Every row's parent exists and holds the row's path; every data object has its value
    and every value file a data object."""
    with node.store.session() as session:
        rows = {row.id: row for row in session.scalars(select(CdmiObjectRow))}
    for row in rows.values():
        if row.parent_id is None:
            continue
        parent = rows.get(row.parent_id)
        assert parent is not None, f"{row.path} has no parent"
        assert parent.path is not None and row.path is not None
        assert row.path.startswith(parent.path) and row.path != parent.path, row.path
    blobs = node.nimbo.cdmi.blobs
    objects = {i for i, row in rows.items() if row.kind == "dataobject"}
    assert all(blobs.exists(i) for i in objects)
    assert {b.blob_id.upper() for b in blobs.published(older_than=1e12)} == {
        i.upper() for i in objects
    }


# --- forced orders --------------------------------------------------------------------------


def test_a_parent_deleted_before_the_transaction_is_404_and_leaves_nothing(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    c.mkdir("gone/")
    before = snapshot_of(node)

    def delete_parent() -> None:
        assert c.request("DELETE", "gone/").status_code == 204

    after_publish_ahead(node, monkeypatch, delete_parent)

    response = c.put("gone/obj", {"value": "orphan?"})

    assert response.status_code == 404
    assert "parent container" in description(response)
    count, files = snapshot_of(node)
    assert count == before[0] - 1 and files == before[1]
    tree_is_whole(node)


def test_a_parent_gone_between_the_transactions_read_and_its_insert_is_404(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL lets a delete of the container commit after the create's transaction read it
    (SQLite's writers never overlap); the foreign key then refuses the row. Forced here on both
    by deleting the parent in the create's own transaction just before its insert: the answer
    is the missing parent's 404, not a 409 for a path taken, and the rollback leaves all."""
    c.mkdir("vanishing/")
    before = snapshot_of(node)
    service = node.nimbo.cdmi
    insert = service._insert_new

    def parent_gone_first(session: Any, row: CdmiObjectRow) -> None:
        session.connection().execute(delete(CdmiObjectRow).where(CdmiObjectRow.id == row.parent_id))
        insert(session, row)

    monkeypatch.setattr(service, "_insert_new", parent_gone_first)

    response = c.put("vanishing/obj", {"value": "v"})

    assert response.status_code == 404, response.get_data()
    assert "the parent container /cdmi/vanishing/ does not exist" in description(response)
    monkeypatch.undo()
    assert snapshot_of(node) == before
    assert c.get("vanishing/").status_code == 200
    tree_is_whole(node)


def test_a_parent_moved_before_the_transaction_is_404_and_the_moved_tree_stays_whole(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    c.mkdir("from/")

    def move_parent() -> None:
        moved = c.cdmi("PUT", "to/", {"move": "/cdmi/from/"}, media=CONTAINER)
        assert moved.status_code == 201

    after_publish_ahead(node, monkeypatch, move_parent)

    response = c.put("from/obj", {"value": "v"})

    assert response.status_code == 404
    assert c.get("from/").status_code == 404
    assert c.read("to/")["children"] == []
    tree_is_whole(node)


def test_the_containers_twin_made_before_the_transaction_redirects_and_leaves_nothing(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    c.mkdir("twins/")
    after_publish_ahead(node, monkeypatch, lambda: c.mkdir("twins/x/"))
    before_files = snapshot_of(node)[1]

    response = c.put("twins/x", {"value": "a data object beside a container of its name"})

    assert response.status_code == 301
    assert response.headers["Location"].endswith("/cdmi/twins/x/")
    assert c.read("twins/")["children"] == ["x/"]
    assert snapshot_of(node)[1] == before_files
    tree_is_whole(node)


def test_a_twin_the_creator_does_not_see_made_before_the_transaction_is_404(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    c.mkdir("open/", {"metadata": {"cdmi_acl": OWNER_AND_BOB_ADD}})
    bob = c.as_user("bob")
    after_publish_ahead(node, monkeypatch, lambda: c.mkdir("open/x/"))

    response = bob.put("open/x", {"value": "v"})

    assert response.status_code == 404  # as a read of open/x/ by bob: nothing there
    assert c.read("open/")["children"] == ["x/"]
    tree_is_whole(node)


def test_an_add_right_taken_back_before_the_transaction_is_403_and_leaves_nothing(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    c.mkdir("drop/", {"metadata": {"cdmi_acl": OWNER_AND_BOB_ADD}})
    bob = c.as_user("bob")
    assert bob.put("drop/first", {"value": "allowed"}).status_code == 201
    read_only = [OWNER_AND_BOB_ADD[0], {**OWNER_AND_BOB_ADD[1], "acemask": "0x00000009"}]

    def revoke() -> None:
        assert c.mkdir("drop/", {"metadata": {"cdmi_acl": read_only}}).status_code == 204

    after_publish_ahead(node, monkeypatch, revoke)
    before = snapshot_of(node)

    response = bob.put("drop/second", {"value": "refused"})

    assert response.status_code == 403
    assert snapshot_of(node) == before
    tree_is_whole(node)


def test_an_object_made_before_the_transaction_by_someone_unseen_is_404(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    c.mkdir("shared/", {"metadata": {"cdmi_acl": OWNER_AND_BOB_ADD}})
    bob = c.as_user("bob")

    def alice_first() -> None:
        assert c.put("shared/name", {"value": "alice's"}).status_code == 201

    after_publish_ahead(node, monkeypatch, alice_first)

    response = bob.put("shared/name", {"value": "bob's"})

    assert response.status_code == 404  # alice's object is absent for bob, as for a read
    assert c.read("shared/name")["value"] == "alice's"
    tree_is_whole(node)


# --- real threads ---------------------------------------------------------------------------


def _together(*calls: Callable[[], TestResponse]) -> list[int]:
    """Run ``calls`` at once from threads; their status codes, in order."""
    start = threading.Barrier(len(calls))
    codes: list[int] = [0] * len(calls)

    def run(i: int) -> None:
        start.wait()
        codes[i] = calls[i]().status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return codes


def test_concurrent_creates_of_one_path_make_one_object_and_one_value(c: Cdmi, node: Node) -> None:
    c.mkdir("race/")
    for round_ in range(8):
        path = f"race/o{round_}"
        codes = _together(
            lambda path=path: c.put(path, {"value": "first"}),
            lambda path=path: c.put(path, {"value": "second"}),
        )
        # the winner 201; the other 409 (it published ahead) or 204 (it saw the winner first)
        assert sorted(codes) in ([201, 204], [201, 409]), codes
        assert c.read(path)["value"] in ("first", "second")
    assert len(c.read("race/")["children"]) == 8
    tree_is_whole(node)


def test_creates_racing_the_delete_of_their_container_leave_no_orphan(c: Cdmi, node: Node) -> None:
    for round_ in range(6):
        box = f"box{round_}/"
        c.mkdir(box)
        codes = _together(
            lambda box=box: c.put(box + "a", {"value": "a"}),
            lambda box=box: c.put(box + "b", {"value": "b"}),
            lambda box=box: c.request("DELETE", box),
        )
        # A create before the delete is deleted with the container; one after it is 404 (no
        # parent) or, on PostgreSQL, whose writers are not queued, 409 when its INSERT met
        # the delete's commit (the parent key it refers to is gone).
        assert codes[2] == 204, codes
        assert all(code in (201, 404, 409) for code in codes[:2]), codes
        assert c.get(box).status_code == 404
    tree_is_whole(node)


# --- cost -----------------------------------------------------------------------------------


@contextmanager
def statements(node: Node) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.split()))

    engine = node.store.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_create_reads_its_neighbourhood_once_and_inserts_once(c: Cdmi, node: Node) -> None:
    c.mkdir("cost/")
    with statements(node) as seen:
        assert c.put("cost/o", {"value": "v" * 4096}).status_code == 201
    on_objects = [sql.split(" ", 1)[0] for sql in seen if "cdmi_objects" in sql]
    # the look before publishing ahead; in the transaction the object, its twin and its
    # parent in one SELECT, then the row with its size in one INSERT
    assert on_objects == ["SELECT", "SELECT", "INSERT"], seen
    row = c.read("cost/o")
    assert row["metadata"]["cdmi_size"] == "4096" and row["value"] == "v" * 4096


def test_reads_are_counted_in_one_write_per_flush(c: Cdmi, node: Node) -> None:
    c.mkdir("counted/")
    c.put("counted/a", {"value": "a"})
    c.put("counted/b", {"value": "b"})
    service = node.nimbo.cdmi
    service.flush()
    before = datetime.now(UTC)
    for path in ("counted/a", "counted/a", "counted/a", "counted/b"):
        assert c.get(path).status_code == 200
    with statements(node) as seen:
        service.flush()
    assert len([sql for sql in seen if sql.startswith("UPDATE cdmi_objects")]) == 1
    with node.store.session() as session:
        rows = {
            row.name: row
            for row in session.scalars(
                select(CdmiObjectRow).where(CdmiObjectRow.path.in_(["counted/a", "counted/b"]))
            )
        }
    assert (rows["a"].acount, rows["b"].acount) == (3, 1)
    for row in rows.values():
        atime = row.atime if row.atime.tzinfo else row.atime.replace(tzinfo=UTC)
        assert atime >= before
    assert c.read("counted/a")["metadata"]["cdmi_acount"] == "3"  # counted after it is read
