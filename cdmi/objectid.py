"""CDMI object identifiers (CDMI 1.1.1 §5.11): the binary layout, its CRC and the text form.

Layout of an identifier of ``L`` bytes (8 ≤ L ≤ 40):

====  ==========================================================
byte  content
====  ==========================================================
0     0 (reserved)
1-3   IANA Private Enterprise Number of the issuer, big-endian
4     0 (reserved)
5     L, the whole length in bytes
6-7   CRC-16 over all L bytes (computed with these two zero)
8…    opaque bytes, unique per enterprise number (at most 32)
====  ==========================================================

The CRC is CRC-16/ARC: reflected polynomial 0xA001, initial value 0, no final XOR (the check
value of ``b"123456789"`` is 0xBB3D). The text form is base 16, upper-case when we write it and
case-insensitive when we read it. Pure functions, no I/O.
"""

from __future__ import annotations

import uuid

MAX_BYTES = 40
HEADER_BYTES = 8
MAX_OPAQUE = MAX_BYTES - HEADER_BYTES


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def crc16(data: bytes) -> int:
    """CRC-16/ARC of ``data``."""
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def make(enterprise: int, opaque: bytes) -> str:
    """The text form of the identifier with this enterprise number and opaque part."""
    if not 0 < enterprise < 1 << 24:
        raise ValueError("the enterprise number must be in 1..16777215 (0 is reserved)")
    if not 0 < len(opaque) <= MAX_OPAQUE:
        raise ValueError(f"the opaque part must be 1..{MAX_OPAQUE} bytes")
    length = HEADER_BYTES + len(opaque)
    raw = bytearray([0, *enterprise.to_bytes(3, "big"), 0, length, 0, 0]) + opaque
    raw[6:8] = crc16(bytes(raw)).to_bytes(2, "big")
    return raw.hex().upper()


def new(enterprise: int) -> str:
    """A fresh identifier: a random UUID as the opaque part (24 bytes, 48 hex digits)."""
    return make(enterprise, uuid.uuid4().bytes)


def derived(enterprise: int, name: str) -> str:
    """A stable identifier for a server-made object (capabilities, domains) named ``name``."""
    return make(enterprise, uuid.uuid5(uuid.NAMESPACE_URL, f"cdmi:{name}").bytes)


def parse(text: str) -> str | None:
    """The canonical (upper-case) form of ``text`` if it is a well-formed identifier: hex,
    reserved bytes zero, length byte equal to the length, CRC correct. None otherwise."""
    if not 2 * HEADER_BYTES <= len(text) <= 2 * MAX_BYTES or len(text) % 2:
        return None
    try:
        raw = bytearray(bytes.fromhex(text))
    except ValueError:
        return None
    if raw[0] or raw[4] or raw[5] != len(raw):
        return None
    stated = int.from_bytes(raw[6:8], "big")
    raw[6:8] = b"\0\0"
    if crc16(bytes(raw)) != stated:
        return None
    return text.upper()
