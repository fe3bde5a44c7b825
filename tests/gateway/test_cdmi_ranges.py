"""Range writes that leave gaps (CDMI 1.1.1, docs/cdmi-notes.md §6 "CDMI read"): gaps read as
zeros and count in ``cdmi_size``; ``valuerange`` stops at the first gap; the written extents
live in the object's row and go when the value has no gap again."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cdmi.model import WRITTEN_EXTENTS
from gateway.store.models import CdmiObjectRow
from tests.gateway.cdmi_client import Cdmi
from tests.gateway.conftest import Node


@pytest.fixture
def c(node: Node) -> Cdmi:
    client = Cdmi(node)
    client.mkdir("c/")
    return client


def write(c: Cdmi, path: str, first: int, data: bytes) -> None:
    """A CDMI range write of ``data`` from byte ``first``."""
    response = c.put(f"{path}?value:{first}-{first + len(data) - 1}",
                     {"valuetransferencoding": "base64", "value": base64.b64encode(data).decode()})
    assert response.status_code in (201, 204), response.get_data(as_text=True)


def whole(c: Cdmi, path: str) -> tuple[str, bytes, str]:
    """``valuerange``, the value and ``cdmi_size`` of a CDMI read of the whole object."""
    doc = c.read(path)
    value = doc["value"]
    data = base64.b64decode(value) if doc["valuetransferencoding"] == "base64" else value.encode()
    return doc["valuerange"], data, doc["metadata"]["cdmi_size"]


def stored_extra(node: Node, path: str) -> dict[str, Any]:
    with node.store.session() as session:
        row = session.query(CdmiObjectRow).filter_by(path=path).one()
        return dict(row.extra or {})


def test_a_write_past_the_end_of_an_empty_object(c: Cdmi, node: Node) -> None:
    c.put("c/o", {"value": ""})
    write(c, "c/o", 10, b"0123456789")
    # the first byte is a gap: nothing from 0 was written, the range shown is empty
    assert whole(c, "c/o") == ("", b"\0" * 10 + b"0123456789", "20")
    assert stored_extra(node, "c/o")[WRITTEN_EXTENTS] == [[10, 19]]
    assert WRITTEN_EXTENTS not in c.read("c/o")  # server state, never shown


def test_a_range_write_creates_with_a_gap(c: Cdmi) -> None:
    write(c, "c/new", 4, b"data")
    assert whole(c, "c/new") == ("", b"\0\0\0\0data", "8")


def test_valuerange_stops_at_the_first_gap_and_filling_it_drops_the_extents(
    c: Cdmi, node: Node
) -> None:
    write(c, "c/o", 0, b"a" * 10)
    write(c, "c/o", 20, b"c" * 10)
    assert whole(c, "c/o") == ("0-9", b"a" * 10 + b"\0" * 10 + b"c" * 10, "30")
    assert stored_extra(node, "c/o")[WRITTEN_EXTENTS] == [[0, 9], [20, 29]]
    write(c, "c/o", 10, b"b" * 10)
    assert whole(c, "c/o") == ("0-29", b"a" * 10 + b"b" * 10 + b"c" * 10, "30")
    assert WRITTEN_EXTENTS not in stored_extra(node, "c/o")


def test_a_slice_shows_its_bytes_and_a_valuerange_up_to_the_first_gap(c: Cdmi) -> None:
    write(c, "c/o", 0, b"a" * 10)
    write(c, "c/o", 20, b"c" * 10)
    part = c.read("c/o?valuerange;value:5-24")
    assert part["valuerange"] == "5-9"
    assert base64.b64decode(part["value"]) == b"a" * 5 + b"\0" * 10 + b"c" * 5
    in_gap = c.read("c/o?valuerange;value:12-22")
    assert in_gap["valuerange"] == ""
    assert base64.b64decode(in_gap["value"]) == b"\0" * 8 + b"ccc"
    assert c.read("c/o?valuerange;value:21-40")["valuerange"] == "21-29"


def test_plain_http_content_range_writes_track_gaps(c: Cdmi, node: Node) -> None:
    c.request("PUT", "c/f", data=b"abcdefghij", headers={"Content-Type": "text/plain"})
    response = c.request("PUT", "c/f", data=b"XYZ",
                         headers={"Content-Range": "bytes 15-17/18"})
    assert response.status_code == 204
    assert whole(c, "c/f") == ("0-9", b"abcdefghij" + b"\0" * 5 + b"XYZ", "18")
    plain = c.request("GET", "c/f", headers={"Range": "bytes=8-16"})  # plain reads: zeros
    assert plain.status_code == 206 and plain.get_data() == b"ij\0\0\0\0\0XY"
    c.request("PUT", "c/f", data=b"12345", headers={"Content-Range": "bytes 10-14/18"})
    assert whole(c, "c/f")[0] == "0-17"
    assert WRITTEN_EXTENTS not in stored_extra(node, "c/f")


@pytest.mark.parametrize("how", ["cdmi", "plain"])
def test_a_whole_value_write_resets_the_extents(c: Cdmi, node: Node, how: str) -> None:
    write(c, "c/o", 0, b"a" * 4)
    write(c, "c/o", 10, b"c" * 4)
    if how == "cdmi":
        assert c.put("c/o", {"value": "fresh"}).status_code == 204
    else:
        assert c.request("PUT", "c/o", data=b"fresh").status_code == 204
    assert whole(c, "c/o") == ("0-4", b"fresh", "5")
    assert WRITTEN_EXTENTS not in stored_extra(node, "c/o")


def test_copies_and_snapshots_keep_the_gaps(c: Cdmi, node: Node) -> None:
    write(c, "c/o", 0, b"a" * 4)
    write(c, "c/o", 10, b"c" * 4)
    assert c.put("c/copy", {"copy": "/cdmi/c/o"}).status_code == 201
    assert whole(c, "c/copy") == ("0-3", b"aaaa" + b"\0" * 6 + b"cccc", "14")
    c.put("c/whole", {"value": "x"})
    assert c.put("c/whole", {"copy": "/cdmi/c/o"}).status_code == 204  # copy over an object
    assert whole(c, "c/whole")[0] == "0-3"
    assert c.put("c/whole", {"copy": "/cdmi/c/copy"}).status_code == 204
    c.mkdir("c/", {"snapshot": "s1"})
    assert whole(c, "c/cdmi_snapshots/s1/o")[0] == "0-3"
    c.put("c/plain", {"value": "plain"})
    assert c.put("c/whole", {"copy": "/cdmi/c/plain"}).status_code == 204
    assert whole(c, "c/whole")[0] == "0-4"  # a copy of a value without gaps has none
    assert WRITTEN_EXTENTS not in stored_extra(node, "c/whole")


def test_a_client_cannot_set_the_extents(c: Cdmi, node: Node) -> None:
    c.put("c/o", {"value": "0123", WRITTEN_EXTENTS: [[2, 3]], "colour": "red"})
    assert whole(c, "c/o")[0] == "0-3"
    assert c.read("c/o")["colour"] == "red"  # other unknown fields are still kept
    assert WRITTEN_EXTENTS not in stored_extra(node, "c/o")
