"""The suite's own object-ID checker (conformance/cdmi/objectid.py) on known identifiers:
CRC-16/ARC's check value, published IDs, and every way an ID can be broken."""

from __future__ import annotations

import pytest

from conformance.cdmi import objectid

GOOD = {  # text -> (enterprise number, CRC)
    "00007ED90010D891022876A8DE0BC0FD": (0x7ED9, 0xD891),
    "00006FFD001001CCE3B2B4F602032653": (0x6FFD, 0x01CC),
    "0000706D0010B84FAD185C425D8B537E": (0x706D, 0xB84F),
    "0000E0F00010D5050102030405060708": (0xE0F0, 0xD505),
}


def test_crc16_arc_check_value() -> None:
    assert objectid.crc16(b"123456789") == 0xBB3D


@pytest.mark.parametrize(("text", "expected"), sorted(GOOD.items()))
def test_published_ids_are_well_formed(text: str, expected: tuple[int, int]) -> None:
    decoded = objectid.check(text)
    assert (decoded.enterprise, decoded.crc, decoded.length) == (*expected, 16)
    assert objectid.check(text.lower()).crc == expected[1]


@pytest.mark.parametrize("text", sorted(GOOD))
def test_every_single_digit_change_is_caught(text: str) -> None:
    for position in range(len(text)):
        for digit in "0123456789ABCDEF":
            if digit != text[position]:
                with pytest.raises(ValueError):
                    objectid.check(text[:position] + digit + text[position + 1:])
    with pytest.raises(ValueError, match="CRC"):
        objectid.check(objectid.corrupt(text))


@pytest.mark.parametrize(("text", "rule"), [
    ("", "non-empty"), ("000", "even"), ("XY" * 8, "base 16"), ("00" * 7, "8 to 40"),
    ("00" * 41, "8 to 40"), ("0100E0F00010D5050102030405060708", "reserved"),
    ("0000E0F00011D5050102030405060708", "length byte"),
    ("000000000010000000", "length byte"),
])
def test_malformed_ids_name_the_rule(text: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        objectid.check(text)


def test_enterprise_number_zero_is_reserved() -> None:
    raw = bytearray([0, 0, 0, 0, 0, 9, 0, 0, 7])
    raw[6:8] = objectid.crc16(bytes(raw)).to_bytes(2, "big")
    with pytest.raises(ValueError, match="enterprise number 0"):
        objectid.check(raw.hex())
