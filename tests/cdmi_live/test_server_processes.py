"""What ``nimbo up`` runs: its API processes are gunicorn workers with few malloc arenas
(setting ``api_malloc_arenas``), which keeps a worker's memory flat while it streams a large
object (benchmarks/cdmi_io.py measures it)."""

from __future__ import annotations

from pathlib import Path

from tests.cdmi_live.conftest import LiveNode, descendants


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _gunicorn_processes(ancestor: int) -> list[int]:
    found = []
    for pid in descendants(ancestor):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"gunicorn" in command:
            found.append(pid)
    return found


def test_the_api_processes_run_with_two_malloc_arenas(live_node: LiveNode) -> None:
    processes = _gunicorn_processes(live_node.pid)
    assert len(processes) >= 2, "no gunicorn master and workers below nimbo up"
    for pid in processes:
        assert _environ(pid).get("MALLOC_ARENA_MAX") == "2", pid
