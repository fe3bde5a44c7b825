"""``BlobStore.published``: the listing of published blobs by age that the orphan sweep
(gateway.services.cdmi_sweep) runs on, against every driver; then what the filesystem driver
must never list."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from backends.blob import BlobStore
from backends.blobfs import STAGING_DIR, FilesystemBlobStore
from tests.backends.test_blobstore import BLOB, IMPLEMENTATIONS, OTHER, put

FUTURE = 1e12  # a cutoff every blob is older than


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return IMPLEMENTATIONS[request.param](tmp_path / "blobs")


def listed(store: BlobStore, older_than: float = FUTURE) -> dict[str, int]:
    """id -> size of what ``published(older_than)`` lists; each id at most once."""
    found = [(blob.blob_id, blob.size) for blob in store.published(older_than)]
    assert len(found) == len({blob_id for blob_id, _ in found}), found
    return dict(found)


def test_lists_published_blobs_by_lower_case_id_with_their_size(store: BlobStore) -> None:
    assert listed(store) == {}
    put(store, BLOB, b"twelve bytes")
    put(store, OTHER, b"")
    assert listed(store) == {BLOB.lower(): 12, OTHER.lower(): 0}


def test_only_blobs_published_before_the_cutoff(store: BlobStore) -> None:
    put(store, BLOB, b"old")
    time.sleep(0.05)
    cutoff = time.time()
    time.sleep(0.05)
    put(store, OTHER, b"young")
    assert listed(store, cutoff) == {BLOB.lower(): 3}
    assert listed(store, cutoff - 3600) == {}


def test_age_counts_from_the_publish_not_from_the_staging(store: BlobStore) -> None:
    staged = store.stage([b"uploaded slowly, published later"])
    time.sleep(0.2)
    before = time.time()
    staged.publish(BLOB)
    (blob,) = store.published(FUTURE)
    assert blob.published_at >= before - 0.05  # file times may lag the clock by a tick
    assert listed(store, before - 0.1) == {}


def test_a_new_publish_under_an_id_makes_it_young_again(store: BlobStore) -> None:
    put(store, BLOB, b"first")
    time.sleep(0.05)
    cutoff = time.time()
    assert listed(store, cutoff) == {BLOB.lower(): 5}
    time.sleep(0.05)
    put(store, BLOB, b"second!")
    assert listed(store, cutoff) == {}
    assert listed(store) == {BLOB.lower(): 7}


def test_staged_and_deleted_blobs_are_not_listed(store: BlobStore) -> None:
    put(store, OTHER, b"gone")
    store.delete(OTHER)
    with store.stage([b"staged, never published"]):
        assert listed(store) == {}


def test_deleting_what_is_listed_while_listing(store: BlobStore) -> None:
    ids = [f"{n:04x}{'ab' * 10}" for n in range(60)]  # shards shared and not
    for blob_id in ids:
        put(store, blob_id, blob_id.encode())
    seen = []
    for blob in store.published(FUTURE):
        store.delete(blob.blob_id)
        seen.append(blob.blob_id)
    assert sorted(seen) == sorted(ids)
    assert listed(store) == {}


def test_short_ids_are_listed(store: BlobStore) -> None:
    put(store, "a", b"1")
    put(store, "ab-_", b"22")
    assert listed(store) == {"a": 1, "ab-_": 2}


# --- filesystem driver ----------------------------------------------------------------------


def test_files_that_are_not_blobs_are_never_listed(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    put(store, BLOB, b"the one blob")
    root = store.root
    shard = store.path(BLOB)
    assert shard is not None
    strays = [
        root / "README",
        root / "ab" / "0000a1b2c3d4e5f60718293a4b5c6d7e",  # a blob's name, one level up
        shard.parent / "0000a1b2c3d4e5f6ffffffffffffffff.tmp",  # not an id
        shard.parent / BLOB.replace("0000", "0001"),  # upper case: not a name we write
        shard.parent / "1111a1b2c3d4e5f6ffffffffffffffff",  # an id, in another id's shard
        root / "Ab" / "cd" / "abcd",  # a shard name we never make
        root / STAGING_DIR / "blob-abcd",  # a staging file
    ]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"not a blob")
    (shard.parent / "0000a1b2c3d4e5f6eeeeeeeeeeeeeeee").mkdir()  # a directory
    os.symlink(strays[0], shard.parent / "0000a1b2c3d4e5f6dddddddddddddddd")  # a link
    assert listed(store) == {BLOB.lower(): 12}


def test_publish_stamps_the_file_with_the_time_of_publishing(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    staged = store.stage([b"value"])
    staging = store.root / STAGING_DIR
    (name,) = os.listdir(staging)
    os.utime(staging / name, (time.time() - 7200, time.time() - 7200))  # staged long ago
    before = time.time()
    staged.publish(BLOB)
    path = store.path(BLOB)
    assert path is not None
    assert path.stat().st_mtime >= before - 0.05
