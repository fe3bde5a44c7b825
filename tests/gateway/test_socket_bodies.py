"""Request bodies read straight off the socket (gateway.gunicorn_body) and values sent with
``sendfile`` (backends.blobfs's FileSpan through ``wsgi.file_wrapper``).

First gunicorn's own body classes over a socket pair: what the fast reader takes and leaves.
Then a real gunicorn with the settings of ``nimbo serve``, over HTTP and over HTTPS (where
gunicorn cannot ``sendfile`` and iterates the file instead): big values PUT and read back on
kept-alive connections with a request pipelined behind them, a body the app refuses unread,
byte ranges, and a client that hangs up in the middle of a body."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.unreader import SocketUnreader

from backends.blobfs import STAGING_DIR
from gateway.gunicorn_body import SocketBody, socket_bodies
from tests.auth import certs
from tests.gateway.conftest import PASSWORD, basic
from tests.gateway.served import Answer, Served, gunicorn
from tests.services import RedisServer

pytestmark = pytest.mark.redis

VERSION = {"X-CDMI-Specification-Version": "1.1.1"}
CONTAINER = "application/cdmi-container"
MIB = 1 << 20


# --- the reader over a socket pair ----------------------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.settimeout(5)
    with server, client:
        yield server, client


def gunicorn_body(sock: socket.socket, length: int, read_ahead: bytes = b"") -> Body:
    """gunicorn's ``wsgi.input`` of a body of ``length`` bytes, its unreader holding
    ``read_ahead`` (what it received with the request head)."""
    unreader = SocketUnreader(sock)
    unreader.unread(read_ahead)
    return Body(LengthReader(unreader, length))


def environ_of(body: object, sock: object) -> dict[str, object]:
    return {"wsgi.input": body, "gunicorn.socket": sock}


def test_the_read_ahead_comes_first_and_nothing_past_the_body_is_taken(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    body = gunicorn_body(server, 10, read_ahead=b"abcd")
    client.sendall(b"efghijGET /next HTTP/1.1\r\n\r\n")  # the body's rest, then a request
    fast = SocketBody.over(environ_of(body, server))
    assert fast is not None

    assert fast.read(3) == b"abc"
    assert fast.read() == b"defghij"
    assert fast.read() == b""
    assert body.reader.length == 0  # gunicorn's reader is in step: nothing left to drain
    assert server.recv(100) == b"GET /next HTTP/1.1\r\n\r\n"


def test_what_the_app_leaves_unread_gunicorn_still_drains(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    body = gunicorn_body(server, 8, read_ahead=b"12")
    client.sendall(b"345678NEXT")
    fast = SocketBody.over(environ_of(body, server))
    assert fast is not None
    assert fast.read(4) == b"12"  # raw reads may be short: what gunicorn read ahead
    assert fast.read(2) == b"34"  # then the socket

    assert body.read() == b"5678"  # what gunicorn reads before the next request
    assert body.reader.unreader.read() == b"NEXT"  # where its parser finds the next one


def test_read_ahead_past_the_buffer_is_kept_for_the_next_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, _ = pair
    body = gunicorn_body(server, 6, read_ahead=b"abcdefNEXT")
    fast = SocketBody.over(environ_of(body, server))
    assert fast is not None
    buffer = bytearray(4)
    assert fast.readinto(buffer) == 4 and buffer == b"abcd"
    assert fast.read() == b"ef"
    assert body.reader.unreader.read() == b"NEXT"  # the pipelined request, untouched


def test_a_client_gone_mid_body_ends_the_read_short(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    body = gunicorn_body(server, 100)
    client.sendall(b"only this")
    client.shutdown(socket.SHUT_WR)
    fast = SocketBody.over(environ_of(body, server))
    assert fast is not None
    assert fast.read(100) == b"only this"
    assert fast.read(100) == b""  # werkzeug's LimitedStream makes this ClientDisconnected
    assert fast.remaining == 91


def test_a_failed_read_marks_the_body_so_the_connection_is_not_reused(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, _ = pair
    server.settimeout(0.05)
    body = gunicorn_body(server, 100)
    fast = SocketBody.over(environ_of(body, server))
    assert fast is not None
    with pytest.raises(TimeoutError):
        fast.read(10)
    assert body.failed


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda s: Body(ChunkedReader(None, SocketUnreader(s))), id="chunked"),
        pytest.param(lambda s: gunicorn_body(s, 0), id="empty"),
        pytest.param(lambda s: io.BytesIO(b"not gunicorn's"), id="another server"),
    ],
)
def test_gunicorns_reader_stays_where_the_fast_one_does_not_apply(
    pair: tuple[socket.socket, socket.socket], make: object
) -> None:
    server, _ = pair
    body = make(server)  # type: ignore[operator]
    environ = environ_of(body, server)
    seen: list[object] = []
    app = socket_bodies(lambda env, start: seen.append(env["wsgi.input"]) or [])
    app(environ, lambda *a: None)
    assert seen == [body]
    assert SocketBody.over(environ_of(gunicorn_body(server, 5), object())) is None  # no socket


# --- a real gunicorn, over HTTP and HTTPS ---------------------------------------------------


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
