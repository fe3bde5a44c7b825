"""The contract of the blob store that holds the values of CDMI data objects.

A blob is an immutable byte string named by a blob id. A value is never changed in place: a
writer *stages* a new value (:meth:`BlobStore.stage`, :meth:`~BlobStore.stage_range`,
:meth:`~BlobStore.stage_copy`), which is invisible to every reader, then *publishes* it under an
id (:meth:`StagedBlob.publish`), which atomically replaces the old value. So a reader sees one
whole version or another, never a mix, and a crash half way leaves the old value untouched.

Blob ids are the CDMI object ids callers already have: 1 to 128 characters out of
``[0-9A-Za-z_-]`` (:func:`normalise_blob_id`). They are case-insensitive; drivers store the
lower-cased form. The alphabet rules out path separators and dots, so an id cannot name
anything outside the store, by construction.

Errors: every method raises :class:`~gateway.errors.InvalidRequest` for an invalid blob id or
a negative offset, and :class:`~gateway.errors.BackendError` when the storage fails (message
readable by a person; a full disk says so), with the foreign error chained. Methods that read a
named blob raise :class:`~gateway.errors.BackendNotFound` when it does not exist; ``delete``
succeeds quietly instead, and :meth:`~BlobStore.stage_range` treats a missing blob as empty.
An exception raised by the caller's chunk iterable propagates unchanged.

The store does not know which blobs are in use; its user does. :meth:`BlobStore.published`
lists the blobs older than a cutoff, so that the user can delete those it no longer names
(a crash between publishing a value and recording its id leaves such a blob).

Values travel as iterables of ``bytes`` chunks, at most :data:`CHUNK_SIZE` each on the way
out, so no driver method holds a whole value in memory.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

from gateway.errors import InvalidRequest

CHUNK_SIZE = 1 << 20
"""Largest chunk :meth:`BlobStore.read` yields, and the unit of a copy without kernel help."""

_BLOB_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")


def normalise_blob_id(blob_id: str) -> str:
    """The lower-cased form of a valid blob id; :class:`InvalidRequest` for anything else."""
    if not isinstance(blob_id, str) or _BLOB_ID.fullmatch(blob_id) is None:
        raise InvalidRequest(
            f"invalid blob id {blob_id!r}: use 1 to 128 letters, digits, '_' or '-'"
        )
    return blob_id.lower()


def check_offset(offset: int, what: str = "offset") -> None:
    """:class:`InvalidRequest` unless ``offset`` is a non-negative integer."""
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidRequest(f"invalid {what} {offset!r}: must be an integer >= 0")


class PublishedBlob(NamedTuple):
    """A published blob as :meth:`BlobStore.published` lists it."""

    blob_id: str
    """The id, lower-cased."""
    size: int
    """Size of the value in bytes."""
    published_at: float
    """When the value was published (POSIX seconds); a later publish under the same id moves
    it on."""


class StagedBlob(ABC):
    """A value written but not yet visible: publish it under an id, or discard it.

    Used as a context manager, it is discarded on exit unless it was published::

        with store.stage(chunks) as staged:
            staged.publish(blob_id)
    """

    size: int
    """Number of bytes staged."""

    @abstractmethod
    def publish(self, blob_id: str) -> None:
        """Atomically make this the value of ``blob_id``, replacing any old value.

        Concurrent publishes of the same id leave one whole value or the other. Afterwards the
        handle is spent: publishing it again raises :class:`RuntimeError` (a programming
        error). A failed publish leaves the old value and the handle as they were.
        """

    @abstractmethod
    def discard(self) -> None:
        """Drop the staged value. Idempotent, and a no-op after :meth:`publish`."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()


class BlobStore(ABC):
    """Where the values of data objects live, addressed by blob id."""

    # --- writing: stage, then publish ----------------------------------------------------

    @abstractmethod
    def stage(self, chunks: Iterable[bytes]) -> StagedBlob:
        """Stage the concatenation of ``chunks`` as a new value.

        The iterable is consumed into hidden, durable storage (a file is fsync'd) one chunk at
        a time. If it raises, whatever was staged is removed and the exception propagates.
        Nothing visible changes until :meth:`StagedBlob.publish`.
        """

    @abstractmethod
    def stage_range(self, blob_id: str, offset: int, chunks: Iterable[bytes]) -> StagedBlob:
        """Stage a copy of ``blob_id``'s current value with ``chunks`` written from ``offset``.

        A missing blob counts as empty. A gap between the old end and ``offset`` reads as zeros
        (drivers leave a hole where they can, rather than writing zeros). The staged size is
        ``max(old size, offset + bytes written)``. The copy is made without holding the value
        in memory; failures and a raising iterable behave as in :meth:`stage`.
        """

    @abstractmethod
    def stage_copy(self, source_id: str) -> StagedBlob:
        """Stage a copy of ``source_id``'s current value. :class:`BackendNotFound` if missing."""

    # --- reading ---------------------------------------------------------------------------

    @abstractmethod
    def read(self, blob_id: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of ``blob_id`` in chunks of at most :data:`CHUNK_SIZE`.

        ``end`` is exclusive; ``None`` means the end of the value, and both bounds are clipped
        to the size (``start >= end`` gives no chunks). The value is opened by this call, not
        by the first ``next()``: the iterator yields the version current at the call even if
        another is published meanwhile, and :class:`BackendNotFound` is raised here. Exhaust
        the iterator or call its ``close()`` to release the value early.
        """

    @abstractmethod
    def size(self, blob_id: str) -> int:
        """Size of the value in bytes. :class:`BackendNotFound` if missing."""

    @abstractmethod
    def exists(self, blob_id: str) -> bool:
        """Whether ``blob_id`` has a value."""

    @abstractmethod
    def delete(self, blob_id: str) -> None:
        """Remove the value. Missing: no-op. Iterators already returned by :meth:`read` still
        yield the old bytes."""

    @abstractmethod
    def path(self, blob_id: str) -> Path | None:
        """A local file holding the value, for zero-copy serving; ``None`` when the driver
        has no such file (such a driver need not check that the blob exists). A driver with
        files raises :class:`BackendNotFound` if the blob is missing.

        The file at the path is always one whole version, but a later publish or delete may
        replace or remove it: open it once and take the size from the open file.
        """

    # --- housekeeping ----------------------------------------------------------------------

    @abstractmethod
    def published(self, older_than: float) -> Iterator[PublishedBlob]:
        """Every published blob whose :attr:`~PublishedBlob.published_at` is before
        ``older_than`` (POSIX seconds), in no particular order; staged values are never listed.

        The listing is lazy and sees the store as it changes: a blob published or deleted
        while it runs may or may not be listed, and one listed may be gone by the time the
        caller looks at it. Anything in the store's storage that is not a blob this driver
        wrote (a stray file) is skipped, never listed.
        """
