"""A real throwaway node for the live CDMI tests, started once per session.

``nimbo up`` runs in a temporary data directory on a free loopback port, on the in-memory
libvirt host, with two API workers, exactly as ``benchmarks/occi_api.py`` starts one: it
waits for ``DIR/admin-password`` and for the API to answer, then adds a second, unprivileged
user with ``nimbo users add`` (password on standard input). Teardown sends SIGINT to
``nimbo up`` (it stops its redis, worker and gunicorn), then SIGTERM/SIGKILL to the process
group and to every descendant still alive (``nimbo up`` starts its children in new
sessions, so they are not in its group).

Only a missing ``redis-server`` skips (``scripts/setup`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.cdmi_live.client import CdmiClient

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
NIMBO = VENV_BIN / "nimbo"
HOST = "127.0.0.1"
MEMORY_URI = "memory://live?cores=64&memory_mib=65536"
API_WORKERS = 2
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
CDMI_ROOT = "/cdmi/"
SECOND_USER = "bob"


@dataclass(frozen=True)
class User:
    name: str
    password: str


@dataclass(frozen=True)
class StoreState:
    """What a request may change: the blob files (relative name → size) and the number of
    rows in ``cdmi_objects``."""

    blobs: tuple[tuple[str, int], ...]
    rows: int


@dataclass(frozen=True)
class LiveNode:
    pid: int  # of `nimbo up`, the leader of its process group
    port: int
    data_dir: Path
    log: Path
    admin: User
    user: User

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def cdmi_url(self) -> str:
        return self.base_url + CDMI_ROOT

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def database(self) -> Path:
        return self.data_dir / "nimbo.sqlite3"

    def state(self) -> StoreState:
        """The blob directory listed recursively (files with sizes) and the row count of
        ``cdmi_objects``, read through a read-only SQLite connection."""
        blobs = []
        for path in sorted(self.blob_dir.rglob("*")):
            with contextlib.suppress(FileNotFoundError):
                if path.is_file():
                    blobs.append((str(path.relative_to(self.blob_dir)), path.stat().st_size))
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)
        try:
            (rows,) = connection.execute("SELECT count(*) FROM cdmi_objects").fetchone()
        finally:
            connection.close()
        return StoreState(tuple(blobs), int(rows))

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


# --- processes -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, start time) of every process, from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` with its start time (to never signal a reused pid)."""
    table = _processes()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, (parent, started) in table.items():
            if parent == current and child not in found:
                found[child] = started
                frontier.append(child)
    return found


def _exited(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether ``process`` exited within ``timeout``, without reaping it: while it is an
    unreaped zombie its pid, and so its process group id, cannot be taken by anyone else."""
    deadline = time.monotonic() + timeout
    while True:
        if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to ``nimbo up`` (it stops what it started), then SIGTERM and SIGKILL to its
    process group, then to every descendant still alive (they run in sessions of their own)."""
    family = descendants(process.pid)
    if process.returncode is None:
        if not _exited(process, 0):
            process.send_signal(signal.SIGINT)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if _exited(process, STOP_TIMEOUT if sig == signal.SIGTERM else 5.0):
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # stragglers in its group; the leader is
            # still unreaped, so the group id is still ours
        process.wait()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        table = _processes()
        leftovers = [
            pid for pid, started in family.items() if table.get(pid, (0, ""))[1] == started
        ]
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while leftovers and time.monotonic() < deadline:
            table = _processes()
            leftovers = [pid for pid in leftovers if table.get(pid, (0, ""))[1] == family[pid]]
            time.sleep(0.1)


def _wait_until(
    what: str, ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"{what} did not come up; last lines of {log}:\n{tail}")
        time.sleep(0.2)


def _answers(url: str, auth: tuple[str, str]) -> bool:
    try:
        with requests.get(url, auth=auth, timeout=5, headers={"Accept": "text/plain"}) as reply:
            return reply.status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (run scripts/setup)")
    tmp = tmp_path_factory.mktemp("cdmi-live")
    data_dir, log = tmp / "data", tmp / "nimbo.log"
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NIMBO_") and k != "MALLOC_ARENA_MAX"
    }
    env.update(
        NIMBO_LIBVIRT_URI=MEMORY_URI,
        NIMBO_API_WORKERS=str(API_WORKERS),
        NIMBO_DATA_DIR=str(data_dir),
    )
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [str(NIMBO), "up", "--data-dir", str(data_dir), "--listen", f"{HOST}:{port}"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        password_file = data_dir / "admin-password"
        _wait_until(
            "nimbo up (admin password)",
            lambda: password_file.exists() and bool(password_file.read_text().strip()),
            process,
            log,
        )
        admin = User("admin", password_file.read_text().strip())
        _wait_until(
            "nimbo up (GET /-/)",
            lambda: _answers(f"http://{HOST}:{port}/-/", (admin.name, admin.password)),
            process,
            log,
        )
        user = User(SECOND_USER, "live-" + uuid.uuid4().hex)
        subprocess.run(
            [str(NIMBO), "users", "add", user.name, "--data-dir", str(data_dir)],
            input=(user.password + "\n").encode(),
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield LiveNode(process.pid, port, data_dir, log, admin, user)
    finally:
        _stop(process)


# --- clients ---------------------------------------------------------------------------------


def _session(user: User) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = (user.name, user.password)
        session.headers["User-Agent"] = "nimbo-cdmi-live-tests/1"
        yield session


@pytest.fixture(scope="session")
def admin_http(live_node: LiveNode) -> Iterator[requests.Session]:
    """Plain HTTP as the administrator."""
    yield from _session(live_node.admin)


@pytest.fixture(scope="session")
def user_http(live_node: LiveNode) -> Iterator[requests.Session]:
    """Plain HTTP as the unprivileged second user."""
    yield from _session(live_node.user)


@pytest.fixture(scope="session")
def cdmi(live_node: LiveNode, admin_http: requests.Session) -> CdmiClient:
    return CdmiClient(admin_http, live_node.cdmi_url)


@pytest.fixture(scope="session")
def user_cdmi(live_node: LiveNode, user_http: requests.Session) -> CdmiClient:
    return CdmiClient(user_http, live_node.cdmi_url)


@pytest.fixture
def workdir(cdmi: CdmiClient) -> str:
    """A fresh container of the administrator's for one test: ``t-<hex>/`` below the root."""
    name = f"t-{uuid.uuid4().hex[:12]}/"
    response = cdmi.create_container(name)
    assert response.status_code == 201, response.text
    return name
