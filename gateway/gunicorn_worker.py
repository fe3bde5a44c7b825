"""The gunicorn worker of ``nimbo up``/``nimbo serve`` (HTTP and HTTPS alike).

gunicorn answers some requests itself, before the gateway's app sees them: a request line or
header fields past the limits (414, 431), a request it cannot parse (400), an unsupported
transfer coding (501), a TLS error on an established connection. Its own answers are HTML without
any of the headers :mod:`gateway.hardening` puts on the app's answers. :class:`GatewayWorker`
is gunicorn's threaded worker answering those in the gateway's manner: the same security
headers (:func:`gateway.hardening.server_error_headers`), the OCCI ``Server`` field, and a
plain-text body that says what was wrong and what the limit is (:func:`describe`). A failure
that is not the client's is a 500 naming an incident id, its traceback logged under that id.

On an HTTPS listener it also answers a request sent in clear text, as nginx does ("The plain
HTTP request was sent to HTTPS port"), instead of dropping the connection after a failed
handshake: before gunicorn wraps a new connection in TLS, the worker thread peeks at its
first bytes (``MSG_PEEK``: nothing is consumed). A TLS record begins with its content type
(``0x16`` for the ClientHello), never with a letter, so anything else goes on to the handshake
at once, untouched. Letters and a space are an HTTP method: the request head is read (for its
``Host``) and answered ``400`` in clear text, with the security headers, naming the
``https://`` URL to use (:func:`plain_http_answer`). Clear text that is not HTTP is closed.
The thread peeks only once gunicorn has seen data arrive (a client silent for long is parked
on gunicorn's poller, as before) and waits at most ``tls_plain_http_wait_ms`` for a method
that trickles in; a TLS client is never delayed.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from datetime import datetime
from enum import Enum
from http import HTTPStatus
from typing import Any

import gunicorn.http.wsgi
from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.gthread import _DEFER, DEFAULT_WORKER_DATA_TIMEOUT, ThreadWorker

from gateway.config import load_config
from gateway.hardening import hsts_value, incident, server_error_headers

_SHOWN = 80  # characters of a client's bad input quoted back to it


def _shown(value: Any) -> str:
    """A client's input quoted, cut short: ``'GET /x…'``."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "…"
    return repr(text)


def _header_limit(exc: errors.LimitRequestHeaders, cfg: Any) -> str:
    fields, size = cfg.limit_request_fields, cfg.limit_request_field_size
    what = str(exc)
    if what == "limit request headers fields":
        return f"too many header fields: at most {fields}"
    if what == "limit request headers fields size":
        return f"header field too long: at most {size} bytes (name, value and line end)"
    return f"request header section too large: at most {fields} fields of at most {size} bytes"


def _line_limit(exc: errors.LimitRequestLine, cfg: Any) -> str:
    limit = exc.max_size if exc.max_size is not None else cfg.limit_request_line
    return f"request line too long: at most {limit} bytes"


_FRAMING = ("CONTENT-LENGTH", "TRANSFER-ENCODING")


def _bad_header(header: Any) -> str:
    if header in _FRAMING:
        return (
            f"bad {header.title()} header field: a body's length is given once and "
            "unambiguously (one Content-Length, or a Transfer-Encoding ending in chunked, not "
            "both)"
        )
    if header == "bare LF as line terminator":
        return "bad header section: lines end with CRLF, not a bare LF"
    return f"bad header field {_shown(header)}"


def _tls(exc: ssl.SSLError) -> str:
    # A failed handshake closes the socket inside ssl.wrap_socket: this answer reaches only
    # a client whose TLS failed later, on an established connection.
    return f"TLS error: {getattr(exc, 'reason', None) or exc}"


def describe(exc: BaseException, cfg: Any) -> tuple[int, str]:
    """The status and a one-line message for an error gunicorn met before or outside the app
    (``cfg``: gunicorn's settings, for the limits). An empty message (with 500) when the
    client is not at fault."""
    if isinstance(exc, errors.InvalidResponseHeader | errors.InvalidResponseHeaderName):
        return 500, ""  # the application's fault, not the client's
    if isinstance(exc, errors.LimitRequestLine):
        return 414, _line_limit(exc, cfg)
    if isinstance(exc, errors.LimitRequestHeaders):
        return 431, _header_limit(exc, cfg)
    if isinstance(exc, ssl.SSLError):
        return 403, _tls(exc)
    for kind, status, text in _CLIENT_ERRORS:
        if isinstance(exc, kind):
            return status, text(exc)
    return 500, ""


_CLIENT_ERRORS: tuple[tuple[type[BaseException], int, Any], ...] = (
    (
        errors.InvalidRequestLine,
        400,
        lambda e: (
            f"bad request line {_shown(e.req)}: expected a method, a target and "
            "HTTP/1.0 or HTTP/1.1, separated by single spaces, ending in CRLF"
        ),
    ),
    (errors.InvalidRequestMethod, 400, lambda e: f"bad request method {_shown(e.method)}"),
    (
        errors.InvalidHTTPVersion,
        400,
        lambda e: f"unsupported HTTP version {_shown(e.version)}: HTTP/1.0 or HTTP/1.1",
    ),
    (
        errors.ObsoleteFolding,
        400,
        lambda e: f"header field {_shown(e.hdr)} is folded over lines (obsolete; refused)",
    ),
    (errors.InvalidHeaderName, 400, lambda e: f"bad header field name {_shown(e.hdr)}"),
    (errors.InvalidHeader, 400, lambda e: _bad_header(e.hdr)),
    (
        errors.UnsupportedTransferCoding,
        501,
        lambda e: (
            f"unsupported transfer coding in {_shown(e.hdr)}: send the body chunked or "
            "with a Content-Length"
        ),
    ),
    (
        errors.ExpectationFailed,
        417,
        lambda e: f"unsupported expectation {_shown(e.expect)}: only 100-continue",
    ),
    (errors.InvalidChunkSize, 400, lambda e: f"bad chunked body: bad chunk size {_shown(e.data)}"),
    (errors.ChunkMissingTerminator, 400, lambda e: "bad chunked body: a chunk not ended by CRLF"),
    (errors.InvalidChunkExtension, 400, lambda e: f"bad chunked body: {e.reason}"),
    (errors.InvalidProxyLine, 400, lambda e: f"bad PROXY protocol line {_shown(e.line)}"),
    (errors.ForbiddenProxyRequest, 403, lambda e: "PROXY protocol not accepted from this address"),
    (errors.InvalidSchemeHeaders, 400, lambda e: "contradictory scheme header fields"),
    (errors.InvalidH2CPreface, 400, lambda e: "not an HTTP/2 connection preface"),
    (errors.ConfigurationProblem, 500, lambda e: ""),  # a misconfigured SCRIPT_NAME: ours
)


def answer(status: int, message: str, headers: list[tuple[str, str]]) -> bytes:
    """The whole HTTP/1.1 answer: status line, ``headers``, a plain-text body; the
    connection closes after it."""
    body = (message + "\n").encode("utf-8")
    fields = [
        ("Server", gunicorn.http.wsgi.SERVER),
        ("Date", util.http_date()),
        ("Connection", "close"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *headers,
    ]
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields)
    return (head + "\r\n").encode("latin-1") + body


# --- clear text on the HTTPS port ---------------------------------------------------------

TLS_HANDSHAKE = 0x16
"""The content type of the TLS record that opens every TLS connection (the ClientHello)."""
METHOD_MAX = 20
"""Letters of the longest method token waited for (``PROPPATCH`` has 9)."""
HEAD_MAX = 16384
"""Bytes of a clear-text request head read for its ``Host``; the rest is never read."""
TARGET_MAX = 2048
"""Longest request target repeated in the ``https://`` URL (a longer one: ``/``)."""
_POLL = 0.01  # seconds between peeks while a method token trickles in
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?")
_TARGET = re.compile(r"/[\x21-\x7e]*")


class Opening(Enum):
    """What the first bytes of a connection to an HTTPS listener are."""

    HANDSHAKE = "handshake"  # not clear text: a TLS record (or garbage the handshake refuses)
    HTTP = "http"  # a method token and a space: an HTTP request in clear text
    CLEAR = "clear"  # clear text that is not HTTP
    UNDECIDED = "undecided"  # letters so far: more bytes decide


def opening(peeked: bytes) -> Opening:
    """What a connection beginning with ``peeked`` is. A TLS record's first byte is its
    content type (``0x16``; an SSLv2-style hello has the high bit set): never a letter."""
    if not peeked or not _letter(peeked[0]):
        return Opening.HANDSHAKE
    for index, byte in enumerate(peeked):
        if byte == 0x20:
            return Opening.HTTP
        if not _letter(byte) or index >= METHOD_MAX:
            return Opening.CLEAR
    return Opening.UNDECIDED


def _letter(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def https_url(head: bytes, local: str, public_url: str = "") -> str:
    """The ``https://`` URL of the clear-text request ``head``: ``public_url`` when it is an
    https one, else the ``Host`` the client sent (if it is a plausible host[:port]), else
    ``local`` (the address the client connected to, ``host:port``), and the request's
    target when it is a path."""
    lines = head.decode("latin-1").splitlines()
    parts = lines[0].split(" ") if lines else []
    target = parts[1] if len(parts) == 3 else "/"
    if len(target) > TARGET_MAX or not _TARGET.fullmatch(target):
        target = "/"
    if public_url.lower().startswith("https://"):
        return public_url.rstrip("/") + target
    host = local
    for line in lines[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() == "host" and _HOST.fullmatch(value.strip()):
            host = value.strip()
            break
    return f"https://{host}{target}"


def plain_http_answer(url: str) -> bytes:
    """The ``400`` a clear-text request on the HTTPS port gets: in clear text, with the
    security headers but no ``Strict-Transport-Security`` (RFC 6797 8.1: never over plain
    HTTP)."""
    message = f"plain HTTP request sent to the HTTPS port: this port speaks HTTPS only; use {url}"
    return answer(400, message, server_error_headers(hsts=None))


def local_address(sock: socket.socket) -> str:
    """``host:port`` the client connected to (an IPv6 address in brackets)."""
    address = sock.getsockname()
    if not isinstance(address, tuple):  # a unix socket
        return "localhost"
    host = f"[{address[0]}]" if ":" in address[0] else address[0]
    return f"{host}:{address[1]}"


def peek_opening(sock: socket.socket, deadline: float) -> Opening:
    """What ``sock`` begins with (some bytes have arrived), peeked without consuming them:
    at once for anything but letters; for letters, peeking again until a space, another
    byte or ``deadline`` (then :attr:`Opening.CLEAR`) decides."""
    sock.setblocking(False)
    while True:
        try:
            peeked = sock.recv(METHOD_MAX + 1, socket.MSG_PEEK)
        except BlockingIOError:
            peeked = b"?"  # nothing after all (a spurious wake-up): leave it to gunicorn
        except OSError:
            return Opening.HANDSHAKE  # gunicorn meets the same error and deals with it
        found = opening(peeked)
        if found is not Opening.UNDECIDED:
            return found
        if time.monotonic() >= deadline:
            return Opening.CLEAR
        time.sleep(_POLL)


def read_head(sock: socket.socket, deadline: float) -> bytes:
    """The clear-text request head (up to :data:`HEAD_MAX` bytes) as far as it arrives by
    ``deadline``."""
    head = b""
    while b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) < HEAD_MAX:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(HEAD_MAX - len(head))
        except OSError:  # a timeout too
            break
        if not chunk:
            break
        head += chunk
    return head


class GatewayWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker whose own error answers are the gateway's, and which
    answers plain HTTP on an HTTPS listener."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = load_config()
        self.hsts = hsts_value(config.hsts_seconds)
        self.plain_http_wait = max(config.tls_plain_http_wait_ms, 0) / 1000
        self.public_url = config.public_url

    def handle(self, conn: Any) -> Any:
        """gunicorn's ``handle`` of a connection, after :meth:`_clear_text` looked at a new
        one to an HTTPS listener (once data has arrived: as gunicorn does, a connection
        silent for :data:`DEFAULT_WORKER_DATA_TIMEOUT` goes back to the poller)."""
        if self.cfg.is_ssl and not conn.initialized:
            if not conn.wait_for_data(DEFAULT_WORKER_DATA_TIMEOUT):
                return _DEFER
            if self._clear_text(conn):
                return False  # gunicorn closes it
        return super().handle(conn)

    def _clear_text(self, conn: Any) -> bool:
        """Whether ``conn`` began in clear text: then an HTTP request has been answered
        (:func:`plain_http_answer`) and the connection is to be closed."""
        sock: socket.socket = conn.sock
        deadline = time.monotonic() + self.plain_http_wait
        found = peek_opening(sock, deadline)
        if found is Opening.HANDSHAKE:
            return False
        address = conn.client[0] if isinstance(conn.client, tuple) else ""
        if found is Opening.CLEAR:
            self.log.debug("Closed a clear-text connection to the HTTPS port from ip=%s", address)
            return True
        self.log.warning(
            "Invalid request from ip=%s: plain HTTP request sent to the HTTPS port", address
        )
        head = read_head(sock, deadline)
        url = https_url(head, local_address(sock), self.public_url)
        try:
            sock.settimeout(max(self.plain_http_wait, 1.0))
            sock.sendall(plain_http_answer(url))
        except OSError:  # the client is gone (or not reading): nothing to tell it
            self.log.debug("Failed to send the plain HTTP answer.")
        return True

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        started = datetime.now()
        addr = addr or ("", -1)  # a unix socket
        status, message = describe(exc, self.cfg)
        if not message:
            message = incident(exc)  # the traceback logged under an id; the client: the id
        else:
            self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
        if req is not None:
            self._access(req, client, addr, status, len(message), datetime.now() - started)
        tls = isinstance(client, ssl.SSLSocket)
        data = answer(status, message, server_error_headers(hsts=self.hsts if tls else None))
        try:
            util.write_nonblock(client, data)
        except OSError:  # the client is gone (or not reading): nothing to tell it
            self.log.debug("Failed to send error message.")

    def _access(self, req: Any, client: Any, addr: Any, status: int, size: int, took: Any) -> None:
        """The access-log line of an answered bad request, as gunicorn writes it."""
        environ = gunicorn.http.wsgi.default_environ(req, client, self.cfg)
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
        response = gunicorn.http.wsgi.Response(req, client, self.cfg)
        response.status = f"{status} {HTTPStatus(status).phrase}"
        response.response_length = size
        self.log.access(response, req, environ, took)
