"""CDMI object identifiers as the suite checks them (CDMI 1.1.1 §5.11), written here from the
clause and not imported from any server: the layout, CRC-16/ARC and the text form.

Layout of an identifier of L bytes (8 <= L <= 40): byte 0 and 4 zero (reserved), bytes 1-3
the issuer's IANA Private Enterprise Number (big-endian, 0 reserved), byte 5 the length L,
bytes 6-7 a CRC-16 over all L bytes computed with those two zero, then up to 32 opaque bytes.
The text form is base 16 (2L digits), read case-insensitively. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_BYTES = 8
MAX_BYTES = 40


def crc16(data: bytes) -> int:
    """CRC-16/ARC: register 0, each byte XORed into the low bits, eight right shifts each
    XORing 0xA001 when a 1 falls out; no final XOR (``b"123456789"`` gives 0xBB3D)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@dataclass(frozen=True)
class ObjectId:
    """A well-formed identifier, decoded."""

    text: str
    enterprise: int
    length: int
    crc: int
    opaque: bytes


def check(text: str) -> ObjectId:
    """Decode ``text``; ValueError naming the first rule it breaks."""
    if not isinstance(text, str) or not text:
        raise ValueError("the objectID is not a non-empty string")
    if len(text) % 2:
        raise ValueError(f"{len(text)} hex digits: an objectID has an even number of them")
    try:
        raw = bytearray(bytes.fromhex(text))
    except ValueError:
        raise ValueError("the objectID is not base 16 (hex digits only)") from None
    if not MIN_BYTES <= len(raw) <= MAX_BYTES:
        raise ValueError(f"{len(raw)} bytes: an objectID has {MIN_BYTES} to {MAX_BYTES}")
    if raw[0] or raw[4]:
        raise ValueError("reserved bytes 0 and 4 are not zero")
    if raw[5] != len(raw):
        raise ValueError(f"length byte says {raw[5]}, the objectID has {len(raw)} bytes")
    stated = int.from_bytes(raw[6:8], "big")
    raw[6:8] = b"\0\0"
    computed = crc16(bytes(raw))
    if computed != stated:
        raise ValueError(f"CRC field 0x{stated:04X}, the CRC-16 of the identifier is "
                         f"0x{computed:04X}")
    enterprise = int.from_bytes(raw[1:4], "big")
    if enterprise == 0:
        raise ValueError("enterprise number 0 is reserved")
    return ObjectId(text, enterprise, len(raw), stated, bytes(raw[8:]))


def corrupt(text: str) -> str:
    """``text`` with one opaque hex digit changed: the CRC no longer matches."""
    position = len(text) - 1
    digit = text[position].upper()
    replacement = "0" if digit != "0" else "1"
    return text[:position] + replacement
