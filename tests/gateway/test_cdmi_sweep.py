"""The sweep of orphaned CDMI blobs (gateway.services.cdmi_sweep) on a whole gateway: SQLite
and PostgreSQL, the blob store on disk. Old orphans go, young ones and every blob an object
names stay (whatever made it: CDMI and plain writes, ranges, copies, moves, snapshots); a row
committed between the listing and the lookup keeps its blob; a process killed between
publishing a new object's value and committing its row leaves an orphan that the sweep then
removes; ``nimbo cdmi sweep``; and the sweep a real gunicorn runs as it starts."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, insert, select

from auth.principal import Principal
from backends.blob import PublishedBlob
from backends.blobfs import STAGING_DIR, FilesystemBlobStore
from cdmi import objectid
from cdmi.paths import PATH, Target
from cdmi.request import Selection
from gateway.cli import main
from gateway.config import Config
from gateway.errors import ConfigurationError
from gateway.services.cdmi_sweep import BATCH, sweep_orphans
from gateway.store.db import Store
from gateway.store.models import AuditRecord, CdmiObjectRow
from tests.gateway.cdmi_client import CONTAINER, OBJECT, VERSION, Cdmi
from tests.gateway.conftest import Node
from tests.gateway.served import ROOT, gunicorn

pytestmark = pytest.mark.redis

HOUR = 3600.0


@pytest.fixture
def c(node: Node) -> Cdmi:
    return Cdmi(node)


def later() -> float:
    """A ``now`` at which every blob there is now is two hours old."""
    return time.time() + 2 * HOUR


def sweep(node: Node, **options: Any) -> Any:
    return sweep_orphans(node.store, node.nimbo.cdmi.blobs, grace=HOUR, **options)


def blob_files(node: Node) -> dict[str, bytes]:
    """Every published blob file on disk: id -> value."""
    root = Path(node.config.effective_blob_dir)
    return {
        path.name: path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and STAGING_DIR not in path.parts
    }


def named(node: Node) -> set[str]:
    """The (lower-cased) object IDs of every data object: the blobs rows name."""
    with node.store.session() as session:
        ids = session.scalars(select(CdmiObjectRow.id).where(CdmiObjectRow.kind == "dataobject"))
        return {object_id.lower() for object_id in ids}


def orphan(node: Node, value: bytes, *, age: float = 0.0) -> str:
    """A value published under a new object ID no row names, ``age`` seconds old."""
    blobs = node.nimbo.cdmi.blobs
    blob_id = objectid.new(node.config.cdmi_enterprise_number).lower()
    with blobs.stage([value]) as staged:
        staged.publish(blob_id)
    if age:
        make_old(node, blob_id, age)
    return blob_id


def make_old(node: Node, blob_id: str, age: float) -> None:
    path = node.nimbo.cdmi.blobs.path(blob_id)
    assert path is not None
    moment = time.time() - age
    os.utime(path, (moment, moment))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- what goes and what stays ---------------------------------------------------------------


def test_an_orphan_older_than_the_grace_is_removed(node: Node) -> None:
    kept = orphan(node, b"young: maybe a write still running")
    lost = orphan(node, b"left by a crash", age=HOUR + 60)

    report = sweep(node)

    assert (report.files, report.bytes, report.failures) == (1, 15, [])
    assert set(blob_files(node)) == {kept}
    assert lost not in blob_files(node)


def test_a_young_orphan_is_kept_until_it_is_old(node: Node) -> None:
    young = orphan(node, b"published ahead a moment ago")

    assert sweep(node).files == 0
    assert sweep(node, now=time.time() + HOUR - 60).files == 0
    assert young in blob_files(node)
    assert sweep(node, now=later()).files == 1
    assert young not in blob_files(node)


def test_a_dry_run_reports_and_removes_nothing(node: Node) -> None:
    lost = orphan(node, b"12345", age=2 * HOUR)
    found: list[PublishedBlob] = []

    report = sweep(node, dry_run=True, on_orphan=found.append)

    assert (report.files, report.bytes) == (1, 5)
    assert [blob.blob_id for blob in found] == [lost]
    assert lost in blob_files(node)


def test_blobs_named_by_objects_are_kept_whatever_made_them(c: Cdmi, node: Node) -> None:
    c.mkdir("a/")
    c.mkdir("a/sub/")
    assert c.put("a/cdmi", {"value": "a CDMI value"}).status_code == 201
    assert c.put("a/sub/no-value", {"metadata": {"k": "v"}}).status_code == 201
    assert c.request("PUT", "a/plain", data=b"plain bytes").status_code == 201
    assert c.request("PUT", "a/plain", data=b"XY", headers={"Content-Range": "bytes 0-1/11"}
                     ).status_code == 204
    c.put("a/cdmi?value:0-0", {"valuetransferencoding": "base64", "value": b64(b"A")})
    by_id = json.loads(c.cdmi("POST", "cdmi_objectid/", {"value": "by ID"}, media=OBJECT).data)
    assert c.put("a/copy", {"copy": "/cdmi/a/cdmi"}).status_code == 201
    assert c.cdmi("PUT", "b/", {"copy": "/cdmi/a/"}, media=CONTAINER).status_code == 201
    assert c.put("b/moved", {"move": "/cdmi/b/plain"}).status_code == 201
    assert c.put("b/cdmi", {"move": "/cdmi/b/copy"}).status_code == 201  # over an object
    assert c.cdmi("POST", "cdmi_objectid/", {"move": "/cdmi/b/sub/no-value"},
                  media=OBJECT).status_code == 201
    for _ in range(2):  # taken again: the first snapshot's copies are replaced
        assert c.cdmi("PUT", "a/", {"snapshot": "s1"}, media=CONTAINER).status_code == 204
    assert c.request("DELETE", "b/moved", headers=VERSION).status_code == 204
    lost = orphan(node, b"nobody's")
    assert set(blob_files(node)) == named(node) | {lost}

    report = sweep(node, now=later())

    assert (report.files, report.bytes) == (1, len(b"nobody's"))
    assert set(blob_files(node)) == named(node)
    assert len(named(node)) == 11
    assert c.request("GET", "a/cdmi").data == b"A CDMI value"
    assert c.request("GET", "a/plain").data == b"XYain bytes"
    assert c.request("GET", "b/cdmi").data == b"A CDMI value"
    assert c.request("GET", "a/cdmi_snapshots/s1/plain").data == b"XYain bytes"
    assert c.request("GET", f"cdmi_objectid/{by_id['objectID']}").data == b"by ID"


def test_a_row_committed_between_listing_and_lookup_keeps_its_blob(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = node.nimbo.cdmi
    c.mkdir("late/")
    target = Target(PATH, "late/obj")
    staged = service.blobs.stage([b"committed late"])
    fresh = service._publish_ahead(staged, target)  # the create's first half
    assert fresh is not None
    listing = service.blobs.published

    def listed_then_committed(older_than: float) -> Iterator[PublishedBlob]:
        yield from listing(older_than)
        with staged:  # the create's second half, as put_object runs it
            service._write_object(Principal("alice"), target, {"value": "committed late"},
                                  Selection(), (staged, b"", None), False, fresh)

    monkeypatch.setattr(service.blobs, "published", listed_then_committed)

    report = sweep(node, now=later())

    assert report.files == 0
    document = c.read("late/obj")
    assert (document["objectID"], document["value"]) == (fresh, "committed late")


def test_lookups_are_batched_and_find_ids_in_either_case(node: Node) -> None:
    blobs = node.nimbo.cdmi.blobs
    kept = []
    with node.store.session(write=True) as session:
        for n in range(30):
            object_id = objectid.new(node.config.cdmi_enterprise_number)
            stored = object_id if n % 2 else object_id.lower()  # however a row spells it
            session.execute(insert(CdmiObjectRow), [{
                "id": stored, "kind": "dataobject", "path": None, "owner": "alice",
            }])
            kept.append(object_id.lower())
    for blob_id in kept:
        with blobs.stage([b"named"]) as staged:
            staged.publish(blob_id)
    lost = {orphan(node, b"x") for _ in range(BATCH + 20)}
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "cdmi_objects" in statement:
            statements.append(statement)

    event.listen(node.store.engine, "before_cursor_execute", seen)
    try:
        report = sweep(node, now=later())
    finally:
        event.remove(node.store.engine, "before_cursor_execute", seen)

    assert report.files == len(lost)
    assert set(blob_files(node)) == set(kept)
    assert len(statements) == 2  # 450 blobs, 400 per lookup


def test_the_grace_setting_has_a_floor() -> None:
    assert Config({"cdmi_orphan_grace_seconds": 60}).cdmi_orphan_grace_seconds == 60
    with pytest.raises(ConfigurationError, match="cdmi_orphan_grace_seconds must be at least"):
        Config({"cdmi_orphan_grace_seconds": 59})


# --- a crash at the seam --------------------------------------------------------------------

CRASHING_CREATE = textwrap.dedent("""
    import json, os, signal, sys
    from auth.principal import Principal
    from backends.blobfs import FilesystemBlobStore
    from cdmi.paths import PATH, Target
    from cdmi.request import Selection
    from gateway.config import Config
    from gateway.services.cdmi import CdmiService
    from gateway.store.db import Store

    config = Config(json.loads(sys.argv[1]))
    service = CdmiService(Store(config.effective_database_url),
                          FilesystemBlobStore(config.effective_blob_dir), config)

    def crash(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if sys.argv[2] == "before":
        service._write_object = crash  # published ahead; the transaction never begins
    else:
        service.quotas.check_cdmi = crash  # in the transaction, the row flushed, no commit
    service.put_object(Principal("alice"), Target(PATH, "crash/obj"),
                       {"value": "published, never named"}, Selection())
    sys.exit("the crash did not happen")
""")


@pytest.mark.parametrize("seam", ["before", "inside"], ids=["before-txn", "inside-txn"])
def test_a_crash_after_publish_ahead_leaves_an_orphan_the_sweep_removes(
    c: Cdmi, node: Node, seam: str
) -> None:
    c.mkdir("crash/")
    c.put("crash/kept", {"value": "an object of its own"})
    before = set(blob_files(node))

    child = subprocess.run(
        [sys.executable, "-c", CRASHING_CREATE, json.dumps(node.config.as_dict()), seam],
        cwd=ROOT, capture_output=True, timeout=60, check=False,
    )

    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert c.get("crash/obj").status_code == 404
    (lost,) = set(blob_files(node)) - before
    assert blob_files(node)[lost] == b"published, never named"
    assert lost not in named(node)
    assert sweep(node).files == 0  # young: it might be a create still running
    assert sweep(node, now=later()).files == 1
    assert set(blob_files(node)) == before == named(node)
    assert c.put("crash/obj", {"value": "made again"}).status_code == 201  # nothing is stuck


# --- nimbo cdmi sweep -----------------------------------------------------------------------


def nimbo(node: Node, *args: str) -> Result:
    env = {
        "NIMBO_DATA_DIR": str(node.config.data_dir),
        "NIMBO_DATABASE_URL": node.config.database_url,
        "NIMBO_CONFIG": None,
    }
    return CliRunner().invoke(main, ["cdmi", "sweep", *args], env=env)


def sweep_records(node: Node) -> list[AuditRecord]:
    with node.store.session() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.action == "sweep")))


def test_nimbo_cdmi_sweep_prints_what_it_removed_and_records_it(c: Cdmi, node: Node) -> None:
    c.mkdir("c/")
    named_id = json.loads(c.put("c/o", {"value": "named"}).data)["objectID"].lower()
    make_old(node, named_id, 2 * HOUR)
    young = orphan(node, b"young")
    lost = orphan(node, b"old orphan", age=2 * HOUR)

    result = nimbo(node)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"removed {lost} (10 bytes)",
        "removed 1 orphaned blob file(s), 10 bytes (published over 3600 s ago, named by no "
        "object)",
    ]
    assert set(blob_files(node)) == {named_id, young}
    (record,) = sweep_records(node)
    assert (record.method, record.path, record.status, record.kind) == (
        "CLI", "nimbo cdmi sweep", 0, "blob")
    assert record.detail == "removed 1 orphaned blob file(s), 10 bytes; grace=3600"


def test_nimbo_cdmi_sweep_dry_run_grace_and_nothing_to_do(node: Node) -> None:
    young = orphan(node, b"young")

    dry = nimbo(node, "--grace", "0", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[0] == f"would remove {young} (5 bytes)"
    nothing = nimbo(node)
    assert nothing.exit_code == 0, nothing.output
    assert nothing.output.startswith("removed 0 orphaned blob file(s), 0 bytes")
    assert young in blob_files(node)
    assert sweep_records(node) == []  # neither removed anything

    now = nimbo(node, "--grace", "0")
    assert now.exit_code == 0 and young not in blob_files(node), now.output
    assert len(sweep_records(node)) == 1
    negative = nimbo(node, "--grace", "-1")
    assert negative.exit_code == 2 and "--grace" in negative.output


# --- as the API starts ----------------------------------------------------------------------


def test_the_first_worker_sweeps_as_gunicorn_starts(tmp_path: Path, redis_url: str) -> None:
    blob_dir = tmp_path / "data" / "blobs"
    blobs = FilesystemBlobStore(blob_dir)
    ids = [objectid.new(32473).lower() for _ in range(2)]
    for blob_id in ids:
        with blobs.stage([b"orphan"]) as staged:
            staged.publish(blob_id)
    lost, young = ids
    path = blobs.path(lost)
    assert path is not None
    os.utime(path, (time.time() - 2 * HOUR, time.time() - 2 * HOUR))

    with gunicorn(tmp_path, redis_url, settings={"NIMBO_AUDIT_FLUSH_SECONDS": "1"}) as served:
        deadline = time.monotonic() + 30
        while blobs.exists(lost) or not sweep_logged(served.output):
            assert time.monotonic() < deadline, served.output.read_text()
            time.sleep(0.1)
        assert blobs.exists(young)
        store = Store(served.database)
        try:
            while not start_records(store):  # the worker's flusher moves it from Redis
                assert time.monotonic() < deadline, served.output.read_text()
                time.sleep(0.1)
            (record,) = start_records(store)
        finally:
            store.dispose()
    assert (record.method, record.path, record.kind) == ("START", "nimbo serve", "blob")
    assert record.detail == "removed 1 orphaned blob file(s), 6 bytes"


def sweep_logged(output: Path) -> bool:
    return "cdmi sweep at start: removed 1 orphaned blob file(s), 6 bytes" in output.read_text()


def start_records(store: Store) -> list[AuditRecord]:
    with store.session() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.method == "START")))
