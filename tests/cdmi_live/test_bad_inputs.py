"""Bad requests get a clear 4xx and change nothing: neither the blob directory (every file,
with its size, staging included) nor the number of rows in ``cdmi_objects``.

Paths with ``..`` or an encoded ``/`` go out through ``http.client`` so that no client library
normalises them before the server sees them. Plain-HTTP bodies (1 MiB, so that a staged value
would show) go the same way, each on a connection of its own that the request closes: whether
the server keeps a connection usable after refusing an upload it did not read is
test_plain_http.py's ``test_connection_usable_after_a_refused_upload``, not a question here.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.cdmi_live.client import CONTAINER, OBJECT, VERSION_HEADER, CdmiClient, value_bytes
from tests.cdmi_live.conftest import HOST, LiveNode

pytestmark = pytest.mark.redis

BODY = bytes(range(256)) * 4096  # 1 MiB: big enough that a staged value would show


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def error(self) -> str:
        """The error description of a CDMI error body (``{"error": {"description": …}}``)."""
        parsed = json.loads(self.body)
        description = parsed["error"]["description"]
        assert isinstance(description, str)
        return description


def _reply(response: requests.Response) -> Reply:
    return Reply(response.status_code, response.content)


def raw(
    node: LiveNode,
    method: str,
    raw_path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A request whose path goes on the wire exactly as given, on a connection of its own
    (``Connection: close``)."""
    token = base64.b64encode(f"{node.admin.name}:{node.admin.password}".encode()).decode()
    conn = http.client.HTTPConnection(HOST, node.port, timeout=30)
    try:
        conn.putrequest(method, raw_path, skip_accept_encoding=True)
        for name, value in {
            "Authorization": f"Basic {token}",
            "Content-Length": str(len(body)),
            "Connection": "close",
            **(headers or {}),
        }.items():
            conn.putheader(name, value)
        # answered (and closed) before the whole body went out: read the answer all the same
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, response.read())
    finally:
        conn.close()


def refused(node: LiveNode, send: Callable[[], Reply], status: int) -> Reply:
    """Send; the answer is ``status`` with a CDMI error body, and the store is unchanged."""
    before = node.state()
    reply = send()
    after = node.state()
    assert reply.status == status, reply.body[:500]
    assert reply.error().strip(), "the error has no description"
    assert after.rows == before.rows, "rows of cdmi_objects changed"
    assert after.blobs == before.blobs, "the blob directory changed"
    return reply


def _cdmi_put(
    cdmi: CdmiClient, path: str, body: Mapping[str, Any] | bytes, media: str = OBJECT, **kw: Any
) -> Callable[[], Reply]:
    return lambda: _reply(cdmi.request("PUT", path, body, content_type=media, **kw))


def _absent(cdmi: CdmiClient, path: str) -> None:
    assert cdmi.get(path).status_code == 404, f"{path} exists after a refused request"


# --- wrong content type for the target ---------------------------------------------------


def test_cdmi_object_put_to_a_container_url(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str
) -> None:
    refused(live_node, _cdmi_put(cdmi, workdir + "newdir/", {"value": "x"}), 400)
    _absent(cdmi, workdir + "newdir/")


def test_cdmi_container_put_without_slash(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str
) -> None:
    refused(live_node, _cdmi_put(cdmi, workdir + "nodir", {}, CONTAINER), 400)
    _absent(cdmi, workdir + "nodir")


def test_plain_body_to_a_container_url(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    path = f"/cdmi/{workdir}withbody/"
    headers = {"Content-Type": "text/plain"}
    refused(live_node, lambda: raw(live_node, "PUT", path, BODY, headers), 400)
    _absent(cdmi, workdir + "withbody/")


# --- bad JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "media", "body"),
    [
        ("cut.txt", OBJECT, b'{"value": "x",'),
        ("array.txt", OBJECT, b'["value", "x"]'),
        ("latin1.txt", OBJECT, b'{"value": "\xe9"}'),
        ("cut/", CONTAINER, b'{"metadata": {'),
    ],
)
def test_bad_json(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str, name: str, media: str, body: bytes
) -> None:
    refused(live_node, _cdmi_put(cdmi, workdir + name, body, media), 400)
    _absent(cdmi, workdir + name)


def test_bad_json_update_leaves_the_object(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str
) -> None:
    assert cdmi.create_object(workdir + "keep.txt", "kept").status_code == 201
    refused(live_node, _cdmi_put(cdmi, workdir + "keep.txt", b'{"value": "lost'), 400)
    assert value_bytes(cdmi.read(workdir + "keep.txt", "value")) == b"kept"


# --- bad base64 --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["not base64 at all!", "QUJD=RA==", "QUJD\u00e9RA=="])
def test_bad_base64_create(live_node: LiveNode, cdmi: CdmiClient, workdir: str, value: str) -> None:
    body = {"valuetransferencoding": "base64", "value": value}
    refused(live_node, _cdmi_put(cdmi, workdir + "b64", body), 400)
    _absent(cdmi, workdir + "b64")


def test_bad_base64_update_leaves_the_value(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str
) -> None:
    assert cdmi.create_object(workdir + "bin", b"\x00\x01\x02\x03").status_code == 201
    body = {"valuetransferencoding": "base64", "value": "%%%%"}
    refused(live_node, _cdmi_put(cdmi, workdir + "bin", body), 400)
    assert value_bytes(cdmi.read(workdir + "bin", "value")) == b"\x00\x01\x02\x03"


# --- unknown version ---------------------------------------------------------------------


def test_unknown_version_on_create(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    reply = refused(
        live_node, _cdmi_put(cdmi, workdir + "v.txt", {"value": "x"}, version="9.9"), 400
    )
    assert "9.9" in reply.error()
    _absent(cdmi, workdir + "v.txt")


def test_unknown_version_on_plain_put(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    path = f"/cdmi/{workdir}v.bin"
    headers = {"Content-Type": "application/octet-stream", VERSION_HEADER: "3.0"}
    refused(live_node, lambda: raw(live_node, "PUT", path, BODY, headers), 400)
    _absent(cdmi, workdir + "v.bin")


# --- metadata ----------------------------------------------------------------------------


def _huge() -> dict[str, str]:
    """20 items of ~3.5 KB: each under cdmi_metadata_maxsize (4096), 70 KB in total (over
    cdmi_metadata_maxtotalsize, 65536)."""
    return {f"item{i:02d}": "m" * 3500 for i in range(20)}


def test_huge_metadata_create(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    body = {"value": "x", "metadata": _huge()}
    refused(live_node, _cdmi_put(cdmi, workdir + "meta.txt", body), 400)
    _absent(cdmi, workdir + "meta.txt")


def test_huge_metadata_container(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    body = {"metadata": _huge()}
    refused(live_node, _cdmi_put(cdmi, workdir + "meta/", body, CONTAINER), 400)
    _absent(cdmi, workdir + "meta/")


def test_huge_metadata_update(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    assert cdmi.create_object(workdir + "m.txt", "x", metadata={"a": "1"}).status_code == 201
    refused(live_node, _cdmi_put(cdmi, workdir + "m.txt", {"metadata": _huge()}), 400)
    assert cdmi.read(workdir + "m.txt", "metadata:a") == {"metadata": {"a": "1"}}


@pytest.mark.parametrize("name", ["cdmi_colour", "cdmi_size_extra", "cdmi_"])
def test_cdmi_prefixed_user_metadata(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str, name: str
) -> None:
    body = {"value": "x", "metadata": {name: "blue"}}
    refused(live_node, _cdmi_put(cdmi, workdir + "c.txt", body), 400)
    _absent(cdmi, workdir + "c.txt")
    refused(live_node, _cdmi_put(cdmi, workdir + "c/", {"metadata": {name: "x"}}, CONTAINER), 400)
    _absent(cdmi, workdir + "c/")


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "below",
    ["{w}../escape.txt", "{w}sub/../x.txt", "../cdmi/{w}x.txt", "{w}%2e%2e/escape.txt", "{w}.."],
)
@pytest.mark.parametrize("mode", ["plain", "cdmi"])
def test_dot_dot_in_the_path(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str, below: str, mode: str
) -> None:
    raw_path = "/cdmi/" + below.format(w=workdir)
    if mode == "plain":
        headers, body = {"Content-Type": "application/octet-stream"}, BODY
    else:
        headers = {"Content-Type": OBJECT, VERSION_HEADER: "1.1.1"}
        body = json.dumps({"value": "x"}).encode()
    refused(live_node, lambda: raw(live_node, "PUT", raw_path, body, headers), 400)
    for leftover in ("escape.txt", "x.txt", "cdmi/"):
        _absent(cdmi, leftover)


@pytest.mark.parametrize("encoded", ["a%2Fb", "a%2fb", "%2Fetc", "sub%2F"])
@pytest.mark.parametrize("mode", ["plain", "cdmi"])
def test_encoded_slash_in_a_name(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str, encoded: str, mode: str
) -> None:
    raw_path = f"/cdmi/{workdir}{encoded}"
    if mode == "plain":
        headers, body = {"Content-Type": "application/octet-stream"}, BODY
    else:
        headers = {"Content-Type": OBJECT, VERSION_HEADER: "1.1.1"}
        body = json.dumps({"value": "x"}).encode()
    refused(live_node, lambda: raw(live_node, "PUT", raw_path, body, headers), 400)
    assert cdmi.read(workdir, "children") == {"children": []}


def test_reserved_cdmi_name(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    refused(live_node, _cdmi_put(cdmi, workdir + "cdmi_mine", {"value": "x"}), 400)
    refused(live_node, _cdmi_put(cdmi, workdir + "cdmi_snapshots/", {}, CONTAINER), 400)
    assert cdmi.read(workdir, "children") == {"children": []}


# --- missing parent ----------------------------------------------------------------------


def test_missing_parent_cdmi(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    refused(live_node, _cdmi_put(cdmi, workdir + "nope/child.txt", {"value": "x"}), 404)
    refused(live_node, _cdmi_put(cdmi, workdir + "nope/sub/", {}, CONTAINER), 404)
    _absent(cdmi, workdir + "nope/")


@pytest.mark.parametrize(
    ("method", "below", "body"),
    [("PUT", "nope/child.bin", BODY), ("POST", "nope/", BODY), ("PUT", "nope/sub/", b"")],
)
def test_missing_parent_plain(
    live_node: LiveNode, cdmi: CdmiClient, workdir: str, method: str, below: str, body: bytes
) -> None:
    path = f"/cdmi/{workdir}{below}"
    headers = {"Content-Type": "application/octet-stream"} if body else {}
    refused(live_node, lambda: raw(live_node, method, path, body, headers), 404)
    _absent(cdmi, workdir + "nope/")


def test_the_state_check_sees_a_write(live_node: LiveNode, cdmi: CdmiClient, workdir: str) -> None:
    """The comparison above is not blind: an accepted upload adds a row and a blob file of
    the value's size."""
    before = live_node.state()
    path = f"/cdmi/{workdir}accepted.bin"
    reply = raw(live_node, "PUT", path, BODY, {"Content-Type": "application/octet-stream"})
    assert reply.status == 201
    after = live_node.state()
    assert after.rows == before.rows + 1
    added = set(after.blobs) - set(before.blobs)
    assert [size for _, size in added] == [len(BODY)]
