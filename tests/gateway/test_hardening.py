"""Hardening through the whole gateway: security headers on every answer, incident ids instead
of internals in 500s, JSON depth and body limits, secrets kept out of logs, the same answer
and timing for an unknown user and a wrong password; and a real gunicorn with the settings of
``nimbo serve`` (tests.gateway.served): the answers it writes itself (request line and header
limits, unparsable requests; over HTTP and HTTPS) with the security headers and a plain body
saying what was wrong, its access log redacted, the audit records of a worker flushed when it
stops."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import signal
import ssl
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import requests
from flask import request
from flask.testing import FlaskClient
from gunicorn.http import errors as gunicorn_errors
from sqlalchemy import select

from auth.passwords import hash_password
from gateway.app import create_app
from gateway.audit import PENDING
from gateway.gunicorn_worker import describe
from gateway.hardening import SECURITY_HEADERS, redact
from gateway.json_limits import depth
from gateway.services.cdmi import CdmiService
from gateway.services.entities import OcciService
from gateway.store.db import Store
from gateway.store.models import AuditRecord, User
from occi.http.views import SERVER_HEADER
from tests.auth import certs
from tests.gateway.cdmi_client import CONTAINER, VERSION
from tests.gateway.conftest import INFRA, PASSWORD, Node, NodeFactory, basic, category
from tests.gateway.served import Answer, Served, gunicorn

pytestmark = pytest.mark.redis

HOST = {"host-a": "memory://hardening-host?cores=16&memory_mib=32768"}
INCIDENT = re.compile(r"incident ([0-9a-f]{12})")
INTERNALS = "secret-internal-detail at /etc/nimbostratus/db"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the store's dialect."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


def credentials(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- a fault-injection seam: services that fail unexpectedly ---------------------------------


class BrokenOcci(OcciService):
    """Reading an entity fails with an error that is nobody's business but the log's."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{INTERNALS}; request headers were {dict(request.headers)}")


class BrokenCdmi(CdmiService):
    def read(self, *args: Any, **kwargs: Any) -> Any:
        raise KeyError(INTERNALS)


def broken_client(node: Node) -> FlaskClient:
    nimbo = node.nimbo
    occi = BrokenOcci(nimbo.store, nimbo.queue, nimbo.catalog, node.config)
    cdmi = BrokenCdmi(nimbo.store, nimbo.cdmi.blobs, node.config)
    return create_app(node.config, replace(nimbo, occi=occi, cdmi=cdmi)).test_client()


# --- security headers -----------------------------------------------------------------------


@pytest.fixture
def hnode(make_node: NodeFactory) -> Node:
    return make_node(HOST, auth_methods="local,token", rate_limit_user="50/60")


def answers(node: Node) -> Iterator[tuple[str, Any]]:
    """One answer of each sort the gateway gives."""
    client = node.client
    alice = basic("alice")
    yield "occi 200", client.get("/compute/", headers=alice)
    yield "occi 201", client.post("/-/", headers={**alice, "Content-Type": "text/plain"},
                                  data=f'Category: t; scheme="{INFRA}x#"; class="mixin"; '
                                       'location="/t/"\r\n')
    yield "occi 404", client.get("/compute/nothing", headers=alice)
    yield "unrouted 404", client.get("/no/such/thing/", headers=alice)
    yield "occi 401", client.get("/compute/")
    yield "occi 400", client.post("/compute/", headers={**alice, "Content-Type": "text/plain"},
                                  data="Category: nonsense\r\n")
    yield "occi 405", client.put("/", headers=alice)
    yield "occi 413", client.post("/compute/", headers={**alice, "Content-Type": "text/plain"},
                                  data=b"x" * (node.config.max_body_bytes + 1))
    yield "cdmi 200", client.get("/cdmi/", headers={**alice, **VERSION})
    yield "cdmi 404", client.get("/cdmi/nothing", headers={**alice, **VERSION})
    yield "cdmi 401", client.get("/cdmi/", headers=VERSION)
    yield "admin 200", client.get("/admin/audit", headers=basic("root"))
    yield "admin 404", client.get("/admin/audit", headers=alice)
    yield "tokens 201", client.post("/auth/tokens", headers=alice)
    yield "tokens 401", client.post("/auth/tokens", headers=credentials("alice", "wrong-pw"))
    broken = broken_client(node)
    yield "occi 500", broken.get("/compute/c1", headers=alice)
    yield "cdmi 500", broken.get("/cdmi/", headers={**alice, **VERSION})
    for _ in range(60):
        over = client.get("/compute/", headers=basic("bob"))
    yield "429", over


def test_every_answer_carries_the_security_headers(hnode: Node) -> None:
    seen = set()
    for what, response in answers(hnode):
        seen.add(response.status_code)
        for name, value in SECURITY_HEADERS:
            assert response.headers.get(name) == value, (what, dict(response.headers))
        assert "Strict-Transport-Security" not in response.headers, what  # plain HTTP
        if "Authorization" in response.request.headers:
            assert response.headers.get("Cache-Control") == "no-store", what
    assert seen >= {200, 201, 400, 401, 404, 405, 413, 429, 500}


def test_cache_control_only_on_answers_to_credentials(hnode: Node) -> None:
    assert "Cache-Control" not in hnode.client.get("/compute/").headers  # a bare 401


def test_hsts_over_tls_only(make_node: NodeFactory) -> None:
    node = make_node(HOST, hsts_seconds=600)
    secure = node.client.get("/compute/", headers=basic("alice"), base_url="https://localhost/")
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=600"
    plain = node.client.get("/compute/", headers=basic("alice"))
    assert "Strict-Transport-Security" not in plain.headers
    off = make_node(HOST, hsts_seconds=0).client.get("/compute/", base_url="https://localhost/")
    assert "Strict-Transport-Security" not in off.headers


# --- no internals in error bodies -----------------------------------------------------------


@pytest.mark.parametrize(("path", "headers"), [("/compute/c1", {}), ("/cdmi/", VERSION)],
                         ids=["occi", "cdmi"])
def test_an_unexpected_error_is_a_500_with_an_incident_id_logged_with_the_traceback(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture, path: str,
    headers: dict[str, str],
) -> None:
    client = broken_client(make_node(HOST))
    with caplog.at_level(logging.ERROR, logger="gateway.hardening"):
        response = client.get(path, headers={**basic("alice"), **headers})
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    for leak in ("secret-internal-detail", "/etc/", "Traceback", "KeyError", "RuntimeError",
                 "line "):
        assert leak not in body, body
    match = INCIDENT.search(body)
    assert match, body
    logged = [r for r in caplog.records if match[1] in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_text and INTERNALS in logged[0].exc_text
    assert "Traceback" in logged[0].exc_text
    second = client.get(path, headers={**basic("alice"), **headers}).get_data(as_text=True)
    assert INCIDENT.search(second)[1] != match[1]  # type: ignore[index]


# --- JSON depth and body size ---------------------------------------------------------------


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def occi_json(levels: int) -> str:
    """An OCCI JSON create whose one attribute nests so that the document has ``levels``."""
    document = {"kind": f"{INFRA}compute", "attributes": {"occi.core.title": "__"}}
    return json.dumps(document).replace('"__"', nested(levels - 2))


def cdmi_json(levels: int) -> str:
    return json.dumps({"metadata": {"deep": "__"}}).replace('"__"', nested(levels - 2))


def test_json_depth_is_counted_outside_strings() -> None:
    assert depth(b'{"a": [1, {"b": "[[[[\\"[[["}]}') == 3
    assert depth(b'["\\\\", [[]]]') == 3
    assert depth(b'"[[["') == depth(b"17") == 0
    assert depth(nested(5000).encode()) == 5000


def test_occi_and_cdmi_json_nested_deeper_than_the_limit_is_400(make_node: NodeFactory) -> None:
    node = make_node(HOST)
    occi = {**basic("alice"), "Content-Type": "application/occi+json"}
    cdmi = {**basic("alice"), **VERSION, "Content-Type": CONTAINER}
    for levels in (33, 1000, 200_000):
        for response in (node.client.post("/compute/", headers=occi, data=occi_json(levels)),
                         node.client.put("/cdmi/deep/", headers=cdmi, data=cdmi_json(levels))):
            assert response.status_code == 400, response.get_data(as_text=True)
            assert "JSON nested deeper than 32 levels" in response.get_data(as_text=True)
    # at the limit the document is read (and refused or taken for what it says)
    at_limit = node.client.post("/compute/", headers=occi, data=occi_json(32))
    assert "nested deeper" not in at_limit.get_data(as_text=True)
    created = node.client.put("/cdmi/deep/", headers=cdmi, data=cdmi_json(32))
    assert created.status_code == 201, created.get_data(as_text=True)


def test_a_keystone_body_nested_too_deep_is_400(make_node: NodeFactory) -> None:
    node = make_node(HOST, auth_methods="local,token")
    for levels in (40, 200_000):
        body = json.dumps({"auth": {"identity": "__"}}).replace('"__"', nested(levels - 2))
        response = node.client.post("/auth/v3/auth/tokens", data=body,
                                    headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.get_data(as_text=True)
        assert "JSON nested deeper than 32 levels" in response.get_data(as_text=True)


def test_the_json_depth_limit_is_a_setting(make_node: NodeFactory) -> None:
    node = make_node(HOST, json_max_depth=4)
    cdmi = {**basic("alice"), **VERSION, "Content-Type": CONTAINER}
    refused = node.client.put("/cdmi/d/", headers=cdmi, data=cdmi_json(5))
    assert refused.status_code == 400
    assert "JSON nested deeper than 4 levels" in refused.get_data(as_text=True)
    assert node.client.put("/cdmi/d/", headers=cdmi, data=cdmi_json(4)).status_code == 201


def test_bodies_over_the_limit_are_413_chunked_or_not(make_node: NodeFactory) -> None:
    node = make_node(HOST, max_body_bytes=1000, cdmi_max_json_bytes=2000)
    occi_body = "Category: " + category("compute", INFRA, "kind") + "\r\n" + " " * 1200
    cdmi_body = b"{}" + b" " * 3000
    chunked = {"Transfer-Encoding": "chunked"}
    streaming = {"wsgi.input_terminated": True}
    occi = {**basic("alice"), "Content-Type": "text/plain"}
    cdmi = {**basic("alice"), **VERSION, "Content-Type": CONTAINER}
    for response in (
        node.client.post("/compute/", headers=occi, data=occi_body),
        node.client.post("/compute/", headers={**occi, **chunked},
                         input_stream=io.BytesIO(occi_body.encode()), environ_overrides=streaming),
        node.client.put("/cdmi/big/", headers=cdmi, data=cdmi_body),
        node.client.put("/cdmi/big/", headers={**cdmi, **chunked},
                        input_stream=io.BytesIO(cdmi_body), environ_overrides=streaming),
    ):
        assert response.status_code == 413, response.get_data(as_text=True)
        assert "too large" in response.get_data(as_text=True)
    assert node.client.get("/cdmi/big/", headers={**basic("alice"), **VERSION}).status_code == 404
    # a chunked body that fits is read whole
    fits = node.client.put("/cdmi/small/", headers={**cdmi, **chunked},
                           input_stream=io.BytesIO(b"{}" + b" " * 1998),
                           environ_overrides=streaming)
    assert fits.status_code == 201, fits.get_data(as_text=True)


# --- secrets stay out of logs ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "kept"), [
    ("Authorization: Basic YWxpY2U6czNjcmV0LXB3", "Authorization: Basic [redacted]"),
    ("{'Authorization': 'Bearer abc.def', 'X-Auth-Token': 'tok'}",
     "{'Authorization': 'Bearer [redacted]', 'X-Auth-Token': '[redacted]'}"),
    ("[('Authorization', 'Basic YWxpY2U6cw=='), ('Host', 'h')]",
     "[('Authorization', 'Basic [redacted]'), ('Host', 'h')]"),
    ("{'HTTP_AUTHORIZATION': 'Basic YWxpY2U6cw==', 'HTTP_X_AUTH_TOKEN': 'zz'}",
     "{'HTTP_AUTHORIZATION': 'Basic [redacted]', 'HTTP_X_AUTH_TOKEN': '[redacted]'}"),
    ('user=alice&password=hunter22&x=1', "user=alice&password=[redacted]&x=1"),
    ('{"password": "hunter22", "user": "alice"}', '{"password": "[redacted]", "user": "alice"}'),
    ("GET /?access_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln HTTP/1.1",
     "GET /?access_token=[redacted] HTTP/1.1"),
    ("kid eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl seen", "kid [redacted] seen"),
    ('WWW-Authenticate: Basic realm="nimbo"', 'WWW-Authenticate: Basic realm="nimbo"'),
    ("wrong user name or password, an unknown or expired token",
     "wrong user name or password, an unknown or expired token"),
])
def test_redaction_of_credentials_in_text(text: str, kept: str) -> None:
    assert redact(text) == kept


def test_no_password_or_token_reaches_the_logs(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    node = make_node(HOST, auth_methods="local,token")
    secret = "Zq8-very-secret-passphrase"
    with node.store.session(write=True) as session:
        session.add(User(name="carol", password_hash=hash_password(secret)))
    good, bad = credentials("carol", secret), credentials("carol", secret + "x")
    caplog.set_level(logging.DEBUG)
    assert node.client.get("/compute/", headers=bad).status_code == 401
    assert node.client.get("/compute/", headers=good).status_code == 200
    issued = node.client.post("/auth/tokens", headers=good)
    assert issued.status_code == 201
    token = issued.get_json()["token"]
    assert node.client.get("/compute/", headers={"X-Auth-Token": token}).status_code == 200
    assert node.client.get("/compute/", headers={"X-Auth-Token": token + "x"}).status_code == 401
    broken = broken_client(node)  # its error message carries every request header
    assert broken.get("/compute/c1", headers=good).status_code == 500
    assert broken.get("/compute/c1", headers={"X-Auth-Token": token}).status_code == 500
    logging.getLogger("tests").warning("a careless %s", {"password": secret, "token": token})

    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "[redacted]" in logged
    for leak in (secret, token, good["Authorization"].split()[1],
                 bad["Authorization"].split()[1]):
        assert leak not in logged


# --- unknown user and wrong password --------------------------------------------------------


def test_unknown_user_and_wrong_password_get_the_same_answer_in_similar_time(
    make_node: NodeFactory,
) -> None:
    node = make_node(HOST, rate_limit_auth_failures="")
    client = node.client
    unknown, wrong = credentials("nobody-here", PASSWORD), credentials("alice", "not-" + PASSWORD)

    def attempt(headers: dict[str, str]) -> tuple[float, Any]:
        started = time.perf_counter()
        response = client.get("/compute/", headers=headers)
        return time.perf_counter() - started, response

    for headers in (unknown, wrong):  # warm both paths
        attempt(headers)
    times: dict[str, list[float]] = {"unknown": [], "wrong": []}
    last: dict[str, Any] = {}
    for _ in range(10):  # interleaved, so that load on the machine falls on both alike
        for name, headers in (("unknown", unknown), ("wrong", wrong)):
            elapsed, last[name] = attempt(headers)
            times[name].append(elapsed)
    first, second = last["unknown"], last["wrong"]
    assert first.status_code == second.status_code == 401
    assert first.get_data() == second.get_data()
    assert dict(first.headers) == dict(second.headers)
    ratio = statistics.median(times["unknown"]) / statistics.median(times["wrong"])
    assert 1 / 3 < ratio < 3, times  # both pay one scrypt check (tens of milliseconds)


# --- a real gunicorn, as nimbo serve runs it ------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, redis_url: str) -> Iterator[Served]:
    limits = {"NIMBO_AUDIT_FLUSH_SECONDS": "3600", "NIMBO_REQUEST_LINE_MAX": "2048",
              "NIMBO_REQUEST_FIELDS_MAX": "40", "NIMBO_REQUEST_FIELD_BYTES": "4096"}
    with gunicorn(tmp_path, redis_url, settings=limits) as server:
        yield server


LONG_LINE = b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
REFUSED_BY_THE_SERVER = [  # (request, status, the whole body) with the limits of ``served``
    (LONG_LINE, 414, "request line too long: at most 2048 bytes"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n", 431,
     "header field too long: at most 4096 bytes (name, value and line end)"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(50))
     + b"\r\n", 431, "too many header fields: at most 40"),
    (b"GET /\r\nHost: x\r\n\r\n", 400, "bad request line 'GET /': expected a method, a target "
     "and HTTP/1.0 or HTTP/1.1, separated by single spaces, ending in CRLF"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400,
     "bad header field name 'Bad Name'"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501,
     "unsupported transfer coding in 'br, chunked': send the body chunked or with a "
     "Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
     "bad Content-Length header field: a body's length is given once and unambiguously (one "
     "Content-Length, or a Transfer-Encoding ending in chunked, not both)"),
]


def assert_server_answer(answer: Answer, status: int, message: str, *, hsts: str | None) -> None:
    """One of gunicorn's own answers, as GatewayWorker writes it."""
    assert answer.status == status, answer.raw[:300]
    assert answer.text == message + "\n"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["content-length"] == str(len(answer.body))
    assert answer.headers["server"] == SERVER_HEADER
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["connection"] == "close"
    for name, value in SECURITY_HEADERS:
        assert answer.headers[name.lower()] == value, answer.raw[:300]
    assert answer.headers.get("strict-transport-security") == hsts


def test_the_servers_own_answers_carry_the_security_headers_and_say_what_was_wrong(
    served: Served,
) -> None:
    for sent, status, message in REFUSED_BY_THE_SERVER:
        assert_server_answer(served.answer(sent), status, message, hsts=None)
    log = served.output.read_text()
    assert "Invalid request from ip=127.0.0.1" in log  # still logged as gunicorn did
    assert '"GET /aaaa' not in log  # no request was parsed, so no access line
    assert "Traceback" not in log


@pytest.mark.parametrize(("error", "status", "message"), [
    (gunicorn_errors.LimitRequestHeaders("max buffer headers"), 431,
     "request header section too large: at most 40 fields of at most 4096 bytes"),
    (gunicorn_errors.InvalidHTTPVersion("HTTP/3.0"), 400,
     "unsupported HTTP version 'HTTP/3.0': HTTP/1.0 or HTTP/1.1"),
    (gunicorn_errors.InvalidRequestLine("x" * 500), 400, "bad request line 'xxx"),
    (gunicorn_errors.InvalidHeader("bare LF as line terminator"), 400,
     "bad header section: lines end with CRLF, not a bare LF"),
    (gunicorn_errors.ExpectationFailed("fast"), 417,
     "unsupported expectation 'fast': only 100-continue"),
    (ssl.SSLError(1, "[SSL] decryption failed"), 403, "TLS error:"),
    (gunicorn_errors.InvalidResponseHeader("X-Bad"), 500, ""),  # the app's fault
    (gunicorn_errors.ConfigurationProblem("SCRIPT_NAME"), 500, ""),
    (RuntimeError("ours"), 500, ""),
])
def test_what_the_worker_says_of_each_error(error: Exception, status: int, message: str) -> None:
    limits = SimpleNamespace(limit_request_line=2048, limit_request_fields=40,
                             limit_request_field_size=4096)
    said = describe(error, limits)
    assert said[0] == status
    assert said[1].startswith(message) and (message or said[1] == "")
    assert len(said[1]) < 200 and "\n" not in said[1]  # client input is cut short and quoted


@pytest.fixture
def tls_served(tmp_path: Path, redis_url: str) -> Iterator[Served]:
    ca = certs.CertificateAuthority(tmp_path / "pki", certs.name(("O", "nimbostratus tests"),
                                                             ("CN", "CA")))
    server = ca.server("server")
    limits = {"NIMBO_REQUEST_LINE_MAX": "2048", "NIMBO_HSTS_SECONDS": "600"}
    with gunicorn(tmp_path, redis_url, settings=limits,
                  tls=(server.cert_file, server.key_file, ca.cert_file)) as served:
        yield served


def test_over_tls_the_servers_own_answers_carry_hsts_like_the_apps(tls_served: Served) -> None:
    too_long = tls_served.answer(LONG_LINE)
    assert_server_answer(too_long, 414, "request line too long: at most 2048 bytes",
                         hsts="max-age=600")
    by_the_app = tls_served.answer(b"GET /-/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert by_the_app.status == 401
    for name in ("strict-transport-security", *(n.lower() for n, _ in SECURITY_HEADERS)):
        assert by_the_app.headers[name] == too_long.headers[name]  # one set of fields


def test_gunicorn_access_log_and_audit_flush_on_shutdown(served: Served, redis_url: str) -> None:
    base = served.url
    auth = ("alice", PASSWORD)
    answer = requests.get(f"{base}/compute/?access_token=eyJtoken.eyJpart.sig&x=1", auth=auth,
                          timeout=10)
    assert answer.status_code == 200
    for name, value in SECURITY_HEADERS:
        assert answer.headers[name] == value
    created = requests.post(f"{base}/-/", auth=auth, timeout=10, headers={
        "Content-Type": "text/plain"},
        data='Category: web; scheme="http://example.com/t#"; class="mixin"; location="/web/"')
    assert created.status_code == 200, created.text
    with redis.Redis.from_url(redis_url) as client:
        assert client.llen(PENDING) == 1  # recorded, not flushed yet (every 3600 s)

        os.killpg(served.process.pid, signal.SIGTERM)  # a normal shutdown
        assert served.process.wait(timeout=60) == 0
        assert client.llen(PENDING) == 0
    store = Store(served.database)
    with store.session() as session:
        rows = list(session.scalars(select(AuditRecord)))
    store.dispose()
    assert [(r.principal, r.action, r.status) for r in rows] == [("alice", "mixin-add", 200)]
    log = served.output.read_text()
    assert "GET /compute/?access_token=[redacted]&x=1" in log, log
    assert "eyJtoken" not in log
