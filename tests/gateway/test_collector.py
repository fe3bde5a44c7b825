"""The long-running processes settle their garbage collector once loaded (gateway.collector):
what is alive then is frozen and the thresholds are raised. Run in child processes: a frozen
collector cannot be thawed back into the state this test process had."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway import collector

ROOT = Path(__file__).resolve().parents[2]


def _in_child(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_settle_freezes_what_is_alive_and_raises_the_thresholds() -> None:
    code = (
        "import gc\n"
        "kept = [{'n': i} for i in range(5000)]\n"
        "from gateway.collector import settle, THRESHOLDS\n"
        "before = gc.get_freeze_count()\n"
        "settle()\n"
        "print(before, gc.get_freeze_count() >= 5000, gc.get_threshold() == THRESHOLDS)\n"
    )
    assert _in_child(code) == "0 True True"


def test_cycles_made_after_settling_are_still_collected() -> None:
    code = (
        "import gc, weakref\n"
        "from gateway.collector import settle\n"
        "settle()\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.other, b.other = b, a\n"
        "gone = weakref.ref(a)\n"
        "del a, b\n"
        "gc.collect()\n"
        "print(gone() is None)\n"
    )
    assert _in_child(code) == "True"


def test_the_thresholds_are_above_cpythons_defaults() -> None:
    assert collector.THRESHOLDS[0] > 700
    assert collector.THRESHOLDS[1:] >= (10, 10)


def test_each_api_worker_settles_once_its_app_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import audit, gunicorn_conf
    from gateway.services import cdmi_sweep

    calls: list[str] = []
    monkeypatch.setattr(collector, "settle", lambda: calls.append("settle"))
    monkeypatch.setattr(audit, "start_flusher", lambda app: calls.append("flusher"))
    monkeypatch.setattr(cdmi_sweep, "sweep_in_background", lambda app: calls.append("sweep"))

    class Worker:
        wsgi: Any = object()
        age = 2

    gunicorn_conf.post_worker_init(Worker())

    assert calls == ["settle", "flusher"]
