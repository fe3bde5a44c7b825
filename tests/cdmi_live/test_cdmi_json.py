"""The CDMI JSON side, through tests/cdmi_live/client.py against the running node."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.cdmi_live.client import (
    CONTAINER,
    OBJECT,
    VERSION_HEADER,
    CdmiClient,
    ace,
    document,
    value_bytes,
)
from tests.cdmi_live.conftest import LiveNode

pytestmark = pytest.mark.redis

OBJECT_FIELDS = [
    "objectType",
    "objectID",
    "objectName",
    "parentURI",
    "parentID",
    "domainURI",
    "capabilitiesURI",
    "completionStatus",
    "mimetype",
    "metadata",
    "valuetransferencoding",
    "valuerange",
    "value",
]
READ_ALL = 0x09  # READ_OBJECT | READ_METADATA


def test_create_container(cdmi: CdmiClient, workdir: str) -> None:
    reply = cdmi.create_container(workdir + "sub/", {"colour": "blue"})
    assert reply.status_code == 201, reply.text
    assert reply.headers["Content-Type"] == CONTAINER
    assert reply.headers[VERSION_HEADER] == "1.1.1"
    doc = document(reply)
    assert doc["objectType"] == CONTAINER
    assert doc["objectName"] == "sub/"
    assert doc["parentURI"] == "/cdmi/" + workdir
    assert doc["metadata"]["colour"] == "blue"
    assert list(doc)[-2:] == ["childrenrange", "children"]
    assert doc["childrenrange"] == ""
    assert doc["children"] == []
    parent = cdmi.read(workdir)
    assert doc["parentID"] == parent["objectID"]
    assert "sub/" in parent["children"]


def test_utf8_object_fields_in_spec_order(cdmi: CdmiClient, workdir: str) -> None:
    text = "Grüße, CDMI ✓"
    reply = cdmi.create_object(
        workdir + "hello.txt", text, mimetype="text/plain", metadata={"colour": "red"}
    )
    assert reply.status_code == 201, reply.text
    assert reply.headers["Content-Type"] == OBJECT
    created = document(reply)
    assert "value" not in created
    assert created["objectName"] == "hello.txt"
    assert created["completionStatus"] == "Complete"

    doc = cdmi.read(workdir + "hello.txt")
    assert list(doc) == OBJECT_FIELDS
    assert doc["objectID"] == created["objectID"]
    assert doc["objectType"] == OBJECT
    assert doc["parentURI"] == "/cdmi/" + workdir
    assert doc["parentID"] == cdmi.read(workdir, "objectID")["objectID"]
    assert doc["domainURI"] == "/cdmi/cdmi_domains/default/"
    assert doc["capabilitiesURI"] == "/cdmi/cdmi_capabilities/dataobject/"
    assert doc["mimetype"] == "text/plain"
    assert doc["metadata"]["colour"] == "red"
    assert doc["metadata"]["cdmi_size"] == str(len(text.encode()))
    assert doc["metadata"]["cdmi_owner"] == "admin"
    assert doc["valuetransferencoding"] == "utf-8"
    assert doc["valuerange"] == f"0-{len(text.encode()) - 1}"
    assert doc["value"] == text


def test_base64_object(cdmi: CdmiClient, workdir: str) -> None:
    data = b"\x00\xff\xfe binary \x80\x81"
    reply = cdmi.create_object(workdir + "blob", data, mimetype="application/octet-stream")
    assert reply.status_code == 201, reply.text
    doc = cdmi.read(workdir + "blob")
    assert list(doc) == OBJECT_FIELDS
    assert doc["valuetransferencoding"] == "base64"
    assert doc["valuerange"] == f"0-{len(data) - 1}"
    assert value_bytes(doc) == data
    plain = cdmi.session.get(cdmi.url(workdir + "blob"), timeout=30)
    assert plain.content == data
    assert plain.headers["Content-Type"] == "application/octet-stream"


def test_value_range_selector(cdmi: CdmiClient, workdir: str) -> None:
    assert cdmi.create_object(workdir + "v.txt", "abcdefgh").status_code == 201
    doc = cdmi.read(workdir + "v.txt", "value:0-3")
    assert doc["value"] is not None
    assert doc["valuerange"] == "0-3"
    assert value_bytes(doc) == b"abcd"
    assert list(doc)[-1] == "value"
    assert doc["valuetransferencoding"] == "base64"
    assert base64.b64decode(doc["value"]) == b"abcd"


def test_metadata_prefix_selector(cdmi: CdmiClient, workdir: str) -> None:
    reply = cdmi.create_object(workdir + "m", "x", metadata={"colour": "red", "size": "L"})
    assert reply.status_code == 201, reply.text
    doc = cdmi.read(workdir + "m", "metadata:cdmi_")
    assert list(doc) == ["metadata"]
    assert doc["metadata"]
    assert all(name.startswith("cdmi_") for name in doc["metadata"])
    assert {"cdmi_size", "cdmi_owner", "cdmi_ctime", "cdmi_mtime"} <= set(doc["metadata"])
    both = cdmi.read(workdir + "m", "objectID;metadata:col")
    assert list(both) == ["objectID", "metadata"]
    assert both["metadata"] == {"colour": "red"}


def test_children_range_selector(cdmi: CdmiClient, workdir: str) -> None:
    for name in ("a", "b", "c"):
        assert cdmi.create_object(workdir + name, name).status_code == 201
    assert cdmi.create_container(workdir + "d/").status_code == 201
    doc = cdmi.read(workdir, "childrenrange;children:0-1")
    assert list(doc) == ["childrenrange", "children"]
    assert doc["childrenrange"] == "0-1"
    assert len(doc["children"]) == 2
    everything = cdmi.read(workdir, "childrenrange;children")
    assert everything["childrenrange"] == "0-3"
    assert sorted(everything["children"]) == ["a", "b", "c", "d/"]
    assert everything["children"][:2] == doc["children"]
    tail = cdmi.read(workdir, "childrenrange;children:2-3")
    assert tail["childrenrange"] == "2-3"
    assert tail["children"] == everything["children"][2:]


def test_selected_fields_only(cdmi: CdmiClient, workdir: str) -> None:
    """A field list returns those fields only (§8.4.8: ``?valuerange;value`` returns
    ``valuerange`` and ``value``). ``valuetransferencoding`` may come with ``value`` (a
    client needs it to decode the value), ``valuerange`` only when asked for."""
    assert cdmi.create_object(workdir + "s.txt", "selected").status_code == 201
    both = cdmi.read(workdir + "s.txt", "valuerange;value")
    assert set(both) - {"valuetransferencoding"} == {"valuerange", "value"}
    assert both["valuerange"] == "0-7"
    assert value_bytes(both) == b"selected"
    only = cdmi.read(workdir + "s.txt", "value")
    assert set(only) - {"valuetransferencoding"} == {"value"}
    fields = cdmi.read(workdir + "s.txt", "objectName;mimetype")
    assert fields == {"objectName": "s.txt", "mimetype": "text/plain"}


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("1.1.1", "1.1.1"), ("1.0.2", "1.0.2"), ("1.1, 2.0", "1.1"), ("2.0, 1.1.1, 1.0.2", "1.1.1")],
)
def test_version_negotiation(cdmi: CdmiClient, workdir: str, offered: str, answered: str) -> None:
    reply = cdmi.request("GET", workdir, version=offered, query="objectType")
    assert reply.status_code == 200, reply.text
    assert reply.headers[VERSION_HEADER] == answered
    assert document(reply) == {"objectType": CONTAINER}


def test_unknown_version_is_400(cdmi: CdmiClient, workdir: str) -> None:
    reply = cdmi.request("GET", workdir, version="9.9")
    assert reply.status_code == 400
    assert "9.9" in document(reply)["error"]["description"]


def test_access_by_object_id(cdmi: CdmiClient, workdir: str) -> None:
    created = document(cdmi.create_object(workdir + "byid.txt", "first"))
    object_id = created["objectID"]
    path = cdmi.by_id(object_id)

    doc = cdmi.read(path)
    assert doc["objectID"] == object_id
    assert doc["value"] == "first"
    assert doc["objectName"] == "byid.txt"

    updated = cdmi.update(path, {"value": "second", "metadata": {"via": "id"}})
    assert updated.status_code == 204, updated.text
    by_path = cdmi.read(workdir + "byid.txt")
    assert by_path["value"] == "second"
    assert by_path["metadata"]["via"] == "id"
    lower = cdmi.read(cdmi.by_id(object_id.lower()), "objectID")
    assert lower["objectID"] == object_id

    deleted = cdmi.delete(path)
    assert deleted.status_code == 204, deleted.text
    assert cdmi.get(path).status_code == 404
    assert cdmi.get(workdir + "byid.txt").status_code == 404


def test_container_by_object_id(cdmi: CdmiClient, workdir: str) -> None:
    container_id = cdmi.read(workdir, "objectID")["objectID"]
    assert cdmi.create_object(workdir + "inside", "x").status_code == 201
    doc = cdmi.read(cdmi.by_id(container_id) + "/", "objectID;children")
    assert doc == {"objectID": container_id, "children": ["inside"]}
    child = cdmi.read(cdmi.by_id(container_id, "inside"), "objectName;value")
    assert child["objectName"] == "inside"
    assert value_bytes(child) == b"x"


def test_second_user_needs_an_ace(
    live_node: LiveNode,
    cdmi: CdmiClient,
    user_cdmi: CdmiClient,
    user_http: requests.Session,
    workdir: str,
) -> None:
    path = workdir + "private.txt"
    assert cdmi.create_object(path, "secret").status_code == 201
    user = live_node.user.name

    # no right at all: the object does not exist for the user (404, as for a missing one)
    assert user_cdmi.get(path).status_code == 404
    assert user_http.get(user_cdmi.url(path), timeout=30).status_code == 404

    acl = cdmi.read(path, "metadata:cdmi_acl")["metadata"]["cdmi_acl"]
    granted = [*acl, ace(user, READ_ALL)]
    assert granted[-1] == {
        "acetype": "0x00",
        "identifier": user,
        "aceflags": "0x00",
        "acemask": "0x00000009",
    }
    reply = cdmi.update(path, {"metadata": {"cdmi_acl": granted}})
    assert reply.status_code == 204, reply.text

    doc = user_cdmi.read(path)
    assert doc["value"] == "secret"
    plain = user_http.get(user_cdmi.url(path), timeout=30)
    assert plain.status_code == 200
    assert plain.content == b"secret"

    assert user_cdmi.update(path, {"value": "mine now"}).status_code == 403
    plain_write = user_http.put(
        user_cdmi.url(path), data=b"mine", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert plain_write.status_code == 403
    assert user_cdmi.delete(path).status_code == 403
    assert value_bytes(cdmi.read(path, "value")) == b"secret"
