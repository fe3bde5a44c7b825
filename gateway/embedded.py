"""Processes ``nimbo up`` starts and stops: a private redis-server, the worker, the API."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from gateway.errors import ConfigurationError, ServiceUnavailable


def start_redis(data_dir: Path, socket: Path) -> subprocess.Popen[bytes]:
    """A redis-server on a unix socket only (no TCP port), persisting jobs in ``data_dir``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigurationError(
            "redis-server is not installed (run `make setup`), or set "
            "NIMBO_REDIS_URL to an existing Redis"
        )
    if socket.exists():
        try:
            redis.Redis(unix_socket_path=str(socket)).ping()
            raise ConfigurationError(
                f"a redis-server already answers on {socket}: is another "
                "`nimbo up` running on this data directory?"
            )
        except redis.ConnectionError:
            socket.unlink()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis(unix_socket_path=str(socket)).ping()
            return process
        except (redis.ConnectionError, FileNotFoundError):
            if process.poll() is not None:
                break
            time.sleep(0.05)
    process.kill()
    raise ServiceUnavailable(f"redis-server did not start; see {data_dir / 'redis.log'}")


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

