"""The plain-HTTP side of CDMI (no CDMI media type, no version header) with ``requests``."""

from __future__ import annotations

import base64
import hashlib
import http.client
import time
from collections.abc import Iterator

import pytest
import requests

from tests.cdmi_live.client import CdmiClient, document
from tests.cdmi_live.conftest import HOST, LiveNode

pytestmark = pytest.mark.redis

TIMEOUT = 60.0
BIG = 20 * 1024 * 1024
CHUNK = 1024 * 1024


@pytest.fixture
def base(live_node: LiveNode, workdir: str) -> str:
    """URL of a fresh container of the administrator's, with its trailing slash."""
    return live_node.cdmi_url + workdir


def _put(http: requests.Session, url: str, data: bytes, content_type: str) -> requests.Response:
    return http.put(url, data=data, headers={"Content-Type": content_type}, timeout=TIMEOUT)


@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.nimbo.live-test", "text/plain; charset=utf-8", "image/png"],
)
def test_put_then_get_gives_the_same_bytes_and_type(
    admin_http: requests.Session, base: str, content_type: str
) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) if content_type == "image/png" else b"hello"
    created = _put(admin_http, base + "file", data, content_type)
    assert created.status_code == 201, created.text
    reply = admin_http.get(base + "file", timeout=TIMEOUT)
    assert reply.status_code == 200
    assert reply.content == data
    assert reply.headers["Content-Type"] == content_type
    assert reply.headers["Content-Length"] == str(len(data))


@pytest.mark.parametrize("range_header", ["bytes=2-5", "2-5"])
def test_range_read(admin_http: requests.Session, base: str, range_header: str) -> None:
    data = b"0123456789"
    assert _put(admin_http, base + "r", data, "application/octet-stream").status_code == 201
    reply = admin_http.get(base + "r", headers={"Range": range_header}, timeout=TIMEOUT)
    assert reply.status_code == 206, reply.text
    assert reply.headers["Content-Range"] == "bytes 2-5/10"
    assert reply.content == b"2345"


def test_unsatisfiable_range_is_416(admin_http: requests.Session, base: str) -> None:
    assert _put(admin_http, base + "r", b"0123456789", "text/plain").status_code == 201
    reply = admin_http.get(base + "r", headers={"Range": "bytes=10-20"}, timeout=TIMEOUT)
    assert reply.status_code == 416
    assert reply.headers["Content-Range"] == "bytes */10"


def test_partial_put_with_content_range(admin_http: requests.Session, base: str) -> None:
    assert (
        _put(admin_http, base + "p", b"0123456789", "application/octet-stream").status_code == 201
    )
    reply = admin_http.put(
        base + "p",
        data=b"AB",
        headers={"Content-Range": "bytes 2-3/10", "Content-Type": "application/octet-stream"},
        timeout=TIMEOUT,
    )
    assert reply.status_code == 204, reply.text
    assert admin_http.get(base + "p", timeout=TIMEOUT).content == b"01AB456789"


def test_put_of_a_slash_url_makes_a_container(
    admin_http: requests.Session, cdmi: CdmiClient, base: str, workdir: str
) -> None:
    reply = admin_http.put(base + "dir/", timeout=TIMEOUT)
    assert reply.status_code == 201, reply.text
    doc = cdmi.read(workdir + "dir/")
    assert doc["objectType"] == "application/cdmi-container"
    assert doc["objectName"] == "dir/"
    assert "dir/" in cdmi.read(workdir, "children")["children"]


def test_post_into_a_container(admin_http: requests.Session, base: str) -> None:
    reply = admin_http.post(
        base, data=b"posted bytes", headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
    )
    assert reply.status_code == 201, reply.text
    location = reply.headers["Location"]
    assert location.startswith(base)
    back = admin_http.get(location, timeout=TIMEOUT)
    assert back.status_code == 200
    assert back.content == b"posted bytes"
    assert back.headers["Content-Type"] == "text/csv"


def test_delete_then_404(admin_http: requests.Session, base: str) -> None:
    assert _put(admin_http, base + "d", b"bye", "text/plain").status_code == 201
    reply = admin_http.delete(base + "d", timeout=TIMEOUT)
    assert reply.status_code == 204, reply.text
    assert admin_http.get(base + "d", timeout=TIMEOUT).status_code == 404
    assert admin_http.delete(base + "d", timeout=TIMEOUT).status_code == 404


def _pattern(index: int) -> bytes:
    """1 MiB of deterministic, non-repeating-looking bytes for chunk ``index``."""
    seed = hashlib.sha256(index.to_bytes(4, "big")).digest()
    return (seed * (CHUNK // len(seed) + 1))[:CHUNK]


def test_20_mib_streamed_both_ways(
    admin_http: requests.Session, cdmi: CdmiClient, base: str, workdir: str
) -> None:
    sent = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for index in range(BIG // CHUNK):
            chunk = _pattern(index)
            sent.update(chunk)
            yield chunk

    created = admin_http.put(
        base + "big.bin",
        data=body(),  # a generator: requests sends it chunked, never whole in memory
        headers={"Content-Type": "application/octet-stream"},
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text

    received = hashlib.sha256()
    size = 0
    with admin_http.get(base + "big.bin", stream=True, timeout=TIMEOUT) as reply:
        assert reply.status_code == 200
        assert reply.headers["Content-Length"] == str(BIG)
        for chunk in reply.iter_content(CHUNK):
            received.update(chunk)
            size += len(chunk)
    assert size == BIG
    assert received.hexdigest() == sent.hexdigest()
    doc = cdmi.read(workdir + "big.bin", "metadata:cdmi_size")
    assert doc["metadata"] == {"cdmi_size": str(BIG)}


def test_plain_get_of_a_container_reads_as_cdmi(admin_http: requests.Session, base: str) -> None:
    reply = admin_http.get(base, timeout=TIMEOUT)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/cdmi-container"
    assert document(reply)["objectType"] == "application/cdmi-container"


def test_connection_usable_after_a_refused_upload(
    live_node: LiveNode, admin_http: requests.Session, base: str, workdir: str
) -> None:
    """An upload refused before its body was read (missing parent: 404) is answered with
    ``Connection: keep-alive``; the next request on that connection must then be served. (A
    server that will not read the body says ``Connection: close`` instead, RFC 9112 §9.6;
    http.client then opens a new connection by itself and this passes too.)"""
    assert _put(admin_http, base + "there.txt", b"still here", "text/plain").status_code == 201
    token = base64.b64encode(f"{live_node.admin.name}:{live_node.admin.password}".encode())
    auth = {"Authorization": "Basic " + token.decode()}
    conn = http.client.HTTPConnection(HOST, live_node.port, timeout=30)
    try:
        conn.request(
            "PUT",
            f"/cdmi/{workdir}missing/upload.bin",
            body=b"\0" * (2 * CHUNK),
            headers={**auth, "Content-Type": "application/octet-stream"},
        )
        first = conn.getresponse()
        first.read()
        assert first.status == 404
        said = first.getheader("Connection")
        time.sleep(0.5)  # the client's next request comes a moment later
        try:
            conn.request("GET", f"/cdmi/{workdir}there.txt", headers=auth)
            second = conn.getresponse()
            outcome: object = (second.status, second.read())
        except (OSError, http.client.HTTPException) as exc:
            outcome = exc
        assert outcome == (200, b"still here"), (
            f"the refused upload was answered with 'Connection: {said}', but the next request "
            f"on that connection got {outcome!r}"
        )
    finally:
        conn.close()
