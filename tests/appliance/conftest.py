"""The test appliance, built once per session, and a reachable ``qemu:///system``.

The fixtures skip (saying why) only when libvirt or QEMU cannot run here; a failing appliance
build fails the tests that need it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD_SCRIPT = ROOT / "appliances" / "build-test-appliance"
IMAGE = ROOT / "appliances" / "cache" / "nimbo-test-appliance.qcow2"
URI = "qemu:///system"
QEMU = "qemu-system-x86_64"


def _open(libvirt: Any) -> Any | None:
    try:
        return libvirt.open(URI)
    except libvirt.libvirtError:
        return None


@pytest.fixture(scope="session")
def qemu_connection() -> Iterator[Any]:
    """A connection to ``qemu:///system``, starting virtlogd/libvirtd when they are not running."""
    libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed")
    conn = _open(libvirt)
    if conn is None:
        if os.geteuid() != 0 or shutil.which("libvirtd") is None:
            pytest.skip("libvirtd is not running and cannot be started here (root + libvirtd)")
        for daemon in ("virtlogd", "libvirtd"):
            if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode:
                subprocess.run([daemon, "-d"], check=False)
        for _ in range(50):
            if (conn := _open(libvirt)) is not None:
                break
            time.sleep(0.1)
        else:
            pytest.skip(f"libvirtd started but {URI} is still unreachable")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def appliance_image(qemu_connection: Any) -> Path:
    """The appliance image, built (or found up to date) by appliances/build-test-appliance."""
    result = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{BUILD_SCRIPT} failed (exit {result.returncode}):\n{result.stderr}")
    assert IMAGE.is_file(), f"{BUILD_SCRIPT} succeeded but left no {IMAGE}"
    return IMAGE
