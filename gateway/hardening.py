"""What every answer of the gateway gets, whichever protocol served it.

- Security headers on every response (OCCI, CDMI, errors, 404s, the admin routes):
  ``X-Content-Type-Options``, ``X-Frame-Options``, ``Content-Security-Policy``,
  ``Referrer-Policy``; ``Cache-Control: no-store`` on answers to requests that carried
  credentials, unless the view set its own; ``Strict-Transport-Security`` on answers sent
  over TLS (``hsts_seconds``). The answers gunicorn writes itself (a request line or header
  fields past the limits, a request it cannot parse) carry the same fields
  (:func:`server_error_headers`, used by :mod:`gateway.gunicorn_worker`).
- The JSON depth limit of :mod:`gateway.json_limits`, set for each request.
- Incidents: an unexpected exception becomes a 500 whose body names only an incident id;
  the traceback is logged under that id (:func:`incident`).
- Secrets never reach a log: a log record factory redacts ``Authorization`` and
  ``X-Auth-Token`` values, passwords, tokens and JWTs in every record any logger makes
  (gunicorn's access log included), installed once per process (:func:`redact_logs`).
- The client's address (:func:`client_address`): ``REMOTE_ADDR``, or, when that is a proxy
  listed in ``auth_trusted_proxies``, the nearest address in ``X-Forwarded-For`` that is not
  such a proxy. Rate limits and the audit log use it.

Request size limits live where they are enforced: bodies by ``MAX_CONTENT_LENGTH`` (OCCI) and
the CDMI blueprint (413; :func:`whole_body` closes Werkzeug's gap for chunked bodies), the
request line and header fields by gunicorn (:mod:`gateway.gunicorn_conf`: 414 and 431).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.utils import get_current_url

from auth.addresses import Network, listed, networks
from gateway import json_limits
from gateway.config import Config
from gateway.errors import ConfigurationError, InvalidRequest

log = logging.getLogger(__name__)

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)
CREDENTIAL_HEADERS = ("Authorization", "X-Auth-Token")
JSON_DEPTH_RANGE = range(1, 1001)
TRUSTED_PROXIES = "nimbostratus.trusted_proxies"


def hsts_value(seconds: int) -> str | None:
    """The ``Strict-Transport-Security`` value for the setting ``hsts_seconds`` (None: 0,
    no such field)."""
    return f"max-age={seconds}" if seconds > 0 else None


def server_error_headers(*, hsts: str | None) -> list[tuple[str, str]]:
    """The header fields of an answer the server writes before the app saw the request:
    :data:`SECURITY_HEADERS`, ``Cache-Control: no-store`` (the request's credentials were
    never looked at) and, over TLS, ``Strict-Transport-Security`` (``hsts``)."""
    fields = [*SECURITY_HEADERS, ("Cache-Control", "no-store")]
    if hsts:
        fields.append(("Strict-Transport-Security", hsts))
    return fields


def init_app(app: Flask, config: Config) -> None:
    """Register the hooks on ``app`` and make sure this process's logs are redacted."""
    if config.json_max_depth not in JSON_DEPTH_RANGE:
        raise ConfigurationError("json_max_depth must be between 1 and 1000")
    redact_logs()
    trusted = networks(config.auth_trusted_proxies, "auth_trusted_proxies")
    hsts = hsts_value(config.hsts_seconds)
    depth = config.json_max_depth

    app.extensions[TRUSTED_PROXIES] = trusted

    @app.before_request
    def _limits() -> None:
        json_limits.MAX_DEPTH.set(depth)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in SECURITY_HEADERS:
            headers[name] = value
        if "Cache-Control" not in headers and (
            g.get("principal") is not None or any(h in request.headers for h in CREDENTIAL_HEADERS)
        ):
            headers["Cache-Control"] = "no-store"
        if hsts and request.scheme == "https":
            headers["Strict-Transport-Security"] = hsts
        return response


# --- bodies ---------------------------------------------------------------------------------


def whole_body(*, cache: bool = True) -> bytes:
    """The request body, all of it, or 413 past ``request.max_content_length``.

    Werkzeug refuses a ``Content-Length`` over the limit at once, but a chunked body it cuts
    at the limit and hands out the first part as if it were all: a truncated document that
    may still parse. Here a body that fills the limit is checked for one byte more."""
    data = request.get_data(cache=cache)
    limit = request.max_content_length
    streamed = request.content_length is None
    if streamed and limit is not None and len(data) >= limit and request.input_stream.read(1):
        raise RequestEntityTooLarge()
    check_body_complete(len(data))
    return data


def body_chunks(size: int) -> Iterator[bytes]:
    """The request body in pieces of at most ``size`` bytes, streamed; raises
    :func:`check_body_complete`'s 400 at the end of a body shorter than announced."""
    stream = request.stream
    received = 0
    while chunk := stream.read(size):
        received += len(chunk)
        yield chunk
    check_body_complete(received)


def check_body_complete(received: int) -> None:
    """400 when the body ended before its ``Content-Length``: the client hung up (or
    announced more than it sent). The server sees only the end of the stream, as it would
    at a real end, so without this a cut upload would be stored as if whole."""
    declared = request.content_length
    if declared is not None and received < declared:
        raise InvalidRequest(
            f"the request body ended after {received} of the {declared} bytes its "
            "Content-Length announced; nothing was stored"
        )


# --- incidents ------------------------------------------------------------------------------


def incident(error: BaseException) -> str:
    """Log ``error`` with its traceback under a new incident id; return the message a client
    gets instead (the id and nothing else of the error)."""
    number = secrets.token_hex(6)
    where = f" on {request.method} {request.path}" if has_request_context() else ""
    log.error("incident %s: unhandled %s%s", number, type(error).__name__, where, exc_info=error)
    return (
        f"internal error (incident {number}); the administrator can find what happened in "
        "the log under this id"
    )


# --- client addresses -----------------------------------------------------------------------


def forwarded_client(
    remote_addr: str, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """The client address: the peer, or behind trusted proxies the nearest hop in
    ``X-Forwarded-For`` (read right to left) that is not one of them. Hops a client wrote
    itself (left of the first untrusted one) are never believed."""
    if not trusted or not forwarded_for or not listed(remote_addr, trusted):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote_addr  # a proxy that writes no address: trust none of it
        if not listed(hop, trusted):
            return hop
    return hops[0]


def client_address() -> str:
    """The current request's client address (see :func:`forwarded_client`)."""
    cached: str | None = g.get("nimbo_client_address")
    if cached is None:
        cached = forwarded_client(
            str(request.environ.get("REMOTE_ADDR") or ""),
            request.headers.get("X-Forwarded-For"),
            current_app.extensions.get(TRUSTED_PROXIES, ()),
        )
        g.nimbo_client_address = cached
    return cached


def base_url() -> str:
    """The URL the current request's locations are made under: the setting ``public_url``
    (``NIMBO_PUBLIC_URL``) or else the scheme and host the request was made to."""
    public: str | None = current_app.config.get("NIMBO_PUBLIC_URL")
    return public or _host_url(request.scheme, request.host)


@functools.lru_cache(maxsize=256)  # werkzeug's host_url costs more than the rest of a GET
def _host_url(scheme: str, host: str) -> str:
    return get_current_url(scheme, host)


# --- redacted logs --------------------------------------------------------------------------

REDACTED = "[redacted]"
_SECRET_NAMES = (
    r"authorization|x[-_]auth[-_]token|auth[-_]?token|access[-_]?token|refresh[-_]?token"
    r"|id[-_]?token|client[-_]?secret|password|passwd|secret|token"
)
# a name, a separator ("name: v", "name=v", "'name': 'v'", "('name', 'v')"), an optional
# scheme word, then the value
_NAMED = re.compile(
    rf"""(?ix)
    (?<![a-z0-9])(?P<name>{_SECRET_NAMES})
    (?P<sep>["']?\s*[:=]\s*["']?|["']\s*,\s*["'])
    (?P<scheme>(?:basic|bearer|digest|negotiate)\s+)?
    (?P<value>[^\s"'&,;)\]}}]+)
    """
)
_SCHEME = re.compile(r"(?i)\b(?P<scheme>basic|bearer)\s+(?P<value>[A-Za-z0-9+/=._~-]{8,})")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    """``text`` with credential values replaced by ``[redacted]``."""
    if not text:
        return text
    text = _NAMED.sub(lambda m: f"{m['name']}{m['sep']}{m['scheme'] or ''}{REDACTED}", text)
    text = _SCHEME.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    return _JWT.sub(REDACTED, text)


_install_lock = threading.Lock()
_installed = False


def redact_logs() -> None:
    """Make every log record of this process redacted at birth (message, arguments and a
    traceback's text), whichever handler writes it later. Installed once; idempotent."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a bad format string: let the handler report it
        return
    record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def redacted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers as they may be logged: credential fields replaced."""
    return {
        name: REDACTED if name.lower() in ("authorization", "x-auth-token", "cookie") else value
        for name, value in headers.items()
    }
