"""gunicorn settings used by ``nimbo up``/``nimbo serve``; makes gunicorn's own ``Server``
response field the OCCI one (OCCI requires ``OCCI/1.2`` in it)."""

import ssl
from collections.abc import Callable
from typing import Any

import gunicorn.http.wsgi

from gateway.config import load_config
from occi.http.views import SERVER_HEADER

gunicorn.http.wsgi.SERVER = SERVER_HEADER

# gthread, answering the requests gunicorn refuses itself (414, 431, 400, ...) with the
# gateway's security headers and a plain body naming what was wrong (HTTP and HTTPS alike)
worker_class = "gateway.gunicorn_worker.GatewayWorker"
threads = 4
keepalive = 5
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

# --- HTTPS and client certificates (settings tls_*, auth_trusted_proxies, x509_header_*) ---
# auth.x509 reads a verified client certificate from environ["gunicorn.socket"] (the gthread
# worker's ssl.SSLSocket; GatewayWorker is one); a certificate that does not verify fails
# the handshake.
_tls = load_config()
if _tls.tls_cert:
    certfile = _tls.tls_cert
    keyfile = _tls.tls_key or None  # None: the key is in the certificate file
    if _tls.tls_client_ca:
        ca_certs = _tls.tls_client_ca
        cert_reqs = ssl.CERT_OPTIONAL  # clients without a certificate use Basic or tokens
if _tls.auth_trusted_proxies:
    # gunicorn drops header names with "_" (SSL_CLIENT_S_DN) unless a trusted front end sent
    # them; auth.x509 checks the peer address again.
    forwarded_allow_ips = ",".join(
        p.strip() for p in _tls.auth_trusted_proxies.split(",") if p.strip()
    )
    forwarder_headers = ",".join(
        ["SCRIPT_NAME", "PATH_INFO"]
        + [
            h.upper()
            for h in (_tls.x509_header_subject, _tls.x509_header_issuer, _tls.x509_header_verify)
            if "_" in h
        ]
    )


def ssl_context(conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> Any:
    """gunicorn's context, accepting RFC 3820 proxy certificates (grid clients) as well."""
    context = default_ssl_context_factory()
    context.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
    return context


# --- request limits (settings request_line_max, request_fields_max, request_field_bytes) ---
# gunicorn answers 414 for a longer request line and 431 for too many or too long header
# fields before the app sees the request (through GatewayWorker.handle_error).
_limits = load_config()
limit_request_line = _limits.request_line_max
limit_request_fields = _limits.request_fields_max
limit_request_field_size = _limits.request_field_bytes


def post_worker_init(worker: Any) -> None:
    """Each worker moves audit records from Redis into the store (gateway.audit); the first
    worker of a start (age 1; not one that replaces another) sweeps orphaned CDMI blobs in
    the background (gateway.services.cdmi_sweep). The app is loaded: the garbage collector
    stops walking what it keeps (gateway.collector)."""
    from gateway.audit import start_flusher
    from gateway.collector import settle
    from gateway.services.cdmi_sweep import sweep_in_background

    settle()
    start_flusher(worker.wsgi)
    if worker.age == 1:
        sweep_in_background(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    """A worker that stops (also on a graceful shutdown) flushes the audit records left."""
    from gateway.audit import stop_flusher

    app = getattr(worker, "wsgi", None)
    if app is not None:
        stop_flusher(app)
