"""The gunicorn worker of ``nimbo up``/``nimbo serve`` (HTTP and HTTPS alike).

gunicorn answers some requests itself, before the gateway's app sees them: a request line or
header fields past the limits (414, 431), a request it cannot parse (400), an unsupported
transfer coding (501), a TLS error on an established connection. Its own answers are HTML without
any of the headers :mod:`gateway.hardening` puts on the app's answers. :class:`GatewayWorker`
is gunicorn's threaded worker answering those in the gateway's manner: the same security
headers (:func:`gateway.hardening.server_error_headers`), the OCCI ``Server`` field, and a
plain-text body that says what was wrong and what the limit is (:func:`describe`). A failure
that is not the client's is a 500 naming an incident id, its traceback logged under that id.
"""

from __future__ import annotations

import ssl
from datetime import datetime
from http import HTTPStatus
from typing import Any

import gunicorn.http.wsgi
from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker

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


class GatewayWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker whose own error answers are the gateway's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hsts = hsts_value(load_config().hsts_seconds)

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
