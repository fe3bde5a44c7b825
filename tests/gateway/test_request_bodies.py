"""Request bodies and values over a real gunicorn with the settings of ``nimbo serve``, over
HTTP and over HTTPS: big values PUT and read back on kept-alive connections with a request
pipelined behind them, a body the app refuses unread, byte ranges, and bodies that end before
their ``Content-Length`` (gateway.hardening.check_body_complete): the client ends its side, or
hangs up; nothing is stored either way."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from backends.blobfs import STAGING_DIR
from tests.auth import certs
from tests.gateway.conftest import PASSWORD, basic
from tests.gateway.served import Answer, Served, gunicorn
from tests.services import RedisServer

pytestmark = pytest.mark.redis

VERSION = {"X-CDMI-Specification-Version": "1.1.1"}
CONTAINER = "application/cdmi-container"
MIB = 1 << 20


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> certs.CertificateAuthority:
    return certs.CertificateAuthority(
        tmp_path_factory.mktemp("pki"), certs.name(("O", "nimbostratus tests"), ("CN", "CA"))
    )


@pytest.fixture(scope="module", params=["http", "https"])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    ca: certs.CertificateAuthority,
) -> Iterator[Served]:
    tls = None
    if request.param == "https":
        server = ca.server("server")
        tls = (server.cert_file, server.key_file, ca.cert_file)
    with gunicorn(tmp_path_factory.mktemp(request.param), redis_server.url, tls=tls) as node:
        verify: str | bool = str(ca.cert_file) if tls else True
        made = requests.put(f"{node.url}/cdmi/box/", data="{}", auth=("alice", PASSWORD),
                            headers={**VERSION, "Content-Type": CONTAINER}, timeout=10,
                            verify=verify)
        assert made.status_code == 201, made.text
        yield node


def put_head(path: str, length: int, *, keep_alive: bool = True) -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
        f"{basic('alice')['Authorization']}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n{'' if keep_alive else 'Connection: close'}\r\n"
    ).replace("\r\n\r\n", "\r\n").encode() + b"\r\n"


def get_head(path: str, *extra: str) -> bytes:
    fields = "".join(f"{field}\r\n" for field in extra)
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
        f"{basic('alice')['Authorization']}\r\n{fields}\r\n"
    ).encode()


class Answers:
    """Answers read one after another off one connection; unlike ``read_answer``, the bytes
    read past one answer (the next one's, when requests are pipelined) are kept."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.data = b""

    def _fill(self, until: Callable[[], bool]) -> None:
        while not until():
            chunk = self.connection.recv(MIB)
            assert chunk, f"the connection closed in the middle of an answer: {self.data[:300]!r}"
            self.data += chunk

    def next(self) -> Answer:
        self._fill(lambda: b"\r\n\r\n" in self.data)
        head, _, _ = self.data.partition(b"\r\n\r\n")
        length = int(Answer.parse(head + b"\r\n\r\n").headers.get("content-length", "0"))
        end = len(head) + 4 + length
        self._fill(lambda: len(self.data) >= end)
        answer, self.data = Answer.parse(self.data[:end]), self.data[end:]
        return answer


def test_a_big_value_and_a_request_pipelined_behind_it(served: Served) -> None:
    """Head, 3 MiB of body and the next request in one stream on one connection: the value
    is stored whole and the GET behind it is answered with the same bytes."""
    value = os.urandom(3 * MIB + 17)
    with served.connect() as connection:
        connection.sendall(put_head("/cdmi/box/big", len(value)) + value
                           + get_head("/cdmi/box/big"))
        answers = Answers(connection)
        stored, read = answers.next(), answers.next()
    assert stored.status in (201, 204), stored.raw[:400]
    assert read.status == 200, read.raw[:400]
    assert hashlib.sha256(read.body).digest() == hashlib.sha256(value).digest()


def test_a_body_refused_unread_is_drained_before_the_next_request(served: Served) -> None:
    """A PUT into a container that does not exist is refused before its body is read; the
    request behind the body on the same connection is still read from the right place.
    (gunicorn drains at most 64 KiB of an unread body and closes the connection past that.)"""
    value = b"x" * (48 * 1024)
    with served.connect() as connection:
        connection.sendall(put_head("/cdmi/nowhere/thing", len(value)) + value
                           + get_head("/cdmi/box/", "X-CDMI-Specification-Version: 1.1.1"))
        answers = Answers(connection)
        refused, listed = answers.next(), answers.next()
    assert refused.status == 404, refused.raw[:400]
    assert listed.status == 200, listed.raw[:400]
    assert b'"objectName": "box/"' in listed.body


@pytest.mark.parametrize(
    ("range_field", "status", "span"),
    [
        (None, 200, slice(None)),
        ("Range: bytes=100-1048675", 206, slice(100, 1048676)),
        ("Range: bytes=-5", 206, slice(-5, None)),
    ],
)
def test_values_and_byte_ranges_read_back_intact(
    served: Served, range_field: str | None, status: int, span: slice
) -> None:
    value = os.urandom(2 * MIB + 3)
    with served.connect() as connection:
        answers = Answers(connection)
        connection.sendall(put_head("/cdmi/box/ranged", len(value)) + value)
        assert answers.next().status in (201, 204)
        connection.sendall(get_head("/cdmi/box/ranged", *([range_field] if range_field else [])))
        answer = answers.next()
        connection.sendall(get_head("/cdmi/box/ranged", "Range: bytes=0-9"))
        after = answers.next()  # the connection goes on after a sent file
    assert answer.status == status, answer.raw[:400]
    assert answer.body == value[span]
    assert after.status == 206 and after.body == value[:10]


@pytest.mark.parametrize("served", ["http"], indirect=True)  # TLS has no half-close
def test_a_body_cut_short_is_refused_and_nothing_is_stored(served: Served) -> None:
    """The client announces 4 MiB, sends 1 MiB and ends its side: to the server that is the
    end of the stream, as at a whole body; it must not store the first MiB as the value."""
    with served.connect() as connection:
        connection.sendall(put_head("/cdmi/box/cut", 4 * MIB) + b"y" * MIB)
        connection.shutdown(socket.SHUT_WR)
        refused = Answers(connection).next()
    assert refused.status == 400, refused.raw[:400]
    assert (f"the request body ended after {MIB} of the {4 * MIB} bytes its Content-Length "
            "announced; nothing was stored") in refused.text
    assert_absent(served, "/cdmi/box/cut")


def test_a_client_hanging_up_mid_body_stores_nothing(served: Served) -> None:
    with served.connect() as connection:
        connection.sendall(put_head("/cdmi/box/half", 4 * MIB) + b"y" * MIB)
    assert_absent(served, "/cdmi/box/half")


def assert_absent(served: Served, path: str) -> None:
    """Once the server has cleaned up after the cut upload: no staging file, no object."""
    staging = served.data_dir / "blobs" / STAGING_DIR
    deadline = time.monotonic() + 10
    while list(staging.iterdir()):
        assert time.monotonic() < deadline, list(staging.iterdir())
        time.sleep(0.05)
    time.sleep(0.2)  # the request's transaction, had there been one, would be done by now
    with served.connect() as connection:
        connection.sendall(get_head(path))
        assert Answers(connection).next().status == 404
