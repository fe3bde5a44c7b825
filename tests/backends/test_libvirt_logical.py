"""The logical (LVM) pool path: XML and names everywhere, real LVM where device-mapper exists."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

libvirt = pytest.importorskip("libvirt")

from backends.base import ComputeSpec, DiskSpec, VolumeSpec  # noqa: E402
from backends.libvirt import xml  # noqa: E402
from backends.libvirt.driver import LibvirtDriver  # noqa: E402
from tests.backends.conftest import host_file_uri  # noqa: E402

pytestmark = pytest.mark.libvirt

DM_REASON = "no /dev/mapper/control: device-mapper unavailable"
MIB = 1024**2


@pytest.fixture
def driver() -> Iterator[LibvirtDriver]:
    """A logical pool on the volume group ``nimbo`` of a simulated host."""
    driver = LibvirtDriver(host_file_uri("host-b"), pool_type="logical", pool_path="/dev/nimbo")
    yield driver
    driver.close()


def test_logical_volumes_are_raw_lvs_named_without_suffix(driver: LibvirtDriver) -> None:
    origin = driver.ensure_volume(VolumeSpec(id="image", size_bytes=32 * MIB))
    assert origin.path == "/dev/nimbo/nimbo-image"
    clone = driver.ensure_volume(
        VolumeSpec(id="clone", size_bytes=32 * MIB, backing_path=origin.path)
    )
    assert clone.path == "/dev/nimbo/nimbo-clone"
    assert sorted(v.id for v in driver.list_volumes()) == ["clone", "image"]
    pool_text = driver._pool().XMLDesc(0)
    assert "<name>nimbo</name>" in pool_text and "type='logical'" in pool_text


def test_copy_is_a_raw_lv_without_origin(driver: LibvirtDriver) -> None:
    origin = driver.ensure_volume(VolumeSpec(id="image", size_bytes=32 * MIB))
    driver.ensure_volume(VolumeSpec(id="clone", size_bytes=32 * MIB, backing_path=origin.path))
    copy = driver.copy_volume("clone", "saved")
    assert (copy.path, copy.format) == ("/dev/nimbo/nimbo-saved", "raw")
    assert (copy.capacity_bytes, copy.backing_path) == (32 * MIB, None)
    assert "<backingStore>" not in driver._require_volume("saved").XMLDesc(0)


def test_uploaded_volume_is_an_lv_rounded_up_to_a_mib(driver: LibvirtDriver) -> None:
    info = driver.upload_volume("drive", b"\1" * 3000)
    assert (info.path, info.format, info.capacity_bytes) == ("/dev/nimbo/nimbo-drive", "raw", MIB)
    again = driver.upload_volume("drive", b"\1" * (MIB + 1))
    assert again.capacity_bytes == 2 * MIB
    assert [v.id for v in driver.list_volumes()] == ["drive"]


def test_uploaded_config_drive_is_a_block_cdrom(driver: LibvirtDriver) -> None:
    drive = driver.upload_volume("c1-configdrive", b"\1" * 4096)
    driver.ensure_compute(
        ComputeSpec(id="c1", name="c1", cores=1, memory_mib=64, config_drive=drive.path)
    )
    cdrom = xml.find_disk(driver._require_domain("c1").XMLDesc(0), "sda")
    assert cdrom is not None and (cdrom.get("type"), cdrom.get("device")) == ("block", "cdrom")
    assert cdrom.find("source").get("dev") == "/dev/nimbo/nimbo-c1-configdrive"  # type: ignore[union-attr]
    elsewhere = ComputeSpec(id="c2", name="c2", cores=1, memory_mib=64, config_drive="/srv/c2.iso")
    driver.ensure_compute(elsewhere)
    cdrom = xml.find_disk(driver._require_domain("c2").XMLDesc(0), "sda")
    assert cdrom is not None and cdrom.get("type") == "file"


def test_logical_disks_are_block_devices(driver: LibvirtDriver) -> None:
    spec = ComputeSpec(
        id="c1",
        name="c1",
        cores=1,
        memory_mib=64,
        root_volume_id="image",
        disks=(DiskSpec(volume_id="data", target_dev="vdb"),),
    )
    driver.ensure_compute(spec)
    text = driver._require_domain("c1").XMLDesc(0)
    disk = xml.find_disk(text, "vdb")
    assert disk is not None and disk.get("type") == "block"
    assert disk.find("source").get("dev") == "/dev/nimbo/nimbo-data"  # type: ignore[union-attr]
    assert disk.find("driver").get("type") == "raw"  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/dev/mapper/control").exists(), reason=DM_REASON)
def test_logical_pool_snapshot_clone_on_lvm(tmp_path: Path) -> None:
    vg = f"nimbo{uuid.uuid4().hex[:6]}"
    backing = tmp_path / "pv.img"
    backing.write_bytes(b"")
    os.truncate(backing, 256 * MIB)
    loop = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["vgcreate", vg, loop], check=True, capture_output=True)
    driver = LibvirtDriver(
        "qemu:///system", pool_name=vg, pool_type="logical", pool_path=f"/dev/{vg}"
    )
    try:
        origin = driver.ensure_volume(VolumeSpec(id="image", size_bytes=32 * MIB))
        assert (origin.path, origin.format) == (f"/dev/{vg}/nimbo-image", "raw")
        driver.ensure_volume(VolumeSpec(id="clone", size_bytes=32 * MIB, backing_path=origin.path))
        drive = driver.upload_volume("drive", b"\x5a" * 3000)
        assert drive.capacity_bytes >= MIB  # rounded up to the VG's extent size
        assert Path(drive.path).read_bytes() == b"\x5a" * 3000 + bytes(drive.capacity_bytes - 3000)
        lvs = subprocess.run(
            ["lvs", "--noheadings", "-o", "lv_name,origin", vg], capture_output=True, text=True
        )
        assert "nimbo-clone" in lvs.stdout and "nimbo-image" in lvs.stdout.split("nimbo-clone")[1]
        copy = driver.copy_volume("clone", "copy")
        assert (copy.path, copy.backing_path) == (f"/dev/{vg}/nimbo-copy", None)
        lvs = subprocess.run(
            ["lvs", "--noheadings", "-o", "origin", f"{vg}/nimbo-copy"],
            capture_output=True,
            text=True,
        )
        assert lvs.returncode == 0 and lvs.stdout.strip() == ""  # a plain LV, no snapshot
    finally:
        pool = driver._pool()
        pool.destroy()
        pool.undefine()
        driver.close()
        subprocess.run(["vgremove", "-f", vg], check=False, capture_output=True)
        subprocess.run(["losetup", "-d", loop], check=False)
