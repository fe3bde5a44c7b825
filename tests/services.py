"""Throwaway real services for tests: a redis-server and a PostgreSQL cluster.

Each one lives in a temporary directory, listens only on a unix socket there (no TCP port at
all), and is stopped and removed by ``stop()``. ``tests/conftest.py`` wraps them in
session-scoped fixtures.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

START_TIMEOUT = 30.0
"""Seconds a service may take to answer after it was started."""

SOCKET_PATH_MAX = 100
"""Longest unix socket path we use (the kernel limit is 107 bytes)."""


class ServiceError(Exception):
    """A throwaway service could not be started."""


class ServiceBinaryMissing(ServiceError):
    """The service's program is not installed on this machine (scripts/setup installs it)."""


def _find_binary(name: str, *patterns: str) -> str:
    """Return ``name`` from PATH, else the newest match of the glob ``patterns``."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in patterns:
        matches = sorted(glob.glob(pattern), key=_version_key)
        if matches:
            return matches[-1]
    raise ServiceBinaryMissing(f"{name} not found in PATH or {', '.join(patterns)}")


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in Path(path).parts if part.isdigit())


def _short_dir(preferred: Path, prefix: str) -> tuple[Path, bool]:
    """Return a directory for sockets: ``preferred`` if its paths are short enough.

    The second element tells whether the directory was made here (and must be removed).
    """
    if len(str(preferred)) + 20 <= SOCKET_PATH_MAX:
        return preferred, False
    return Path(tempfile.mkdtemp(prefix=prefix)), True


@dataclass
class RedisServer:
    """A private redis-server on a unix socket, without persistence."""

    process: subprocess.Popen[bytes]
    socket_path: Path
    directory: Path
    owns_directory: bool = False

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_redis(tmpdir: Path) -> RedisServer:
    """Start redis-server in ``tmpdir`` on ``<dir>/redis.sock`` and wait until it answers PING."""
    binary = _find_binary("redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server")
    directory, owns = _short_dir(Path(tmpdir), "nimbo-redis-")
    socket_path = directory / "redis.sock"
    args = [
        binary,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
        "--logfile", str(directory / "redis.log"),
        "--daemonize", "no",
    ]  # fmt: skip
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    server = RedisServer(process, socket_path, directory, owns_directory=owns)
    deadline = time.monotonic() + START_TIMEOUT
    error: Exception | None = None
    while True:
        try:
            with server.client() as client:
                if client.ping():
                    return server
        except redis.RedisError as exc:
            error = exc
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            log = _tail(directory / "redis.log")
            raise ServiceError(f"redis-server did not answer PING ({error}):\n{log}")
        time.sleep(0.05)


@dataclass
class PostgresServer:
    """A private PostgreSQL cluster listening only on a unix socket directory."""

    pg_ctl: str
    data_dir: Path
    socket_dir: Path
    base_dir: Path
    run_as: list[str] = field(default_factory=list)
    database: str = "nimbo"
    user: str = "postgres"
    owns_base_dir: bool = False

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of the test database."""
        return f"postgresql+psycopg://{self.user}@/{self.database}?host={self.socket_dir}"

    @property
    def conninfo(self) -> str:
        """libpq connection string of the test database."""
        return f"host={self.socket_dir} user={self.user} dbname={self.database}"

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if self.owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def start_postgres(tmpdir: Path, database: str = "nimbo") -> PostgresServer:
    """Create a cluster (trust auth, user ``postgres``), start it, create ``database``.

    PostgreSQL refuses to run as root: as root, the cluster lives in a fresh directory under
    the system temp dir owned by the ``postgres`` OS user (``tmpdir`` may sit below a
    root-only directory), and initdb/pg_ctl run through ``runuser -u postgres``.
    """
    patterns = ("/usr/lib/postgresql/*/bin/{}",)
    initdb = _find_binary("initdb", *(p.format("initdb") for p in patterns))
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    if not os.access(pg_ctl, os.X_OK):
        pg_ctl = _find_binary("pg_ctl", *(p.format("pg_ctl") for p in patterns))

    run_as: list[str] = []
    if os.geteuid() == 0:
        owner = _postgres_os_user()
        base_dir = Path(tempfile.mkdtemp(prefix="nimbo-pg-"))
        os.chown(base_dir, owner.pw_uid, owner.pw_gid)
        run_as = [_find_binary("runuser", "/usr/sbin/runuser", "/sbin/runuser"), "-u"]
        run_as += [owner.pw_name, "--"]
        owns = True
    else:
        base_dir, owns = _short_dir(Path(tmpdir), "nimbo-pg-")
    server = PostgresServer(
        pg_ctl=pg_ctl,
        data_dir=base_dir / "data",
        socket_dir=base_dir / "sock",
        base_dir=base_dir,
        run_as=run_as,
        database=database,
        owns_base_dir=owns,
    )
    try:
        _run([*run_as, "mkdir", "-p", str(server.socket_dir)], "mkdir")
        initdb_args = ["-D", str(server.data_dir), "-U", server.user, "-A", "trust"]
        initdb_args += ["-E", "UTF8", "--locale=C", "--no-sync"]
        _run([*run_as, initdb, *initdb_args], "initdb")
        options = f"-c listen_addresses='' -c unix_socket_directories={server.socket_dir}"
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = base_dir / "postgres.log"
        start_args = ["-D", str(server.data_dir), "-l", str(log), "-o", options]
        start_args += ["-w", "-t", str(int(START_TIMEOUT)), "start"]
        _run([*run_as, pg_ctl, *start_args], "pg_ctl start", log=log)
        _create_database(server)
    except BaseException:
        server.stop()
        raise
    return server


def _postgres_os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceBinaryMissing(
            "running as root and there is no 'postgres' OS user to run PostgreSQL as "
            "(Debian's postgresql package creates it)"
        ) from exc


def _create_database(server: PostgresServer) -> None:
    import psycopg

    admin = f"host={server.socket_dir} user={server.user} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{server.database}"')


def _run(args: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        details = (result.stdout + result.stderr).strip()
        if log is not None:
            details += "\n" + _tail(log)
        raise ServiceError(f"{what} failed (exit {result.returncode}): {details}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"
