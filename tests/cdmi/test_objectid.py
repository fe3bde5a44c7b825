from __future__ import annotations

import pytest

from cdmi import objectid


def test_crc16_arc_check_value() -> None:
    assert objectid.crc16(b"123456789") == 0xBB3D


@pytest.mark.parametrize(
    "text",
    [
        "00007ED90010D891022876A8DE0BC0FD",
        "00006FFD001001CCE3B2B4F602032653",
        "0000706D0010B84FAD185C425D8B537E",
        "0000E0F00010D5050102030405060708",
    ],
)
def test_published_vectors_parse(text: str) -> None:
    assert objectid.parse(text) == text
    assert objectid.parse(text.lower()) == text


def test_make_matches_the_vector() -> None:
    assert objectid.make(0x00E0F0, bytes.fromhex("0102030405060708")) == (
        "0000E0F00010D5050102030405060708"
    )


def test_new_ids_are_24_bytes_with_our_enterprise_number() -> None:
    made = objectid.new(32473)
    assert len(made) == 48
    assert made[2:8] == "007ED9"
    assert made[10:12] == "18"
    assert objectid.parse(made) == made
    assert objectid.new(32473) != made


@pytest.mark.parametrize("position", range(32))
def test_any_flipped_digit_fails(position: int) -> None:
    text = "00007ED90010D891022876A8DE0BC0FD"
    digit = "0" if text[position] != "0" else "1"
    assert objectid.parse(text[:position] + digit + text[position + 1 :]) is None


@pytest.mark.parametrize("text", ["", "00", "zz" * 12, "0000", "0" * 82, "00007ED90010D89102"])
def test_malformed(text: str) -> None:
    assert objectid.parse(text) is None


def test_derived_ids_are_stable() -> None:
    assert objectid.derived(1, "a") == objectid.derived(1, "a") != objectid.derived(1, "b")


def test_make_refuses_reserved_values() -> None:
    with pytest.raises(ValueError, match="enterprise"):
        objectid.make(0, b"x")
    with pytest.raises(ValueError, match="opaque"):
        objectid.make(1, bytes(33))
