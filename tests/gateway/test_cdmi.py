"""CDMI 1.1.1 through the whole gateway (Flask app, store on SQLite and PostgreSQL, blob store
on disk): every behaviour of the issue, including the refusals and that they change nothing."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.store.models import CdmiObjectRow
from tests.gateway.cdmi_client import CONTAINER, OBJECT, VERSION, Cdmi
from tests.gateway.conftest import Node

HEADER_ORDER = ["objectType", "objectID", "objectName", "parentURI", "parentID", "domainURI",
                "capabilitiesURI", "completionStatus"]
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def c(node: Node) -> Cdmi:
    return Cdmi(node)


def body(response: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(response.get_data())
    return document


def snapshot_of(node: Node) -> tuple[int, list[tuple[str, int]]]:
    """Row count of cdmi_objects and every blob file (path, size): what must not change."""
    node.nimbo.cdmi.flush()
    with node.store.session() as session:
        count = session.scalar(select(func.count()).select_from(CdmiObjectRow)) or 0
    root = node.config.effective_blob_dir
    files = sorted((str(p.relative_to(root)), p.stat().st_size)
                   for p in Path(root).rglob("*") if p.is_file())
    return count, files


# --- versions and modes -----------------------------------------------------------------


@pytest.mark.parametrize(("asked", "answered"), [("1.0.2", "1.0.2"), ("1.1, 2.0", "1.1"),
                                                 ("1.1.1", "1.1.1")])
def test_version_answered_in_the_clients_spelling(c: Cdmi, asked: str, answered: str) -> None:
    response = c.request("GET", "", headers={"X-CDMI-Specification-Version": asked})
    assert response.status_code == 200
    assert response.headers["X-CDMI-Specification-Version"] == answered
    assert response.headers["Content-Type"] == CONTAINER


def test_unknown_version_is_400_and_names_ours(c: Cdmi) -> None:
    response = c.request("GET", "", headers={"X-CDMI-Specification-Version": "9.9"})
    assert response.status_code == 400
    assert body(response)["error"]["id"] == "invalidRequest"
    assert "1.0.2" in body(response)["error"]["description"]


def test_legacy_clients_get_legacy_capability_names(c: Cdmi) -> None:
    new = c.read("cdmi_capabilities/container/")["capabilities"]
    old = c.request("GET", "cdmi_capabilities/container/",
                    headers={"X-CDMI-Specification-Version": "1.0.2"})
    assert "cdmi_export_container_occi" in new
    assert "cdmi_occi_export" in body(old)["capabilities"]


def test_cdmi_type_without_version_header_is_served_as_111(c: Cdmi) -> None:
    c.mkdir("c/")
    response = c.request("GET", "c/", headers={"Accept": "application/cdmi-container+json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/cdmi-container+json"
    assert response.headers["X-CDMI-Specification-Version"] == "1.1.1"


def test_wrong_cdmi_class_in_accept_is_406(c: Cdmi) -> None:
    c.mkdir("c/")
    assert c.get("c/", accept=OBJECT).status_code == 406


def test_patch_is_cdmi_2_and_refused(c: Cdmi) -> None:
    assert c.cdmi("PATCH", "x", {"value": "a"}, media=OBJECT).status_code == 405


# --- containers -------------------------------------------------------------------------


def test_container_create_fields_in_order(c: Cdmi) -> None:
    response = c.mkdir("c1/", {"metadata": {"colour": "blue"}})
    assert response.status_code == 201
    assert response.headers["Location"] == "http://localhost/cdmi/c1/"
    doc = body(response)
    assert list(doc) == [*HEADER_ORDER, "metadata", "childrenrange", "children"]
    assert doc["objectName"] == "c1/" and doc["parentURI"] == "/cdmi/"
    assert doc["parentID"] == c.read("")["objectID"]
    assert doc["metadata"]["colour"] == "blue"
    assert doc["childrenrange"] == "" and doc["children"] == []


def test_root_container(c: Cdmi) -> None:
    root = c.read("")
    assert root["objectName"] == "cdmi/" and root["parentURI"] == "/"
    assert "parentID" not in root
    assert c.request("GET", "/cdmi").status_code == 301


def test_existing_container_without_slash_is_301(c: Cdmi) -> None:
    c.mkdir("c1/")
    c.mkdir("c1/sub/")
    for url in ("c1", "c1/sub"):
        response = c.get(url)
        assert response.status_code == 301
        assert response.headers["Location"] == f"http://localhost/cdmi/{url}/"


def test_container_create_without_slash_is_400(c: Cdmi) -> None:
    response = c.cdmi("PUT", "c1", {}, media=CONTAINER)
    assert response.status_code == 400
    assert "ends with '/'" in body(response)["error"]["description"]


def test_plain_put_of_a_slash_url_makes_a_container(c: Cdmi) -> None:
    response = c.request("PUT", "plain/")
    assert response.status_code == 201
    assert c.read("plain/")["objectType"] == CONTAINER


def test_empty_body_container_create(c: Cdmi) -> None:
    response = c.cdmi("PUT", "empty/", "", media=CONTAINER)
    assert response.status_code == 201


def test_missing_parent_is_404_and_nothing_made(c: Cdmi, node: Node) -> None:
    before = snapshot_of(node)
    assert c.mkdir("a/", {}).status_code == 201
    before = snapshot_of(node)
    assert c.cdmi("PUT", "nope/b/", {}, media=CONTAINER).status_code == 404
    assert c.put("nope/x", {"value": "v"}).status_code == 404
    assert c.request("PUT", "nope/y", data=b"raw").status_code == 404
    assert snapshot_of(node) == before


def test_children_listing_and_ranges(c: Cdmi) -> None:
    c.mkdir("c/")
    for name in ("b", "a", "d"):
        assert c.put(f"c/{name}", {"value": name}).status_code == 201
    c.mkdir("c/sub/")
    doc = c.read("c/")
    assert doc["children"] == ["a", "b", "d", "sub/"] and doc["childrenrange"] == "0-3"
    assert list(doc)[-2:] == ["childrenrange", "children"]
    part = c.read("c/?childrenrange;children:1-2")
    assert part == {"childrenrange": "1-2", "children": ["b", "d"]}
    assert c.read("c/?childrenrange") == {"childrenrange": "0-3"}


def test_deleting_a_container_deletes_its_subtree(c: Cdmi, node: Node) -> None:
    c.mkdir("c/")
    c.mkdir("c/d/")
    c.put("c/d/x", {"value": "x" * 100})
    c.put("c/y", {"value": "y"})
    response = c.request("DELETE", "c/", headers=VERSION)
    assert response.status_code == 204
    assert c.get("c/").status_code == 404
    count, files = snapshot_of(node)
    assert count == 1 and files == []  # the root is all that is left


def test_root_and_reserved_names_cannot_be_made_or_deleted(c: Cdmi) -> None:
    assert c.request("DELETE", "", headers=VERSION).status_code == 400
    for reserved in ("cdmi_foo/", "cdmi_snapshots/"):
        response = c.cdmi("PUT", reserved, {}, media=CONTAINER)
        assert response.status_code == 400, reserved
    assert c.cdmi("PUT", "cdmi_capabilities/x/", {}, media=CONTAINER).status_code == 400
    assert c.request("DELETE", "cdmi_domains/default/").status_code == 400


# --- data objects -----------------------------------------------------------------------


def test_object_create_and_read_fields_in_order(c: Cdmi) -> None:
    c.mkdir("c1/")
    response = c.put("c1/hi.txt", {"mimetype": "text/plain", "value": "Hello CDMI"})
    assert response.status_code == 201
    doc = body(response)
    assert list(doc) == [*HEADER_ORDER, "mimetype", "metadata"]
    assert doc["metadata"]["cdmi_size"] == "10" and doc["metadata"]["cdmi_owner"] == "alice"
    read = c.read("c1/hi.txt")
    assert list(read) == [*HEADER_ORDER, "mimetype", "metadata", "valuetransferencoding",
                          "valuerange", "value"]
    assert read["value"] == "Hello CDMI" and read["valuerange"] == "0-9"
    assert read["valuetransferencoding"] == "utf-8"
    assert read["objectID"] == doc["objectID"]


def test_base64_values_round_trip(c: Cdmi) -> None:
    c.mkdir("c/")
    data = bytes(range(256))
    encoded = base64.b64encode(data).decode()
    assert c.put("c/bin", {"valuetransferencoding": "base64", "value": encoded,
                           "mimetype": "application/octet-stream"}).status_code == 201
    read = c.read("c/bin")
    assert read["valuetransferencoding"] == "base64" and read["value"] == encoded
    raw = c.request("GET", "c/bin")
    assert raw.get_data() == data
    assert raw.headers["Content-Type"] == "application/octet-stream"


def test_unicode_value_streams_intact(c: Cdmi) -> None:
    c.mkdir("c/")
    text = "é€😀\"\\\n" * 300_000  # > 1 MiB: the streamed rendering path
    assert c.put("c/u", {"value": text}).status_code == 201
    assert c.read("c/u")["value"] == text


def test_bad_base64_is_400_and_nothing_stored(c: Cdmi, node: Node) -> None:
    c.mkdir("c/")
    c.put("c/keep", {"value": "kept"})
    before = snapshot_of(node)
    for path in ("c/new", "c/keep"):
        response = c.put(path, {"valuetransferencoding": "base64", "value": "not*base64!"})
        assert response.status_code == 400
        assert "base64" in body(response)["error"]["description"]
    assert snapshot_of(node) == before
    assert c.read("c/keep")["value"] == "kept"


def test_value_ranges_read_and_write(c: Cdmi) -> None:
    c.mkdir("c/")
    c.put("c/r", {"value": "0123456789"})
    part = c.read("c/r?valuerange;value:2-5")
    # a slice is always base64 (it may cut a UTF-8 character), and says so
    assert part == {"valuetransferencoding": "base64", "valuerange": "2-5",
                    "value": base64.b64encode(b"2345").decode()}
    tail = c.read("c/r?value:8-20")
    assert base64.b64decode(tail["value"]) == b"89"
    assert c.get("c/r?value:10-12").status_code == 400
    patch = base64.b64encode(b"XY").decode()
    response = c.put("c/r?value:3-4", {"valuetransferencoding": "base64", "value": patch})
    assert response.status_code == 204
    assert c.request("GET", "c/r").get_data() == b"012XY56789"
    grow = base64.b64encode(b"!").decode()
    c.put("c/r?value:12-12", {"valuetransferencoding": "base64", "value": grow})
    assert c.request("GET", "c/r").get_data() == b"012XY56789\0\0!"
    assert c.read("c/r")["valuetransferencoding"] == "base64"


def test_http_ranges(c: Cdmi) -> None:
    c.mkdir("c/")
    c.request("PUT", "c/f", data=b"abcdefghij", headers={"Content-Type": "text/plain"})
    for header in ("bytes=2-5", "2-5"):
        response = c.request("GET", "c/f", headers={"Range": header})
        assert response.status_code == 206
        assert response.get_data() == b"cdef"
        assert response.headers["Content-Range"] == "bytes 2-5/10"
    response = c.request("GET", "c/f", headers={"Range": "bytes=10-"})
    assert response.status_code == 416 and response.headers["Content-Range"] == "bytes */10"


def test_content_range_partial_write(c: Cdmi) -> None:
    c.mkdir("c/")
    c.request("PUT", "c/f", data=b"abcdefghij", headers={"Content-Type": "text/plain"})
    response = c.request("PUT", "c/f", data=b"XYZ",
                         headers={"Content-Range": "bytes 4-6/10", "Content-Type": "text/plain"})
    assert response.status_code == 204
    assert c.request("GET", "c/f").get_data() == b"abcdXYZhij"
    bad = c.request("PUT", "c/f", data=b"X", headers={"Content-Range": "4-6"})
    assert bad.status_code == 400


def test_plain_http_put_get_keeps_the_media_type(c: Cdmi) -> None:
    c.mkdir("c/")
    response = c.request("PUT", "c/page.html", data=b"<p>hi</p>",
                         headers={"Content-Type": "text/html; charset=utf-8"})
    assert response.status_code == 201 and not response.get_data()
    got = c.request("GET", "c/page.html")
    assert got.headers["Content-Type"] == "text/html; charset=utf-8"
    doc = c.read("c/page.html")
    assert doc["mimetype"] == "text/html" and doc["valuetransferencoding"] == "utf-8"
    no_type = c.request("PUT", "c/blob", data=b"\xff\x00")
    assert no_type.status_code == 201
    assert c.read("c/blob")["mimetype"] == "application/octet-stream"
    assert c.request("PUT", "c/page.html", data=b"new").status_code == 204


def test_plain_post_into_a_container(c: Cdmi) -> None:
    c.mkdir("c/")
    response = c.request("POST", "c/", data=b"posted", headers={"Content-Type": "text/plain"})
    assert response.status_code == 201
    location = response.headers["Location"]
    assert c.request("GET", location.replace("http://localhost", "")).get_data() == b"posted"


def test_cdmi_update_replaces_only_given_fields(c: Cdmi) -> None:
    c.mkdir("c/")
    c.put("c/o", {"value": "v1", "metadata": {"a": 1, "b": 2}})
    assert c.put("c/o", {"metadata": {"c": 3}}).status_code == 204
    doc = c.read("c/o")
    assert doc["value"] == "v1" and doc["metadata"]["c"] == 3 and "a" not in doc["metadata"]
    assert c.put("c/o?metadata:a;metadata:c", {"metadata": {"a": 9}}).status_code == 204
    meta = c.read("c/o")["metadata"]
    assert meta["a"] == 9 and "c" not in meta
    assert c.read("c/o?metadata:cdmi_s") == {"metadata": {"cdmi_size": "2"}}


def test_field_selection(c: Cdmi) -> None:
    c.mkdir("c/")
    c.put("c/o", {"value": "v"})
    doc = c.read("c/o?objectID;mimetype")
    assert list(doc) == ["objectID", "mimetype"]


def test_partial_upload_is_processing_until_done(c: Cdmi) -> None:
    c.mkdir("c/")
    c.put("c/p", {"value": "a"})
    c.cdmi("PUT", "c/p", {"value": "ab"}, media=OBJECT, headers={"X-CDMI-Partial": "true"})
    assert c.read("c/p")["completionStatus"] == "Processing"
    c.put("c/p", {"value": "abc"})
    assert c.read("c/p")["completionStatus"] == "Complete"


# --- object IDs -------------------------------------------------------------------------


def test_access_by_id(c: Cdmi) -> None:
    c.mkdir("c/")
    object_id = body(c.put("c/o", {"value": "v"}))["objectID"]
    container_id = c.read("c/")["objectID"]
    assert c.read(f"cdmi_objectid/{object_id}")["value"] == "v"
    assert c.read(f"cdmi_objectid/{object_id.lower()}")["objectName"] == "o"
    assert c.read(f"cdmi_objectid/{container_id}/")["children"] == ["o"]
    assert c.read(f"cdmi_objectid/{container_id}/o")["objectID"] == object_id
    assert c.get(f"cdmi_objectid/{container_id}").status_code == 301
    assert c.put(f"cdmi_objectid/{object_id}", {"value": "w"}).status_code == 204
    assert c.read("c/o")["value"] == "w"
    assert c.request("DELETE", f"cdmi_objectid/{object_id}", headers=VERSION).status_code == 204
    assert c.get("c/o").status_code == 404
    assert c.get(f"cdmi_objectid/{object_id[:-1]}0").status_code == 404


def test_post_makes_an_id_only_object(c: Cdmi) -> None:
    response = c.cdmi("POST", "cdmi_objectid/", {"value": "anon"}, media=OBJECT)
    assert response.status_code == 201
    doc = body(response)
    assert "objectName" not in doc and "parentURI" not in doc
    assert response.headers["Location"].endswith(f"/cdmi/cdmi_objectid/{doc['objectID']}")
    assert c.read(f"cdmi_objectid/{doc['objectID']}")["value"] == "anon"
    c.mkdir("c/")
    moved = c.put("c/named", {"move": f"/cdmi/cdmi_objectid/{doc['objectID']}"})
    assert moved.status_code == 201 and body(moved)["objectID"] == doc["objectID"]
    assert c.read("c/named")["value"] == "anon"


def test_server_made_objects_have_ids_too(c: Cdmi) -> None:
    caps = c.read("cdmi_capabilities/")
    assert c.read(f"cdmi_objectid/{caps['objectID']}/")["capabilities"] == caps["capabilities"]


# --- metadata ---------------------------------------------------------------------------


def test_system_metadata(c: Cdmi, node: Node) -> None:
    c.mkdir("c/")
    c.put("c/o", {"value": "12345"})
    meta = c.read("c/o")["metadata"]
    for name in ("cdmi_ctime", "cdmi_mtime", "cdmi_atime"):
        assert TIME.match(meta[name]), meta[name]
    assert meta["cdmi_ctime"] == meta["cdmi_mtime"]
    assert meta["cdmi_size"] == "5" and meta["cdmi_owner"] == "alice"
    c.put("c/o", {"value": "123"})
    node.nimbo.cdmi.flush()
    meta = c.read("c/o")["metadata"]
    assert meta["cdmi_mcount"] == "1" and int(meta["cdmi_acount"]) >= 1
    assert meta["cdmi_mtime"] > meta["cdmi_ctime"]
    assert meta["cdmi_size"] == "3"


def test_clients_cannot_set_system_metadata(c: Cdmi) -> None:
    c.mkdir("c/")
    c.put("c/o", {"value": "v", "metadata": {"cdmi_size": "999", "cdmi_owner": "eve"}})
    meta = c.read("c/o")["metadata"]
    assert meta["cdmi_size"] == "1" and meta["cdmi_owner"] == "alice"
    response = c.put("c/o2", {"value": "v", "metadata": {"cdmi_mine": "x"}})
    assert response.status_code == 400
    assert "cdmi_" in body(response)["error"]["description"]


# --- ACLs -------------------------------------------------------------------------------


def test_acl_read_grant_lets_read_but_not_write(c: Cdmi) -> None:
    bob = c.as_user("bob")
    c.mkdir("shared/")
    c.put("shared/doc", {"value": "secret"})
    assert bob.get("shared/doc").status_code == 404  # no right at all: absent for bob
    assert c.read("")["children"] == ["shared/"]
    assert bob.read("")["children"] == []  # the root lists only what you may read
    grant = [
        {"acetype": "ALLOW", "identifier": "OWNER@", "aceflags": "0x03", "acemask": "ALL_PERMS"},
        {"acetype": "0x00", "identifier": "bob", "aceflags": "0x00", "acemask": "0x00000009"},
    ]
    assert c.put("shared/doc", {"metadata": {"cdmi_acl": grant}}).status_code == 204
    assert bob.read("shared/doc")["value"] == "secret"
    assert bob.request("GET", "shared/doc").get_data() == b"secret"
    assert bob.put("shared/doc", {"value": "mine"}).status_code == 403
    assert bob.request("PUT", "shared/doc", data=b"mine").status_code == 403
    assert bob.request("DELETE", "shared/doc").status_code == 403
    assert c.read("shared/doc")["value"] == "secret"
    admin = c.as_user("root")
    assert admin.read("shared/doc")["value"] == "secret"


def test_children_inherit_the_containers_acl(c: Cdmi) -> None:
    bob = c.as_user("bob")
    team = [
        {"acetype": "ALLOW", "identifier": "OWNER@", "aceflags": "0x03", "acemask": "ALL_PERMS"},
        {"acetype": "ALLOW", "identifier": "bob", "aceflags": "OBJECT_INHERIT",
         "acemask": "READ_ALL"},
    ]
    c.mkdir("team/", {"metadata": {"cdmi_acl": team}})
    c.put("team/report", {"value": "r"})
    assert bob.read("team/report")["value"] == "r"
    assert bob.put("team/new", {"value": "x"}).status_code == 403


def test_bad_acl_is_400(c: Cdmi) -> None:
    c.mkdir("c/")
    bad = [{"acetype": "MAYBE", "identifier": "bob", "aceflags": "0", "acemask": "0x1"}]
    response = c.put("c/o", {"value": "v", "metadata": {"cdmi_acl": bad}})
    assert response.status_code == 400 and "acetype" in body(response)["error"]["description"]


# --- capabilities -----------------------------------------------------------------------


def test_capabilities_tree_values_are_strings(c: Cdmi) -> None:
    root = c.read("cdmi_capabilities/")
    assert root["children"] == ["container/", "dataobject/", "domain/"]
    assert list(root)[-2:] == ["childrenrange", "children"]
    for child in ["", *root["children"]]:
        caps = c.read(f"cdmi_capabilities/{child}")["capabilities"]
        assert caps and all(isinstance(v, str) for v in caps.values())
    assert c.read("cdmi_capabilities/dataobject/")["capabilities"]["cdmi_read_value_range"] \
        == "true"
    plain = c.request("GET", "cdmi_capabilities/")
    assert plain.status_code == 200 and plain.headers["Content-Type"] == \
        "application/cdmi-capability"


@pytest.mark.parametrize("request_body", [
    {"reference": "/cdmi/x"}, {"serialize": "/cdmi/x"}, {"deserialize": "/cdmi/x"},
])
def test_absent_capabilities_are_400(c: Cdmi, request_body: dict[str, str]) -> None:
    c.mkdir("c/")
    response = c.put("c/o", request_body)
    assert response.status_code == 400
    assert "capability is absent" in body(response)["error"]["description"]


def test_queues_and_domain_writes_are_400(c: Cdmi) -> None:
    assert c.cdmi("PUT", "q", {}, media="application/cdmi-queue").status_code == 400
    assert c.cdmi("PUT", "cdmi_domains/x/", {},
                  media="application/cdmi-domain").status_code == 400


def test_conflicting_operations_are_400(c: Cdmi) -> None:
    c.mkdir("c/")
    response = c.put("c/o", {"value": "v", "copy": "/cdmi/c/x"})
    assert response.status_code == 400 and "at most one" in body(response)["error"]["description"]


def test_domain(c: Cdmi) -> None:
    domain = c.read("cdmi_domains/default/")
    assert domain["objectType"] == "application/cdmi-domain"
    assert domain["metadata"]["cdmi_domain_enabled"] == "true"
    c.mkdir("c/")
    assert c.read("c/")["domainURI"] == "/cdmi/cdmi_domains/default/"
    bad = c.put("c/o", {"value": "v", "domainURI": "/cdmi/cdmi_domains/other/"})
    assert bad.status_code == 400


# --- copy, move, snapshots --------------------------------------------------------------


def test_copy_object_and_container(c: Cdmi) -> None:
    c.mkdir("a/")
    original = body(c.put("a/o", {"value": "v", "metadata": {"k": "v"}}))
    copied = c.put("a/o2", {"copy": "/cdmi/a/o"})
    assert copied.status_code == 201
    assert body(copied)["objectID"] != original["objectID"]
    assert c.read("a/o2")["value"] == "v" and c.read("a/o2")["metadata"]["k"] == "v"
    c.put("a/o2", {"value": "changed"})
    assert c.read("a/o")["value"] == "v"
    tree = c.cdmi("PUT", "b/", {"copy": "/cdmi/a/"}, media=CONTAINER)
    assert tree.status_code == 201
    assert c.read("b/")["children"] == ["o", "o2"]
    assert c.read("b/o")["objectID"] != original["objectID"]
    missing = c.put("a/o3", {"copy": "/cdmi/a/none"})
    assert missing.status_code == 400
    into_itself = c.cdmi("PUT", "a/inner/", {"copy": "/cdmi/a/"}, media=CONTAINER)
    assert into_itself.status_code == 400
    assert "a container cannot be copied into itself" in into_itself.get_data(as_text=True)
    assert c.get("a/inner/").status_code == 404


def test_move_keeps_the_id(c: Cdmi) -> None:
    c.mkdir("a/")
    c.mkdir("a/sub/")
    moved_id = body(c.put("a/sub/o", {"value": "v"}))["objectID"]
    sub_id = c.read("a/sub/")["objectID"]
    c.mkdir("b/")
    response = c.cdmi("PUT", "b/sub2/", {"move": "/cdmi/a/sub/"}, media=CONTAINER)
    assert response.status_code == 201
    assert c.get("a/sub/").status_code == 404
    assert c.read("b/sub2/")["objectID"] == sub_id
    assert c.read("b/sub2/o")["objectID"] == moved_id
    assert c.read(f"cdmi_objectid/{moved_id}")["parentURI"] == "/cdmi/b/sub2/"
    into_itself = c.cdmi("PUT", "b/sub2/x/", {"move": "/cdmi/b/sub2/"}, media=CONTAINER)
    assert into_itself.status_code == 400
    assert "a container cannot be moved into itself" in into_itself.get_data(as_text=True)


def test_snapshots(c: Cdmi) -> None:
    c.mkdir("c/")
    c.put("c/o", {"value": "before"})
    response = c.cdmi("PUT", "c/", {"snapshot": "s1"}, media=CONTAINER)
    assert response.status_code == 204
    c.put("c/o", {"value": "after"})
    assert c.read("c/cdmi_snapshots/s1/o")["value"] == "before"
    doc = c.read("c/")
    assert doc["snapshots"] == ["/cdmi/c/cdmi_snapshots/s1/"]
    assert doc["children"] == ["o"]
    assert c.put("c/cdmi_snapshots/s1/o", {"value": "x"}).status_code == 400
    c.cdmi("PUT", "c/", {"snapshot": "s1"}, media=CONTAINER)  # same name: replaced
    assert c.read("c/cdmi_snapshots/s1/o")["value"] == "after"
    assert c.request("DELETE", "c/cdmi_snapshots/s1/", headers=VERSION).status_code == 204
    restored = c.put("c/o", {"copy": "/cdmi/c/o"})
    assert restored.status_code == 204


# --- bad input changes nothing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "data", "headers", "status"),
    [
        ("PUT", "c/x/", "{}", {"Content-Type": OBJECT}, 400),
        ("PUT", "c/x", "{not json", {"Content-Type": OBJECT}, 400),
        ("PUT", "c/x", "[1, 2]", {"Content-Type": OBJECT}, 400),
        ("PUT", "c/x", '{"value": 5}', {"Content-Type": OBJECT}, 400),
        ("PUT", "c/x", '{"value": "v"}',
         {"Content-Type": OBJECT, "X-CDMI-Specification-Version": "3.0"}, 400),
        ("PUT", "c/x", json.dumps({"value": "v", "metadata": {f"k{i}": "v" * 2000
                                                              for i in range(40)}}),
         {"Content-Type": OBJECT}, 400),
        ("PUT", "c/x", json.dumps({"metadata": {"big": "v" * 5000}}), {"Content-Type": OBJECT},
         400),
        ("PUT", "c/../x", '{"value": "v"}', {"Content-Type": OBJECT}, 400),
        ("PUT", "c/a%2Fb", '{"value": "v"}', {"Content-Type": OBJECT}, 400),
        ("PUT", "c/a%3Fb", b"raw", {}, 400),
        ("PUT", "c/x", b"data", {"X-CDMI-Specification-Version": "1.1.1"}, 400),
        ("PUT", "c/x", '{"value": "v"}', {"Content-Type": "application/cdmi-capability"}, 400),
        ("POST", "c/", '{"value": "v"}', {"Content-Type": CONTAINER}, 400),
    ],
)
def test_bad_requests_change_nothing(
    c: Cdmi, node: Node, method: str, path: str, data: Any, headers: dict[str, str],
    status: int,
) -> None:
    c.mkdir("c/")
    c.put("c/keep", {"value": "kept"})
    before = snapshot_of(node)
    response = c.request(method, path, data=data,
                         headers={"X-CDMI-Specification-Version": "1.1.1", **headers})
    assert response.status_code == status, response.get_data(as_text=True)
    assert body(response)["error"]["description"]
    assert snapshot_of(node) == before


def test_huge_json_body_is_413(make_node: Any) -> None:
    node = make_node(cdmi_max_json_bytes=1024)
    c = Cdmi(node)
    c.mkdir("c/")
    response = c.put("c/x", {"value": "v" * 4096})
    assert response.status_code == 413
    assert c.get("c/x").status_code == 404
    assert c.request("PUT", "c/raw", data=b"r" * 4096).status_code == 201  # plain: no limit


# --- a new object's value is published before the write transaction ----------------------


def test_a_create_refused_in_its_transaction_leaves_no_value_behind(
    c: Cdmi, node: Node
) -> None:
    c.mkdir("mine/")
    before = snapshot_of(node)

    refused = c.as_user("bob").put("mine/intruder", {"value": "published ahead, then refused"})

    assert refused.status_code in (403, 404)
    assert snapshot_of(node) == before


def test_a_create_overtaken_by_another_is_409_and_leaves_only_the_winner(
    c: Cdmi, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    c.mkdir("race/")
    service = node.nimbo.cdmi
    ahead = service._publish_ahead

    def overtaken(*args: Any) -> str | None:
        fresh = ahead(*args)  # our value is out under a new ID; then another request wins
        monkeypatch.setattr(service, "_publish_ahead", ahead)
        assert c.put("race/obj", {"value": "winner"}).status_code == 201
        return fresh

    monkeypatch.setattr(service, "_publish_ahead", overtaken)
    before = snapshot_of(node)

    response = c.put("race/obj", {"value": "loser"})

    assert response.status_code == 409
    assert "was created by someone else just now" in body(response)["error"]["description"]
    assert c.read("race/obj")["value"] == "winner"
    count, files = snapshot_of(node)
    assert count == before[0] + 1 and len(files) == len(before[1]) + 1  # the winner's alone
