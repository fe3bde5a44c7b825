"""The plain-HTTP side of CDMI, and a CDMI read, with the ``curl`` command.

The credentials go to curl as a config file on standard input (``-K -``), not on its command
line. curl is installed by ``scripts/setup``; without it these tests skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.cdmi_live.conftest import LiveNode

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]

STATUS_MARK = "\n--curl-status:"


@dataclass(frozen=True)
class CurlResult:
    status: int
    headers: dict[str, str]  # lower-case names, last value wins
    body: bytes


def curl(node: LiveNode, *args: str, user: str = "admin") -> CurlResult:
    who = node.admin if user == "admin" else node.user
    config = f'user = "{who.name}:{who.password}"\n'
    completed = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--include",
            "-K",
            "-",
            "--write-out",
            STATUS_MARK + "%{http_code}",
            *args,
        ],
        input=config.encode(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    out, _, status = completed.stdout.rpartition(STATUS_MARK.encode())
    head, _, body = out.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):  # "Expect: 100-continue" on uploads
        head, _, body = body.partition(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResult(int(status), headers, body)


@pytest.fixture
def base(live_node: LiveNode, workdir: str) -> str:
    return live_node.cdmi_url + workdir


def test_upload_with_dash_t(
    live_node: LiveNode, admin_http: requests.Session, base: str, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 64
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    result = curl(live_node, "-T", str(source), base + "upload.bin")
    assert result.status == 201, result.body
    back = admin_http.get(base + "upload.bin", timeout=30)
    assert back.status_code == 200
    assert back.content == data


def test_range_with_dash_r(live_node: LiveNode, admin_http: requests.Session, base: str) -> None:
    created = admin_http.put(
        base + "r.txt", data=b"abcdefghij", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert created.status_code == 201
    result = curl(live_node, "-r", "0-3", base + "r.txt")
    assert result.status == 206
    assert result.body == b"abcd"
    assert result.headers["content-range"] == "bytes 0-3/10"


def test_delete_with_dash_x(live_node: LiveNode, admin_http: requests.Session, base: str) -> None:
    created = admin_http.put(
        base + "gone", data=b"x", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert created.status_code == 201
    result = curl(live_node, "-X", "DELETE", base + "gone")
    assert result.status == 204
    assert admin_http.get(base + "gone", timeout=30).status_code == 404


def test_capabilities_with_the_version_header(live_node: LiveNode) -> None:
    result = curl(
        live_node,
        "-H",
        "X-CDMI-Specification-Version: 1.1.1",
        live_node.cdmi_url + "cdmi_capabilities/",
    )
    assert result.status == 200, result.body
    assert result.headers["x-cdmi-specification-version"] == "1.1.1"
    assert result.headers["content-type"] == "application/cdmi-capability"
    doc = json.loads(result.body)
    assert doc["objectType"] == "application/cdmi-capability"
    assert doc["capabilities"]["cdmi_object_access_by_ID"] == "true"
    assert all(isinstance(v, str | list) for v in doc["capabilities"].values())
    assert list(doc)[-2:] == ["childrenrange", "children"]
    assert "dataobject/" in doc["children"]
