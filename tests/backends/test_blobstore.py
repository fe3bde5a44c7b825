"""The blob store contract (:mod:`backends.blob`), run against every driver, then what only the
filesystem driver promises: its layout, sparse files, staging garbage and durability rules."""

from __future__ import annotations

import errno
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.blob import CHUNK_SIZE, BlobStore, normalise_blob_id
from backends.blobfs import STAGING_DIR, FilesystemBlobStore, backend_error
from gateway.errors import BackendError, BackendNotFound, InvalidRequest

MIB = 1 << 20
BLOB = "0000A1B2C3D4E5F60718293A4B5C6D7E"  # a CDMI object id, upper-case hex
OTHER = "0000a1b2c3d4e5f6ffffffffffffffff"

StoreFactory = Callable[[Path], BlobStore]
IMPLEMENTATIONS: dict[str, StoreFactory] = {"filesystem": FilesystemBlobStore}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return IMPLEMENTATIONS[request.param](tmp_path / "blobs")


@pytest.fixture
def fs_store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


def put(store: BlobStore, blob_id: str, value: bytes) -> None:
    with store.stage([value]) as staged:
        staged.publish(blob_id)


def value_of(store: BlobStore, blob_id: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.read(blob_id, start, end))


def zeros(count: int, chunk: int = MIB) -> Iterator[bytes]:
    for start in range(0, count, chunk):
        yield bytes(min(chunk, count - start))


class Interrupted(Exception):
    """Raised by a chunk iterable half way."""


def interrupted_after(*chunks: bytes) -> Iterator[bytes]:
    yield from chunks
    raise Interrupted("client went away")


def staging_files(store: FilesystemBlobStore) -> list[str]:
    return sorted(os.listdir(store.root / STAGING_DIR))


# --- contract: every driver ----------------------------------------------------------------


def test_round_trip(store: BlobStore) -> None:
    with store.stage([b"hello, ", b"", b"world"]) as staged:
        assert staged.size == 12
        assert not store.exists(BLOB)
        staged.publish(BLOB)
    assert store.exists(BLOB)
    assert store.size(BLOB) == 12
    assert value_of(store, BLOB) == b"hello, world"


def test_ids_are_case_insensitive(store: BlobStore) -> None:
    put(store, BLOB, b"v")
    assert value_of(store, BLOB.lower()) == b"v"
    assert store.exists(BLOB.upper())
    assert normalise_blob_id(BLOB) == BLOB.lower()


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, b"0123456789"),
        (3, None, b"3456789"),
        (3, 7, b"3456"),
        (0, 0, b""),
        (7, 3, b""),
        (8, 100, b"89"),
        (10, None, b""),
        (50, 60, b""),
    ],
)
def test_read_range(store: BlobStore, start: int, end: int | None, expected: bytes) -> None:
    put(store, BLOB, b"0123456789")
    assert value_of(store, BLOB, start, end) == expected


def test_read_empty_blob(store: BlobStore) -> None:
    put(store, BLOB, b"")
    assert store.size(BLOB) == 0
    assert list(store.read(BLOB)) == []
    assert list(store.read(BLOB, 5, 9)) == []


def test_read_chunks_are_at_most_one_mib(store: BlobStore) -> None:
    with store.stage(zeros(3 * MIB + 5, chunk=3 * MIB)) as staged:
        staged.publish(BLOB)
    sizes = [len(chunk) for chunk in store.read(BLOB, 1)]
    assert max(sizes) <= CHUNK_SIZE
    assert sum(sizes) == 3 * MIB + 4


@pytest.mark.parametrize(("start", "end"), [(-1, None), (0, -1)])
def test_negative_read_bounds_refused(store: BlobStore, start: int, end: int | None) -> None:
    put(store, BLOB, b"x")
    with pytest.raises(InvalidRequest):
        store.read(BLOB, start, end)


def test_missing_blob(store: BlobStore) -> None:
    assert not store.exists(BLOB)
    with pytest.raises(BackendNotFound):
        store.read(BLOB)  # raised by the call, not by the first next()
    with pytest.raises(BackendNotFound):
        store.size(BLOB)
    with pytest.raises(BackendNotFound):
        store.stage_copy(BLOB)
    store.delete(BLOB)  # quietly


def test_delete(store: BlobStore) -> None:
    put(store, BLOB, b"gone soon")
    put(store, OTHER, b"stays")
    store.delete(BLOB)
    assert not store.exists(BLOB)
    assert value_of(store, OTHER) == b"stays"
    store.delete(BLOB)


def test_publish_replaces(store: BlobStore) -> None:
    put(store, BLOB, b"a long first version")
    put(store, BLOB, b"short")
    assert value_of(store, BLOB) == b"short"
    assert store.size(BLOB) == 5


def test_staged_value_is_invisible_until_published(store: BlobStore) -> None:
    put(store, BLOB, b"old")
    with store.stage([b"new"]) as staged:
        assert value_of(store, BLOB) == b"old"
        staged.publish(BLOB)
    assert value_of(store, BLOB) == b"new"


def test_discard(store: BlobStore) -> None:
    put(store, BLOB, b"old")
    staged = store.stage([b"new"])
    staged.discard()
    staged.discard()  # idempotent
    assert value_of(store, BLOB) == b"old"


def test_context_exit_discards_unless_published(store: BlobStore) -> None:
    with pytest.raises(Interrupted), store.stage([b"new"]):
        raise Interrupted("caller failed before publishing")
    assert not store.exists(BLOB)


def test_publish_spends_the_handle(store: BlobStore) -> None:
    staged = store.stage([b"once"])
    staged.publish(BLOB)
    staged.discard()  # no-op after publish
    with pytest.raises(RuntimeError):
        staged.publish(OTHER)
    assert value_of(store, BLOB) == b"once"
    assert not store.exists(OTHER)


def test_iterable_raising_keeps_old_value(store: BlobStore) -> None:
    put(store, BLOB, b"old")
    with pytest.raises(Interrupted):
        store.stage(interrupted_after(b"new ", b"partial"))
    with pytest.raises(Interrupted):
        store.stage_range(BLOB, 1, interrupted_after(b"XX"))
    assert value_of(store, BLOB) == b"old"


def test_stage_copy(store: BlobStore) -> None:
    put(store, BLOB, b"original")
    with store.stage_copy(BLOB) as staged:
        assert staged.size == 8
        staged.publish(OTHER)
    put(store, BLOB, b"changed")
    assert value_of(store, OTHER) == b"original"


def test_stage_range_overwrites_in_the_middle(store: BlobStore) -> None:
    put(store, BLOB, b"0123456789")
    with store.stage_range(BLOB, 3, [b"ab", b"c"]) as staged:
        assert staged.size == 10
        assert value_of(store, BLOB) == b"0123456789"
        staged.publish(BLOB)
    assert value_of(store, BLOB) == b"012abc6789"


def test_stage_range_extends(store: BlobStore) -> None:
    put(store, BLOB, b"01234")
    with store.stage_range(BLOB, 3, [b"abcdef"]) as staged:
        assert staged.size == 9
        staged.publish(BLOB)
    assert value_of(store, BLOB) == b"012abcdef"


def test_stage_range_gap_reads_zeros(store: BlobStore) -> None:
    put(store, BLOB, b"abc")
    with store.stage_range(BLOB, 6, [b"xyz"]) as staged:
        staged.publish(BLOB)
    assert value_of(store, BLOB) == b"abc\0\0\0xyz"


def test_stage_range_of_missing_blob_starts_empty(store: BlobStore) -> None:
    with store.stage_range(BLOB, 2, [b"z"]) as staged:
        staged.publish(BLOB)
    assert value_of(store, BLOB) == b"\0\0z"
    with store.stage_range(OTHER, 4, []) as staged:  # nothing written: size is the offset
        assert staged.size == 4
        staged.publish(OTHER)
    assert value_of(store, OTHER) == bytes(4)


def test_stage_range_negative_offset_refused(store: BlobStore) -> None:
    with pytest.raises(InvalidRequest):
        store.stage_range(BLOB, -1, [b"x"])


@pytest.mark.parametrize(
    "bad_id", ["../x", "a/b", "", "%2e%2e", "..", "a.b", "a\0b", "é", "x" * 129]
)
def test_invalid_ids_refused(store: BlobStore, bad_id: str) -> None:
    put(store, BLOB, b"x")
    calls: list[Callable[[], object]] = [
        lambda: store.read(bad_id),
        lambda: store.size(bad_id),
        lambda: store.exists(bad_id),
        lambda: store.delete(bad_id),
        lambda: store.path(bad_id),
        lambda: store.stage_copy(bad_id),
        lambda: store.stage_range(bad_id, 0, [b"x"]),
        lambda: store.stage([b"x"]).publish(bad_id),
    ]
    for call in calls:
        with pytest.raises(InvalidRequest, match="invalid blob id"):
            call()


def test_longest_id_accepted(store: BlobStore) -> None:
    longest = "a-_Z" * 32
    put(store, longest, b"x")
    assert value_of(store, longest) == b"x"


def test_reader_opened_before_publish_sees_old_value(store: BlobStore) -> None:
    old = b"o" * (2 * MIB + 1)
    put(store, BLOB, old)
    untouched = store.read(BLOB)
    started = store.read(BLOB)
    first = next(started)
    put(store, BLOB, b"n" * (3 * MIB))
    assert b"".join(untouched) == old
    assert first + b"".join(started) == old


def test_reader_survives_delete(store: BlobStore) -> None:
    put(store, BLOB, b"still here")
    reader = store.read(BLOB)
    store.delete(BLOB)
    assert b"".join(reader) == b"still here"


def test_concurrent_publishes_give_one_whole_version(store: BlobStore) -> None:
    size = 256 * 1024
    versions = [bytes([n]) * size for n in range(8)]
    put(store, BLOB, versions[0])
    seen: list[bytes] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(version: bytes) -> None:
        try:
            for _ in range(10):
                with store.stage([version[: size // 2], version[size // 2 :]]) as staged:
                    staged.publish(BLOB)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                seen.append(value_of(store, BLOB))
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()

    assert errors == []
    assert value_of(store, BLOB) in versions
    assert seen
    assert all(value in versions for value in seen)


def test_staging_large_value_keeps_memory_low(store: BlobStore) -> None:
    tracemalloc.start()
    try:
        with store.stage(zeros(64 * MIB)) as staged:
            staged.publish(BLOB)
        total = sum(len(chunk) for chunk in store.read(BLOB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 64 * MIB
    assert peak < 8 * MIB


# --- the filesystem driver -----------------------------------------------------------------


def test_layout_shards_by_lower_case_id(fs_store: FilesystemBlobStore) -> None:
    put(fs_store, BLOB, b"v")
    name = BLOB.lower()
    expected = fs_store.root / name[:2] / name[2:4] / name
    assert fs_store.path(BLOB) == expected
    assert expected.read_bytes() == b"v"


def test_short_ids_get_padded_shards(fs_store: FilesystemBlobStore) -> None:
    put(fs_store, "A", b"short")
    path = fs_store.path("a")
    assert path is not None
    assert path.relative_to(fs_store.root).parts == ("a_", "__", "a")
    assert value_of(fs_store, "a") == b"short"


def test_path_of_missing_blob(fs_store: FilesystemBlobStore) -> None:
    with pytest.raises(BackendNotFound):
        fs_store.path(BLOB)


def test_gap_is_a_hole(fs_store: FilesystemBlobStore) -> None:
    gap = 64 * MIB
    put(fs_store, BLOB, b"head")
    with fs_store.stage_range(BLOB, gap, [b"tail"]) as staged:
        staged.publish(BLOB)
    path = fs_store.path(BLOB)
    assert path is not None
    assert path.stat().st_size == gap + 4
    assert path.stat().st_blocks * 512 < MIB
    # Copying a sparse value keeps it sparse.
    with fs_store.stage_range(BLOB, 2, [b"ad"]) as staged:
        staged.publish(OTHER)
    copy = fs_store.path(OTHER)
    assert copy is not None
    assert copy.stat().st_blocks * 512 < MIB
    assert value_of(fs_store, OTHER, 0, 8) == b"head\0\0\0\0"
    assert value_of(fs_store, OTHER, gap - 2) == b"\0\0tail"


def test_sparse_copy_preserves_trailing_hole(fs_store: FilesystemBlobStore) -> None:
    with fs_store.stage_range(BLOB, 8 * MIB, []) as staged:
        staged.publish(BLOB)
    with fs_store.stage_copy(BLOB) as staged:
        staged.publish(OTHER)
    assert fs_store.size(OTHER) == 8 * MIB
    assert value_of(fs_store, OTHER, 8 * MIB - 3) == bytes(3)


def test_no_staging_garbage(fs_store: FilesystemBlobStore) -> None:
    put(fs_store, BLOB, b"old")
    with pytest.raises(Interrupted):
        fs_store.stage(interrupted_after(b"new"))
    with pytest.raises(Interrupted):
        fs_store.stage_range(BLOB, 0, interrupted_after(b"new"))
    fs_store.stage([b"dropped"]).discard()
    with fs_store.stage_copy(BLOB):
        pass
    with fs_store.stage([b"kept"]) as staged:
        assert len(staging_files(fs_store)) == 1
        staged.publish(OTHER)
    assert staging_files(fs_store) == []


def test_open_removes_only_stale_staging_files(fs_store: FilesystemBlobStore) -> None:
    staging = fs_store.root / STAGING_DIR
    stale, fresh = staging / "blob-crashed", staging / "blob-in-flight"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"another process is writing")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    FilesystemBlobStore(fs_store.root)
    assert staging_files(fs_store) == ["blob-in-flight"]


def test_publish_after_staging_file_was_swept(fs_store: FilesystemBlobStore) -> None:
    staged = fs_store.stage([b"late"])
    for name in staging_files(fs_store):
        os.unlink(fs_store.root / STAGING_DIR / name)
    with pytest.raises(BackendError, match="staged value is gone"):
        staged.publish(BLOB)
    assert not fs_store.exists(BLOB)


def test_published_file_is_never_written_in_place(fs_store: FilesystemBlobStore) -> None:
    put(fs_store, BLOB, b"first")
    path = fs_store.path(BLOB)
    assert path is not None
    with path.open("rb") as served:  # what a zero-copy server holds open
        with fs_store.stage_range(BLOB, 0, [b"FIRST!"]) as staged:
            staged.publish(BLOB)
        assert served.read() == b"first"
    assert path.read_bytes() == b"FIRST!"


def test_os_errors_become_backend_errors(tmp_path: Path) -> None:
    full = backend_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "write the blob")
    assert isinstance(full, BackendError)
    assert "disk of the blob store is full" in full.message
    other = backend_error(OSError(errno.EIO, os.strerror(errno.EIO)), "read blob x")
    assert other.message == f"cannot read blob x: {os.strerror(errno.EIO)}"
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(BackendError, match="cannot open the blob store") as caught:
        FilesystemBlobStore(blocker / "blobs")
    assert isinstance(caught.value.__cause__, OSError)
