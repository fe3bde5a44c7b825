"""The blob store as files under one directory (the :mod:`backends.blob` contract).

Layout: the value of blob ``abcdef`` is the file ``root/ab/cd/abcdef`` (ids are lower-cased;
ids shorter than four characters pad their shard names with ``_``). Values are staged as
files under ``root/.staging/``, on the same filesystem, so publishing is one atomic
``os.replace`` followed by an fsync of the directory; the staged file was fsync'd before.
A published file is never written again, so an open file always reads one whole version and
:meth:`FilesystemBlobStore.path` can be served as is. A crash leaves only staging files; the
store removes those older than :data:`STALE_STAGING_SECONDS` when it is opened. Empty shard
directories are left in place (removing them would race with a publish).

Publishing sets the file's modification time to the moment of publishing (the rename keeps
it), so :meth:`~FilesystemBlobStore.published` reads a blob's age from ``st_mtime``; files
whose names or places are not a blob's are never listed.

Copies (:meth:`~FilesystemBlobStore.stage_range`, :meth:`~FilesystemBlobStore.stage_copy`)
copy only the data extents of the source (``SEEK_DATA``/``SEEK_HOLE``), so holes stay holes,
with ``os.copy_file_range`` (which reflinks on filesystems that can), falling back to
:data:`~backends.blob.CHUNK_SIZE` reads and writes. Files are created mode 0600.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from backends.blob import (
    CHUNK_SIZE,
    BlobStore,
    PublishedBlob,
    StagedBlob,
    check_offset,
    normalise_blob_id,
)
from gateway.errors import BackendError, BackendNotFound, InvalidRequest

STAGING_DIR = ".staging"
"""Name of the directory under the root where values are staged."""

STALE_STAGING_SECONDS = 3600
"""Age after which a staging file is taken for a crash's garbage and removed."""

# copy_file_range errors that mean "not here, copy by hand" rather than a failure.
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}
)
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def backend_error(exc: OSError, action: str) -> BackendError:
    """The :class:`BackendError` for an ``OSError`` met while doing ``action``."""
    if exc.errno in _DISK_FULL:
        return BackendError(f"cannot {action}: the disk of the blob store is full")
    return BackendError(f"cannot {action}: {exc.strerror or exc}")


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise backend_error(exc, action) from exc


class FilesystemBlobStore(BlobStore):
    """Blobs as files under ``root`` (created if missing)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._staging = self.root / STAGING_DIR
        with _translated(f"open the blob store at {self.root}"):
            self._staging.mkdir(parents=True, exist_ok=True)
            self._remove_stale_staging(time.time() - STALE_STAGING_SECONDS)

    def __repr__(self) -> str:
        return f"FilesystemBlobStore({str(self.root)!r})"

    # --- writing ---------------------------------------------------------------------------

    def stage(self, chunks: Iterable[bytes]) -> StagedBlob:
        return self._stage(lambda fd: _write_chunks(fd, 0, chunks))

    def stage_range(self, blob_id: str, offset: int, chunks: Iterable[bytes]) -> StagedBlob:
        name = normalise_blob_id(blob_id)
        check_offset(offset)
        source = self._open_if_exists(name)

        def fill(fd: int) -> int:
            old_size = 0
            if source is not None:
                old_size = _copy_value(source, fd)
            with _translated("extend the staged blob"):
                os.ftruncate(fd, max(old_size, offset))  # a gap becomes a hole
            return max(old_size, offset + _write_chunks(fd, offset, chunks))

        return self._stage_from(source, fill)

    def stage_copy(self, source_id: str) -> StagedBlob:
        source = self._open(normalise_blob_id(source_id))
        return self._stage_from(source, lambda fd: _copy_value(source, fd))

    def _stage_from(self, source: int | None, fill: Callable[[int], int]) -> StagedBlob:
        try:
            return self._stage(fill)
        finally:
            if source is not None:
                os.close(source)

    def _stage(self, fill: Callable[[int], int]) -> StagedBlob:
        """A staging file filled by ``fill(fd) -> size``, fsync'd; removed if anything raises."""
        with _translated("create a staging file"):
            fd, temp = tempfile.mkstemp(dir=self._staging, prefix="blob-")
        try:
            try:
                size = fill(fd)
                with _translated("write the staged blob"):
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp)
            raise
        return _StagedFile(self, Path(temp), size)

    def _publish(self, temp: Path, name: str) -> Path:
        """Move ``temp`` onto the value of ``name``; returns the directory to fsync."""
        final = self._final_path(name)
        with _translated(f"publish blob {name}"):
            self._make_shard(final.parent)
            try:
                os.utime(temp)  # published_at (see published): the rename keeps it
                os.replace(temp, final)
            except FileNotFoundError as exc:
                raise BackendError(
                    f"cannot publish blob {name}: the staged value is gone (staging files "
                    f"older than {STALE_STAGING_SECONDS} s are removed when a store opens)"
                ) from exc
        return final.parent

    def _make_shard(self, shard: Path) -> None:
        if shard.is_dir():
            return
        for directory in (shard.parent, shard):
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            _fsync_dir(directory.parent)

    # --- reading ---------------------------------------------------------------------------

    def read(self, blob_id: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        name = normalise_blob_id(blob_id)
        check_offset(start, "start")
        if end is not None:
            check_offset(end, "end")
        fd = self._open(name)
        try:
            with _translated(f"read blob {name}"):
                size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        return _FileReader(
            fd, name, start=min(start, size), end=size if end is None else min(end, size)
        )

    def size(self, blob_id: str) -> int:
        return self._stat(normalise_blob_id(blob_id)).st_size

    def exists(self, blob_id: str) -> bool:
        name = normalise_blob_id(blob_id)
        try:
            self._stat(name)
        except BackendNotFound:
            return False
        return True

    def delete(self, blob_id: str) -> None:
        name = normalise_blob_id(blob_id)
        final = self._final_path(name)
        with _translated(f"delete blob {name}"):
            try:
                final.unlink()
            except FileNotFoundError:
                return
            _fsync_dir(final.parent)

    def path(self, blob_id: str) -> Path | None:
        name = normalise_blob_id(blob_id)
        self._stat(name)
        return self._final_path(name)

    # --- housekeeping ----------------------------------------------------------------------

    def published(self, older_than: float) -> Iterator[PublishedBlob]:
        with _translated(f"list the blobs in {self.root}"):
            for first in _shard_dirs(self.root):
                for second in _shard_dirs(first):
                    for entry in _scan(second):
                        blob = _published_blob(entry, first.name + second.name)
                        if blob is not None and blob.published_at < older_than:
                            yield blob

    # --- files -----------------------------------------------------------------------------

    def _final_path(self, name: str) -> Path:
        padded = f"{name}___"
        return self.root / padded[:2] / padded[2:4] / name

    def _stat(self, name: str) -> os.stat_result:
        with _translated(f"look up blob {name}"):
            try:
                return self._final_path(name).stat()
            except FileNotFoundError as exc:
                raise BackendNotFound(f"blob {name} does not exist") from exc

    def _open(self, name: str) -> int:
        """A read-only descriptor on the value of ``name``; BackendNotFound if missing."""
        fd = self._open_if_exists(name)
        if fd is None:
            raise BackendNotFound(f"blob {name} does not exist")
        return fd

    def _open_if_exists(self, name: str) -> int | None:
        with _translated(f"open blob {name}"):
            try:
                return os.open(self._final_path(name), os.O_RDONLY)
            except FileNotFoundError:
                return None

    def _remove_stale_staging(self, cutoff: float) -> None:
        with os.scandir(self._staging) as entries:
            for entry in entries:
                try:
                    stale = entry.stat(follow_symlinks=False).st_mtime < cutoff
                    if stale and not entry.is_dir(follow_symlinks=False):
                        os.unlink(entry.path)
                except FileNotFoundError:
                    continue  # another store removed it first


class _StagedFile(StagedBlob):
    """A staging file of a :class:`FilesystemBlobStore`."""

    def __init__(self, store: FilesystemBlobStore, temp: Path, size: int) -> None:
        self.size = size
        self._store = store
        self._temp = temp
        self._spent = False

    def __repr__(self) -> str:
        return f"<staged blob {self._temp.name}, {self.size} bytes>"

    def publish(self, blob_id: str) -> None:
        name = normalise_blob_id(blob_id)
        if self._spent:
            raise RuntimeError("this staged blob was already published or discarded")
        directory = self._store._publish(self._temp, name)
        self._spent = True
        with _translated(f"publish blob {name}"):
            _fsync_dir(directory)

    def discard(self) -> None:
        if self._spent:
            return
        with _translated("discard a staged blob"):
            self._temp.unlink(missing_ok=True)
        self._spent = True


class _FileReader(Iterator[bytes]):
    """Chunks of an open value; closes the descriptor when exhausted, closed or collected."""

    def __init__(self, fd: int, name: str, *, start: int, end: int) -> None:
        self._fd = fd
        self._name = name
        self._pos = start
        self._end = end
        if start >= end:
            self.close()

    def __next__(self) -> bytes:
        if self._fd < 0 or self._pos >= self._end:
            self.close()
            raise StopIteration
        try:
            with _translated(f"read blob {self._name}"):
                data = os.pread(self._fd, min(CHUNK_SIZE, self._end - self._pos), self._pos)
        except BaseException:
            self.close()
            raise
        if not data:
            self.close()
            raise StopIteration
        self._pos += len(data)
        return data

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


# --- file helpers ---------------------------------------------------------------------------


def _write_chunks(fd: int, offset: int, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` at ``offset`` one at a time; returns the number of bytes written.

    Exceptions raised by the iterable itself propagate untranslated."""
    position = offset
    for chunk in chunks:
        data = memoryview(chunk).cast("B")
        with _translated("write the staged blob"):
            _pwrite_all(fd, data, position)
        position += len(data)
    return position - offset


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while len(data):
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written


def _copy_value(source: int, target: int) -> int:
    """Copy the value open at ``source`` into the empty file ``target``, holes included;
    returns its size."""
    with _translated("copy a blob"):
        size = os.fstat(source).st_size
        for start, end in _data_extents(source, size):
            _copy_range(source, target, start, end)
        os.ftruncate(target, size)
    return size


def _data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each run of data in the first ``size`` bytes of ``fd``."""
    if not hasattr(os, "SEEK_DATA"):
        yield 0, size
        return
    position = 0
    while position < size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole up to the end
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # no hole support
                yield position, size
                return
            raise
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        position = end


def _copy_range(source: int, target: int, start: int, end: int) -> None:
    """Copy bytes ``[start, end)`` to the same offsets, in the kernel when it can."""
    position = start
    if hasattr(os, "copy_file_range"):
        try:
            while position < end:
                copied = os.copy_file_range(source, target, end - position, position, position)
                if copied == 0:
                    return
                position += copied
            return
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
    while position < end:
        data = os.pread(source, min(CHUNK_SIZE, end - position), position)
        if not data:
            return
        _pwrite_all(target, memoryview(data), position)
        position += len(data)


def _scan(directory: Path) -> Iterator[os.DirEntry[str]]:
    """The entries of ``directory``; none if it vanished meanwhile."""
    try:
        with os.scandir(directory) as entries:
            yield from entries
    except FileNotFoundError:
        return


def _shard_dirs(directory: Path) -> Iterator[Path]:
    """The shard directories right under ``directory`` (two characters of a blob id; the
    staging directory is not one)."""
    for entry in _scan(directory):
        named = len(entry.name) == 2 and _is_blob_name(entry.name)
        if named and entry.is_dir(follow_symlinks=False):
            yield Path(entry.path)


def _published_blob(entry: os.DirEntry[str], shards: str) -> PublishedBlob | None:
    """The blob a file in the shard directories ``shards`` (their four characters) holds;
    None for anything else: a name that is no lower-case blob id or not in its id's shards,
    not a regular file, or gone meanwhile."""
    if not _is_blob_name(entry.name) or f"{entry.name}___"[:4] != shards:
        return None
    try:
        status = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return PublishedBlob(entry.name, status.st_size, status.st_mtime)


def _is_blob_name(name: str) -> bool:
    try:
        return normalise_blob_id(name) == name
    except InvalidRequest:
        return False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
