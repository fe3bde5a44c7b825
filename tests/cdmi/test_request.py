from __future__ import annotations

import pytest

from cdmi import paths
from cdmi.request import (
    CdmiType,
    Unsatisfiable,
    accepted_cdmi,
    byte_range,
    check_accept,
    content_range,
    media_type,
    negotiate_version,
    selection,
)
from gateway.errors import InvalidRequest, NotAcceptable, NotFound


@pytest.mark.parametrize(
    ("header", "answer"),
    [
        ("1.1.1", "1.1.1"),
        ("1.1", "1.1"),
        ("1.0.2", "1.0.2"),
        ("1.1, 2.0", "1.1"),
        ("1.0.2,1.1.1", "1.1.1"),
        ("1.0.1h", "1.0.1h"),
        (" 2.0.0 , 1.0.2 ", "1.0.2"),
    ],
)
def test_versions(header: str, answer: str) -> None:
    assert negotiate_version(header) == answer


def test_no_common_version_is_400_naming_ours() -> None:
    with pytest.raises(InvalidRequest, match=r"supported: 1\.1\.1, 1\.1, 1\.0\.2"):
        negotiate_version("9.9, 2.0")
    assert negotiate_version(None) is None


def test_media_types_and_aliases() -> None:
    assert media_type("application/cdmi-object+json").cdmi == CdmiType.OBJECT  # type: ignore[union-attr]
    assert media_type("application/cdmi-dataobject").cdmi == CdmiType.OBJECT  # type: ignore[union-attr]
    plain = media_type("Text/Plain; charset=UTF-8")
    assert plain is not None and plain.raw == "text/plain" and plain.charset == "utf-8"
    assert plain.cdmi is None
    assert media_type("") is None


def test_accept() -> None:
    assert check_accept("*/*", CdmiType.OBJECT) is None
    chosen = check_accept("application/cdmi-container+json", CdmiType.CONTAINER)
    assert chosen is not None and chosen.render(CdmiType.CONTAINER).endswith("+json")
    with pytest.raises(NotAcceptable):
        check_accept("application/cdmi-container", CdmiType.OBJECT)


def test_header_parses_are_remembered_but_refusals_are_not() -> None:
    accept = "application/cdmi-object, text/plain;q=0.5, application/cdmi-container+json"
    first = accepted_cdmi(accept)
    assert [t.raw for t in first] == ["application/cdmi-object", "application/cdmi-container+json"]
    assert accepted_cdmi(accept) is first  # immutable, so it can be handed out again
    assert accepted_cdmi(None) == () == accepted_cdmi("*/*")
    assert media_type("application/cdmi-object") is media_type("application/cdmi-object")
    for _ in range(2):  # a refusal is raised every time, never answered from memory
        with pytest.raises(InvalidRequest):
            negotiate_version("9.9")


def test_selection() -> None:
    sel = selection("objectID;value:0-3;children:2-5;metadata:cdmi_")
    assert sel.fields == ("objectID", "value", "children", "metadata")
    assert sel.value_range == (0, 3) and sel.children_range == (2, 5)
    assert sel.metadata_prefixes == ("cdmi_",)
    assert selection("").everything


@pytest.mark.parametrize("query", ["value:3-1", "value:a-b", "a&b", "value=0-3", "mimetype:x"])
def test_bad_selection(query: str) -> None:
    with pytest.raises(InvalidRequest):
        selection(query)


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-3", (0, 4)),
        ("0-3", (0, 4)),
        ("bytes=5-", (5, 10)),
        ("bytes=-4", (6, 10)),
        ("bytes=8-100", (8, 10)),
        ("bytes=0-1,4-5", None),
        ("items=0-1", None),
        (None, None),
    ],
)
def test_byte_ranges(header: str | None, span: tuple[int, int] | None) -> None:
    assert byte_range(header, 10) == span


def test_unsatisfiable() -> None:
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=10-12", 10)


def test_content_range() -> None:
    assert content_range("bytes 21-24/37") == (21, 25)
    assert content_range("bytes 0-0/*") == (0, 1)
    with pytest.raises(InvalidRequest):
        content_range("21-24")


def test_targets() -> None:
    assert paths.target("") == paths.Target(paths.PATH, "", slash=True)
    assert paths.target("a/b/") == paths.Target(paths.PATH, "a/b/", slash=True)
    by_id = paths.target("cdmi_objectid/00007ed90010d891022876a8de0bc0fd/x")
    assert by_id.kind == paths.BY_ID and by_id.rest == "x"
    assert by_id.object_id == "00007ED90010D891022876A8DE0BC0FD"
    assert paths.target("cdmi_objectid/").kind == paths.ID_ROOT
    assert paths.target("cdmi_capabilities/container/").rest == "container/"
    assert paths.target("c/cdmi_snapshots/s1/x").in_snapshot


@pytest.mark.parametrize("path", ["a/../b", "a/./b", "a//b", "..", "a/\x01"])
def test_bad_paths(path: str) -> None:
    with pytest.raises(InvalidRequest):
        paths.target(path)


def test_encoded_slash_and_bad_ids() -> None:
    with pytest.raises(InvalidRequest, match="%2F"):
        paths.target("a", encoded_slash=True)
    with pytest.raises(NotFound):
        paths.target("cdmi_objectid/00007ED90010D891022876A8DE0BC0FE")
