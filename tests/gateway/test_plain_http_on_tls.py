"""Plain HTTP sent to the HTTPS port (gateway.gunicorn_worker): a real gunicorn with the
settings of ``nimbo serve`` terminating TLS with certificates the test makes answers a
clear-text request ``400`` in clear text, with the security headers and the ``https://`` URL
to use, as nginx does; clear text that is not HTTP is closed; TLS clients, slow ones too,
are served as before."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.gunicorn_worker import METHOD_MAX, Opening, https_url, opening
from gateway.hardening import SECURITY_HEADERS
from occi.http.views import SERVER_HEADER
from tests.auth import certs
from tests.gateway.conftest import PASSWORD
from tests.gateway.served import Answer, Served, gunicorn, read_all, read_answer
from tests.services import RedisServer

pytestmark = pytest.mark.redis

WAIT_MS = 300  # tls_plain_http_wait_ms of the server: short, for the tests of its bound
PLAIN = "plain HTTP request sent to the HTTPS port: this port speaks HTTPS only; use "


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> certs.CertificateAuthority:
    return certs.CertificateAuthority(
        tmp_path_factory.mktemp("pki"), certs.name(("O", "nimbostratus tests"), ("CN", "CA"))
    )


@pytest.fixture(scope="module")
def https(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    ca: certs.CertificateAuthority,
) -> Iterator[Served]:
    """gunicorn serving HTTPS (HSTS on, to show it stays off the clear-text answer)."""
    server = ca.server("server")
    settings = {"NIMBO_HSTS_SECONDS": "600", "NIMBO_TLS_PLAIN_HTTP_WAIT_MS": str(WAIT_MS)}
    with gunicorn(
        tmp_path_factory.mktemp("https"),
        redis_server.url,
        settings=settings,
        tls=(server.cert_file, server.key_file, ca.cert_file),
    ) as served:
        yield served


def clear(served: Served, *parts: bytes, pause: float = 0.0) -> bytes:
    """Send ``parts`` in clear text to the HTTPS port (``pause`` seconds apart), read until
    the server closes."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as connection:
        for index, part in enumerate(parts):
            if index:
                time.sleep(pause)
            connection.sendall(part)
        return read_all(connection)


def assert_plain_http_answer(answer: Answer, url: str) -> None:
    assert answer.status == 400, answer.raw[:300]
    assert answer.text == PLAIN + url + "\n"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["content-length"] == str(len(answer.body))
    assert answer.headers["connection"] == "close"
    assert answer.headers["server"] == SERVER_HEADER
    assert answer.headers["cache-control"] == "no-store"
    for name, value in SECURITY_HEADERS:
        assert answer.headers[name.lower()] == value
    assert "strict-transport-security" not in answer.headers  # never over plain HTTP


# --- what a connection begins with, and the URL to use ------------------------------------


@pytest.mark.parametrize(
    ("peeked", "found"),
    [
        (b"\x16\x03\x01\x02\x00\x01", Opening.HANDSHAKE),  # a TLS ClientHello record
        (b"\x80\x2e\x01\x00\x02", Opening.HANDSHAKE),  # an SSLv2-style hello
        (b"\x00\x01\x02", Opening.HANDSHAKE),  # garbage: the handshake refuses it
        (b"", Opening.HANDSHAKE),  # the client closed: gunicorn sees it
        (b"GET / HTTP/1.1\r\n", Opening.HTTP),
        (b"propfind ", Opening.HTTP),
        (b"G", Opening.UNDECIDED),
        (b"OPTIO", Opening.UNDECIDED),
        (b"GET\t/", Opening.CLEAR),
        (b"HELLO\r\n", Opening.CLEAR),
        (b"A" * (METHOD_MAX + 1), Opening.CLEAR),
        (b"A" * METHOD_MAX + b" ", Opening.HTTP),
    ],
)
def test_what_a_connection_begins_with(peeked: bytes, found: Opening) -> None:
    assert opening(peeked) is found


@pytest.mark.parametrize(
    ("head", "public_url", "url"),
    [
        (b"GET /-/ HTTP/1.1\r\nHost: cloud.example.org:8443\r\n\r\n", "",
         "https://cloud.example.org:8443/-/"),
        (b"GET /compute/?page=2 HTTP/1.1\r\nhost:  [::1]:8443 \r\n\r\n", "",
         "https://[::1]:8443/compute/?page=2"),
        (b"GET /-/ HTTP/1.0\r\n\r\n", "", "https://192.0.2.1:8443/-/"),  # no Host: the address
        (b'GET / HTTP/1.1\r\nHost: a"<b>\r\n\r\n', "", "https://192.0.2.1:8443/"),  # not a host
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "", "https://192.0.2.1:8443/"),
        (b"GET /x HTTP/1.1\r\nX-Host: evil\r\n\r\nHost: evil\r\n", "", "https://192.0.2.1:8443/x"),
        (b"GET http://c.example/x HTTP/1.1\r\nHost: c.example\r\n\r\n", "", "https://c.example/"),
        (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: c\r\n\r\n", "", "https://c/"),
        (b"GET /-/ HTTP/1.1\r\nHost: c.example\r\n\r\n", "https://cloud.example.org/",
         "https://cloud.example.org/-/"),  # public_url wins when it is an https one
        (b"GET /-/ HTTP/1.1\r\nHost: c.example\r\n\r\n", "http://cloud.example.org",
         "https://c.example/-/"),
        (b"GET", "", "https://192.0.2.1:8443/"),  # a head cut short
    ],
)  # fmt: skip
def test_the_https_url_of_a_clear_text_request(head: bytes, public_url: str, url: str) -> None:
    assert https_url(head, "192.0.2.1:8443", public_url) == url


# --- a real gunicorn ----------------------------------------------------------------------


def test_plain_http_gets_a_400_in_clear_text_naming_the_https_url(
    https: Served, ca: certs.CertificateAuthority
) -> None:
    host = f"localhost:{https.port}"
    request = f"GET /-/?x=1 HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\n\r\n".encode()
    answer = Answer.parse(clear(https, request))
    url = f"https://{host}/-/?x=1"
    assert_plain_http_answer(answer, url)
    # the URL it names works, over TLS (the certificate names localhost)
    followed = requests.get(url, auth=("alice", PASSWORD), verify=str(ca.cert_file), timeout=10)
    assert followed.status_code == 200, followed.text
    assert "Invalid request from ip=127.0.0.1: plain HTTP request sent to the HTTPS port" in (
        https.output.read_text()
    )


def test_an_http_client_library_reads_the_answer(https: Served) -> None:
    response = requests.get(f"http://127.0.0.1:{https.port}/compute/", timeout=10)
    assert response.status_code == 400
    assert response.text == f"{PLAIN}https://127.0.0.1:{https.port}/compute/\n"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = requests.post(
        f"http://127.0.0.1:{https.port}/compute/", data=b"x" * 100_000, timeout=10
    )  # a body left unread does not cost the client its answer
    assert body.status_code == 400 and body.text.startswith(PLAIN)


def test_without_a_usable_host_the_url_names_the_address_connected_to(https: Served) -> None:
    url = f"https://127.0.0.1:{https.port}/storage/"
    for request in (
        b"GET /storage/ HTTP/1.0\r\n\r\n",
        b'GET /storage/ HTTP/1.1\r\nHost: evil.example"><script>\r\n\r\n',
    ):
        assert_plain_http_answer(Answer.parse(clear(https, request)), url)


def test_a_method_trickling_in_is_still_answered(https: Served) -> None:
    raw = clear(https, b"GE", b"T / HTTP/1.1\r\nHost: h:1\r\n\r\n", pause=0.1)
    assert_plain_http_answer(Answer.parse(raw), "https://h:1/")


@pytest.mark.parametrize(
    "sent",
    [
        (b"HELLO\x00\r\n",),  # clear text, not HTTP
        (b"\x00\x01\x02\x03\x04\x05\x06\x07",),  # binary: the handshake refuses it, as before
        (b"G",),  # a method that never ends: closed once tls_plain_http_wait_ms is spent
    ],
)
def test_clear_text_that_is_not_http_is_closed_without_an_answer(
    https: Served, sent: tuple[bytes, ...]
) -> None:
    started = time.monotonic()
    assert clear(https, *sent) == b""
    assert time.monotonic() - started < WAIT_MS / 1000 + 3  # the wait is bounded


def test_tls_clients_are_served_as_before(https: Served, ca: certs.CertificateAuthority) -> None:
    verify = str(ca.cert_file)
    with requests.Session() as session:  # two requests on one kept-alive connection
        for _ in range(2):
            answer = session.get(
                f"{https.url}/-/", auth=("alice", PASSWORD), verify=verify, timeout=10
            )
            assert answer.status_code == 200
            assert answer.headers["Strict-Transport-Security"] == "max-age=600"
    anonymous = requests.get(f"{https.url}/-/", verify=verify, timeout=10)
    assert anonymous.status_code == 401


def test_a_client_sending_its_client_hello_late_is_served(
    https: Served, ca: certs.CertificateAuthority
) -> None:
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    with socket.create_connection(("127.0.0.1", https.port), timeout=10) as raw:
        time.sleep(WAIT_MS / 1000 + 0.2)  # silent longer than any wait for clear text
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as connection:
            connection.sendall(b"GET /-/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(connection).status == 401


def test_a_client_hello_arriving_byte_by_byte_is_served(
    https: Served, ca: certs.CertificateAuthority
) -> None:
    """The record's first byte alone, then the rest after longer than the server waits for
    a clear-text method: the server decides on the first byte and the handshake completes."""
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with socket.create_connection(("127.0.0.1", https.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        assert hello[0] == 0x16
        raw.sendall(hello[:1])
        time.sleep(WAIT_MS / 1000 + 0.2)
        raw.sendall(hello[1:])
        while True:
            incoming.write(raw.recv(65536))
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
        tls.write(b"GET /-/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw.sendall(outgoing.read())
        received = b""
        while b"\r\n\r\n" not in received:
            incoming.write(raw.recv(65536))
            try:
                received += tls.read(65536)
            except ssl.SSLWantReadError:
                continue
    assert received.startswith(b"HTTP/1.1 401 "), received[:200]


def test_plain_http_on_a_plain_http_server_is_served(tmp_path: Path, redis_url: str) -> None:
    """Without TLS nothing is peeked at: the same request is the app's."""
    with gunicorn(tmp_path, redis_url) as served:
        answer = served.answer(b"GET /-/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.status == 401
