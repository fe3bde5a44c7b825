from __future__ import annotations

import pytest

from cdmi import extents
from cdmi.extents import Extent


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        ([(5, 9), (0, 2)], [(0, 2), (5, 9)]),
        ([(0, 4), (5, 9)], [(0, 9)]),  # touching extents join
        ([(0, 6), (3, 9), (20, 29)], [(0, 9), (20, 29)]),
        ([(3, 4), (0, 20)], [(0, 20)]),
    ],
)
def test_merged(given: list[Extent], expected: list[Extent]) -> None:
    assert extents.merged(given) == expected


def test_write_past_the_end_of_an_empty_value_leaves_a_gap_at_zero() -> None:
    assert extents.after_write(None, 0, 10, 10) == [(10, 19)]


def test_write_past_the_end_of_a_whole_value() -> None:
    assert extents.after_write(None, 10, 20, 10) == [(0, 9), (20, 29)]


def test_appending_or_overwriting_a_whole_value_keeps_no_extents() -> None:
    assert extents.after_write(None, 10, 10, 5) is None
    assert extents.after_write(None, 10, 3, 2) is None
    assert extents.after_write(None, 0, 0, 4) is None


def test_filling_the_last_gap_drops_the_extents() -> None:
    assert extents.after_write([(0, 9), (20, 29)], 30, 10, 10) is None
    assert extents.after_write([(10, 19)], 20, 0, 10) is None


def test_filling_part_of_a_gap() -> None:
    assert extents.after_write([(0, 9), (20, 29)], 30, 12, 3) == [(0, 9), (12, 14), (20, 29)]
    assert extents.after_write([(0, 9), (20, 29)], 30, 10, 5) == [(0, 14), (20, 29)]


def test_an_empty_write_past_the_end_grows_a_gap() -> None:
    assert extents.after_write(None, 10, 20, 0) == [(0, 9)]
    assert extents.after_write(None, 0, 20, 0) == []


@pytest.mark.parametrize(
    ("written", "start", "end", "gap"),
    [
        (None, 0, 30, 30),  # no gaps
        ([(0, 9), (20, 29)], 0, 30, 10),
        ([(0, 9), (20, 29)], 3, 6, 6),  # the slice ends before the gap
        ([(0, 9), (20, 29)], 12, 25, 12),  # starts in a gap: nothing to show
        ([(0, 9), (20, 29)], 22, 30, 30),
        ([(10, 19)], 0, 20, 0),
        ([], 0, 20, 0),
    ],
)
def test_first_gap(written: list[Extent] | None, start: int, end: int, gap: int) -> None:
    assert extents.first_gap(written, start, end) == gap


def test_stored_form_round_trips() -> None:
    assert extents.to_stored([(0, 9), (20, 29)]) == [[0, 9], [20, 29]]
    assert extents.from_stored([[0, 9], [20, 29]]) == [(0, 9), (20, 29)]
    assert extents.from_stored(None) is None and extents.to_stored(None) is None
    assert extents.from_stored([]) == []
