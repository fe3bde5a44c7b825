"""What the in-memory driver offers beyond the contract: the ``ex_`` seams tests drive."""

from __future__ import annotations

import pytest

from backends.base import ComputeSpec, VolumeSpec
from backends.memory import MemoryDriver
from gateway.errors import BackendNotFound


@pytest.fixture
def driver() -> MemoryDriver:
    return MemoryDriver("memory://")


def test_uploaded_bytes_are_kept_and_replaced(driver: MemoryDriver) -> None:
    driver.upload_volume("drive", b"first image")
    assert driver.ex_volume_bytes("drive") == b"first image"
    driver.upload_volume("drive", b"second")
    assert driver.ex_volume_bytes("drive") == b"second"
    driver.ensure_volume(VolumeSpec(id="empty", size_bytes=1024))
    assert driver.ex_volume_bytes("empty") == b""


def test_deleted_volume_has_no_bytes(driver: MemoryDriver) -> None:
    driver.upload_volume("drive", b"image")
    driver.delete_volume("drive")
    with pytest.raises(BackendNotFound):
        driver.ex_volume_bytes("drive")
    driver.ensure_volume(VolumeSpec(id="drive", size_bytes=1024))
    assert driver.ex_volume_bytes("drive") == b""  # a new volume, not the old bytes


def test_console_is_set_per_compute_and_forgotten_with_it(driver: MemoryDriver) -> None:
    for compute_id in ("a", "b"):
        driver.ensure_compute(ComputeSpec(id=compute_id, name=compute_id, cores=1, memory_mib=64))
    driver.ex_set_console_log("a", "hello from a\n")
    assert (driver.console_log("a"), driver.console_log("b")) == ("hello from a\n", "")
    driver.delete_compute("a")
    with pytest.raises(BackendNotFound):
        driver.ex_set_console_log("a", "again")
    driver.ensure_compute(ComputeSpec(id="a", name="a", cores=1, memory_mib=64))
    assert driver.console_log("a") == ""
