"""Which bytes of a data object's value were written: range writes may leave gaps.

A value written with ``?value:a-b`` or ``Content-Range`` past its end has a gap: it reads as
zeros and ``cdmi_size`` counts it, but ``valuerange`` stops at the first gap (see
docs/cdmi-notes.md §6, CDMI read). The written bytes are kept as *extents*: a sorted list of
merged, non-touching inclusive ``(first, last)`` pairs. A value without gaps, written from
byte 0 to its end, keeps no extents at all (None): that is every value written whole, so
extents cost nothing until a range write leaves a gap. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Extent = tuple[int, int]
"""Written bytes ``first`` through ``last``, inclusive."""


def merged(extents: Iterable[Extent]) -> list[Extent]:
    """``extents`` sorted, with overlapping or touching ones joined."""
    result: list[Extent] = []
    for first, last in sorted(extents):
        if result and first <= result[-1][1] + 1:
            result[-1] = (result[-1][0], max(result[-1][1], last))
        else:
            result.append((first, last))
    return result


def after_write(
    extents: Sequence[Extent] | None, size: int, first: int, count: int
) -> list[Extent] | None:
    """The extents of a value of ``size`` bytes (``extents`` None: written whole) after
    ``count`` bytes were written from ``first``; None again once the value is written from 0
    to its (possibly grown) end without a gap."""
    known = list(extents) if extents is not None else ([(0, size - 1)] if size else [])
    if count:
        known.append((first, first + count - 1))
    result = merged(known)
    new_size = max(size, first + count)
    if result == ([(0, new_size - 1)] if new_size else []):
        return None
    return result


def first_gap(extents: Sequence[Extent] | None, start: int, end: int) -> int:
    """The first byte of ``start`` up to ``end`` (exclusive) that no write reached; ``end``
    when there is none. ``valuerange`` of a read of those bytes ends before it."""
    if extents is None:
        return end
    for first, last in extents:
        if first <= start <= last:
            return min(end, last + 1)
    return min(start, end)


def from_stored(value: Any) -> list[Extent] | None:
    """Extents as the store keeps them (JSON ``[[first, last], …]``); None (the value has
    no gap) when the store keeps none. An empty list is a value of zeros only."""
    if value is None:
        return None
    return [(int(first), int(last)) for first, last in value]


def to_stored(extents: Sequence[Extent] | None) -> list[list[int]] | None:
    return [[first, last] for first, last in extents] if extents is not None else None
