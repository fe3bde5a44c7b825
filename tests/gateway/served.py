"""A real gunicorn with the settings of ``nimbo serve`` (``gateway.gunicorn_conf``, one worker)
on 127.0.0.1, over HTTP or HTTPS, and raw requests to it: what the tests of the server's own
answers (test_hardening) and of refusals before a body is read (test_quotas) talk to."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from auth.passwords import hash_password
from gateway.store.db import Store
from gateway.store.models import User
from tests.gateway.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Answer:
    """An HTTP answer read off a socket: status, header fields (names lower-cased) and body."""

    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Answer:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), raw[:200]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"{name} twice in {head!r}"
            headers[name.lower()] = value.strip()
        return cls(int(lines[0].split()[1]), headers, body, raw)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]
    output: Path
    database: str
    data_dir: Path
    context: ssl.SSLContext | None = None  # a client context trusting the server (HTTPS)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        """A connection; over TLS when the server speaks it."""
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        if self.context is not None:
            return self.context.wrap_socket(connection, server_hostname="127.0.0.1")
        return connection

    def raw(self, data: bytes) -> bytes:
        """Send ``data``, read until the server closes."""
        with self.connect() as connection:
            connection.sendall(data)
            return read_all(connection)

    def answer(self, data: bytes) -> Answer:
        return Answer.parse(self.raw(data))


def read_all(connection: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):  # a close with our bytes left unread
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def read_answer(connection: socket.socket) -> Answer:
    """One answer read off an open connection: its head, then Content-Length bytes (the
    server may keep the connection open)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before a whole head: {data!r}"
        data += chunk
    answer = Answer.parse(data)
    while len(answer.body) < int(answer.headers.get("content-length", "0")):
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before the whole body: {data!r}"
        answer = Answer.parse(answer.raw + chunk)
    return answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def gunicorn(
    directory: Path,
    redis_url: str,
    *,
    settings: Mapping[str, str] | None = None,
    tls: tuple[Path, Path, Path] | None = None,
) -> Iterator[Served]:
    """gunicorn as ``nimbo serve`` runs it, with a store holding alice (password
    :data:`PASSWORD`); ``settings``: more NIMBO_* variables; ``tls``: (certificate, key, CA
    that signed it). Killed (its whole process group) when the block ends."""
    database = f"sqlite:///{directory / 'nimbo.sqlite3'}"
    store = Store(database)
    store.create_schema()
    with store.session(write=True) as session:
        session.add(User(name="alice", password_hash=hash_password(PASSWORD)))
    store.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBO_")} | {
        "NIMBO_DATA_DIR": str(directory / "data"),
        "NIMBO_DATABASE_URL": database,
        "NIMBO_REDIS_URL": redis_url,
        "NIMBO_HOST_NAME": "host-a",
        "NIMBO_LOG_LEVEL": "INFO",
        **(settings or {}),
    }
    context = None
    if tls is not None:
        env |= {"NIMBO_TLS_CERT": str(tls[0]), "NIMBO_TLS_KEY": str(tls[1])}
        context = ssl.create_default_context(cafile=str(tls[2]))
    output = directory / "gunicorn.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "python:gateway.gunicorn_conf",
             "--workers", "1", "--bind", f"127.0.0.1:{port}", "gateway.wsgi:app"],
            env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    server = Served(port, process, output, database, directory / "data", context, env)
    try:
        _wait(server, str(tls[2]) if tls else True)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait(server: Served, verify: str | bool) -> None:
    """Until the app answers (401 to an anonymous request of the query interface)."""
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(requests.ConnectionError):
            answer = requests.get(f"{server.url}/-/", timeout=5, verify=verify)
            if answer.status_code == 401:
                return
        assert server.process.poll() is None, server.output.read_text()
        assert time.monotonic() < deadline, server.output.read_text()
        time.sleep(0.1)
