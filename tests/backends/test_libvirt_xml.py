"""Generated libvirt XML against golden files in tests/fixtures/libvirt/.

To regenerate after an intended change: ``NIMBO_UPDATE_GOLDEN=1 pytest tests/backends``, then
review the diff.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backends.base import ComputeSpec, NetworkSpec, NicSpec, VolumeSpec
from backends.libvirt import xml
from gateway.errors import BackendError
from tests.golden import assert_golden

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "libvirt"

SPEC = ComputeSpec(
    id="4f0c6b3e-1d2a-4c55-9e1f-0a1b2c3d4e5f",
    name="worker node 1",
    cores=2,
    memory_mib=2048,
    root_volume_id="root-1",
    nics=(
        NicSpec(link_id="l1", network_id="net-1", mac="52:54:00:AA:00:01"),
        NicSpec(link_id="l2", network_id="net-2", mac="52:54:00:aa:00:02"),
    ),
    config_drive="/var/lib/nimbostratus/context/4f0c6b3e.iso",
)
DISKS = (
    xml.DiskSource("vda", "/var/lib/nimbostratus/pool/nimbo-root-1.qcow2"),
    xml.DiskSource("vdb", "/var/lib/nimbostratus/pool/nimbo-data-1.qcow2", read_only=True),
)
CONSOLE = "/var/log/libvirt/qemu/nimbo-4f0c6b3e-1d2a-4c55-9e1f-0a1b2c3d4e5f.console.log"


def test_domain() -> None:
    text = xml.domain_xml(SPEC, domain_type="qemu", disks=DISKS, console_path=CONSOLE)
    assert_golden(GOLDEN, "domain-qemu.xml", text)


def test_domain_parses_back() -> None:
    text = xml.domain_xml(SPEC, domain_type="kvm", disks=DISKS, console_path=CONSOLE)
    assert xml.domain_disks(text) == ("vda", "vdb")  # the config drive cdrom is not a disk
    assert xml.domain_macs(text) == ("52:54:00:aa:00:01", "52:54:00:aa:00:02")
    assert xml.domain_entity_id(text) == SPEC.id
    assert xml.domain_size(text) == (2, 2048)


def test_config_drive_is_a_cdrom_on_virtio_scsi() -> None:
    text = xml.domain_xml(SPEC, domain_type="qemu", disks=DISKS, console_path=CONSOLE)
    cdrom = xml.find_disk(text, "sda")
    assert cdrom is not None and cdrom.get("device") == "cdrom"
    assert cdrom.find("target").get("bus") == "scsi"  # type: ignore[union-attr]
    assert '<controller type="scsi" index="0" model="virtio-scsi" />' in text
    without = xml.domain_xml(
        dataclasses.replace(SPEC, config_drive=None),
        domain_type="qemu",
        disks=DISKS,
        console_path=CONSOLE,
    )
    assert "<controller" not in without and 'device="cdrom"' not in without


def test_x86_is_i686() -> None:
    spec = ComputeSpec(id="x", name="x", cores=1, memory_mib=64, architecture="x86")
    text = xml.domain_xml(spec, domain_type="qemu", disks=(), console_path=CONSOLE)
    assert '<type arch="i686">hvm</type>' in text
    with pytest.raises(BackendError, match="architecture"):
        xml.guest_arch("sparc")


def test_device_edits() -> None:
    text = xml.domain_xml(SPEC, domain_type="qemu", disks=DISKS, console_path=CONSOLE)
    disk = xml.disk_element(xml.DiskSource("vdc", "/pool/nimbo-c.qcow2"))
    added = xml.with_device(text, disk)
    assert xml.domain_disks(added) == ("vda", "vdb", "vdc")
    nic = xml.find_nic(added, "52:54:00:aa:00:01")
    assert nic is not None
    assert xml.domain_macs(xml.without_device(added, nic)) == ("52:54:00:aa:00:02",)
    assert xml.domain_disks(xml.without_device(added, disk)) == ("vda", "vdb")


def test_volume_dir() -> None:
    spec = VolumeSpec(id="v1", size_bytes=10 * 1024**3)
    assert_golden(
        GOLDEN, "volume-dir.xml", xml.volume_xml(spec, name="nimbo-v1.qcow2", pool_type="dir")
    )


def test_volume_dir_raw() -> None:
    spec = VolumeSpec(id="v1-configdrive", size_bytes=374784)
    text = xml.volume_xml(
        spec, name="nimbo-v1-configdrive.qcow2", pool_type="dir", image_format="raw"
    )
    assert_golden(GOLDEN, "volume-dir-raw.xml", text)


@pytest.mark.parametrize(
    ("reported", "ours"), [("qcow2", "qcow2"), ("iso", "raw"), ("none", "raw")]
)
def test_volume_format(reported: str, ours: str) -> None:
    text = f"<volume><target><format type='{reported}'/></target></volume>"
    assert xml.volume_format(text) == ours
    assert xml.volume_format("<volume><target/></volume>") == "raw"


def test_console_path() -> None:
    text = xml.domain_xml(SPEC, domain_type="qemu", disks=DISKS, console_path=CONSOLE)
    assert xml.console_path(text) == CONSOLE
    assert xml.console_path("<domain><devices><serial type='pty'/></devices></domain>") is None


def test_volume_dir_clone() -> None:
    spec = VolumeSpec(id="v2", size_bytes=10 * 1024**3, backing_path="/images/debian.qcow2")
    text = xml.volume_xml(spec, name="nimbo-v2.qcow2", pool_type="dir")
    assert_golden(GOLDEN, "volume-dir-clone.xml", text)


def test_volume_logical_snapshot() -> None:
    spec = VolumeSpec(id="v3", size_bytes=10 * 1024**3, backing_path="/dev/nimbo/nimbo-image")
    text = xml.volume_xml(spec, name="nimbo-v3", pool_type="logical")
    assert_golden(GOLDEN, "volume-logical-clone.xml", text)


@pytest.mark.parametrize("pool_type", ["dir", "logical"])
def test_pool(pool_type: str) -> None:
    path = "/var/lib/nimbostratus/pool" if pool_type == "dir" else "/dev/nimbo"
    assert_golden(GOLDEN, f"pool-{pool_type}.xml", xml.pool_xml("nimbostratus", pool_type, path))


NETWORKS = {
    "isolated": NetworkSpec(id="net-1", address="192.0.2.0/24", gateway="192.0.2.1", vlan=7),
    "nat": NetworkSpec(id="net-2", address="198.51.100.0/25", mode="nat"),
    "bridge": NetworkSpec(id="net-3", mode="bridge", bridge_device="br42", vlan=42),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_linux(name: str) -> None:
    assert_golden(GOLDEN, f"network-{name}.xml", xml.network_xml(NETWORKS[name]))


def test_network_openvswitch_vlan() -> None:
    text = xml.network_xml(NETWORKS["bridge"], virtual_switch="openvswitch")
    assert_golden(GOLDEN, "network-bridge-openvswitch.xml", text)


def test_network_bridge_needs_device() -> None:
    with pytest.raises(BackendError, match="bridge_device"):
        xml.network_xml(NetworkSpec(id="n", mode="bridge"))
