"""A worker gives way: it lowers its own CPU priority (setting ``worker_nice``) before it runs a
job, so that on an all-in-one node the API answers first and on a hypervisor host the guests do.
Run in child processes: a process cannot take its niceness back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.libvirt]


def _in_child(code: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_a_burst_worker_runs_at_the_configured_niceness(redis_url: str, tmp_path: Path) -> None:
    code = (
        "import os\n"
        "from gateway.config import Config\n"
        "from gateway.worker import run_worker\n"
        f"config = Config({{'data_dir': {str(tmp_path)!r}, 'redis_url': {redis_url!r},"
        " 'worker_nice': 7, 'log_level': 'WARNING'})\n"
        "run_worker(config, 'host-a', 'test:///default', burst=True)\n"
        "import gc\n"
        "from gateway.collector import THRESHOLDS\n"
        "print(os.getpriority(os.PRIO_PROCESS, 0), gc.get_threshold() == THRESHOLDS,"
        " gc.get_freeze_count() > 0)\n"
    )
    assert _in_child(code) == "7 True True"  # and its garbage collector settled (gateway.collector)


@pytest.mark.parametrize(("before", "asked", "after"), [(0, 10, 10), (15, 10, 15), (3, 0, 3)])
def test_lower_priority_never_makes_a_process_less_nice(
    before: int, asked: int, after: int
) -> None:
    code = (
        "import os\n"
        "from gateway.worker import lower_priority\n"
        f"os.nice({before})\n"
        f"print(lower_priority({asked}))\n"
    )
    assert _in_child(code) == str(after)


def test_worker_nice_outside_0_to_19_is_refused() -> None:
    from gateway.config import Config
    from gateway.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"worker_nice must be in 0\.\.19"):
        Config({"worker_nice": 20})
