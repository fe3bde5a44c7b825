"""gunicorn settings used by ``nimbo up``/``nimbo serve``; makes gunicorn's own ``Server``
response field the OCCI one (OCCI requires ``OCCI/1.2`` in it)."""

import ssl
from collections.abc import Callable
from typing import Any

import gunicorn.http.wsgi

from gateway.config import load_config
from occi.http.views import SERVER_HEADER

gunicorn.http.wsgi.SERVER = SERVER_HEADER

worker_class = "gthread"
threads = 4
keepalive = 5
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

# --- HTTPS and client certificates (settings tls_*, auth_trusted_proxies, x509_header_*) ---
# auth.x509 reads a verified client certificate from environ["gunicorn.socket"] (the gthread
# worker's ssl.SSLSocket); a certificate that does not verify fails the handshake.
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
