"""The test appliance really boots under ``qemu:///system`` and applies its config drive.

One boot (TCG, ``type='qemu'``) serves every test: a copy-on-write overlay of the cached
appliance, a second empty disk, the ISO from :func:`build_config_drive` as a cdrom on
virtio-scsi, one virtio NIC on an isolated network this module defines (no ``<ip>``: the host
has no address on it and no dnsmasq runs), the serial console in a file. The guest prints its
report there (see appliances/init); the tests compare it with the spec, then press the ACPI
power button through libvirt and wait for the domain to go away.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from backends.configdrive import ContextSpec, InterfaceContext, build_config_drive
from tests.appliance.report import Report

libvirt = pytest.importorskip("libvirt")

pytestmark = [
    pytest.mark.libvirt,
    pytest.mark.slow,
    pytest.mark.appliance,
    pytest.mark.timeout(600),
]

MIB = 1024**2
BOOT_TIMEOUT = 120.0
SHUTDOWN_TIMEOUT = 60.0
DATA_DISK_BYTES = 32 * MIB
MAC = "52:54:00:6e:62:01"
ABSENT_MAC = "52:54:00:6e:62:99"  # in the context, on no NIC of the domain: an error to report
SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1c3Rlcg it\'s $(echo INJECTED) `reboot` "q"'
USER_DATA = (
    b'#!/bin/sh\n# it\'s $(touch /PWNED) `reboot` "quoted"\necho "NIMBO-USERDATA-RAN $(hostname)"\n'
)
SPEC = ContextSpec(
    instance_id="nimbo-appliance-test",
    hostname="appliance-test-1",
    interfaces=(
        InterfaceContext(
            name="eth0", mac=MAC, address="10.77.0.5/24", gateway="10.77.0.1", dns=("10.77.0.2",)
        ),
        InterfaceContext(name="eth1", mac=ABSENT_MAC, address="10.78.0.5/24"),
    ),
    ssh_keys=(SSH_KEY,),
    user_data=USER_DATA,
)


@dataclass
class Guest:
    """A booted appliance: its domain, console log and report."""

    conn: Any
    name: str
    console: Path
    iso_bytes: int
    root_bytes: int
    report: Report

    def console_lines(self) -> list[str]:
        return _lines(self.console)


def _lines(console: Path) -> list[str]:
    text = console.read_bytes().decode("utf-8", errors="replace") if console.exists() else ""
    return [line.rstrip("\r") for line in text.split("\n")]


def _report_lines(lines: list[str]) -> list[str] | None:
    if "NIMBO-REPORT-END" not in lines:
        return None
    begin = lines.index("NIMBO-REPORT-BEGIN")
    return lines[begin + 1 : lines.index("NIMBO-REPORT-END", begin)]


def _domain_gone(conn: Any, name: str) -> bool:
    try:
        return not conn.lookupByName(name).isActive()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return True
        raise


def _network_xml(name: str, bridge: str) -> str:
    # no <ip> and no <forward>: isolated, the host has no address on it, no dnsmasq
    return f"<network><name>{name}</name><bridge name='{bridge}' stp='off'/></network>"


def _domain_xml(name: str, network: str, image: Path, workdir: Path) -> str:
    def path(file: str | Path) -> str:
        return escape(str(workdir / file), {"'": "&apos;"})

    return f"""
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{path("root.qcow2")}'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='{path(image)}'><seclabel model='dac' relabel='no'/></source>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{path("data.img")}'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{path("context.iso")}'/>
      <target dev='sda' bus='scsi'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <source network='{network}'/>
      <mac address='{MAC}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='{path("console.log")}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


def _virtual_size(image: Path) -> int:
    info = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(image)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(info.stdout)["virtual-size"])


def _wait_for_report(conn: Any, name: str, console: Path) -> list[str]:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        lines = _report_lines(_lines(console))
        if lines is not None:
            return lines
        if _domain_gone(conn, name):
            pytest.fail("the guest stopped before its report:\n" + "\n".join(_lines(console)))
        time.sleep(0.5)
    tail = "\n".join(_lines(console)[-40:])
    pytest.fail(f"no report within {BOOT_TIMEOUT:.0f} s; console tail:\n{tail}")


@pytest.fixture(scope="module")
def guest(qemu_connection: Any, appliance_image: Path) -> Iterator[Guest]:
    """The appliance booted once for the module, torn down (domain, network, files) after."""
    conn = qemu_connection
    tag = uuid.uuid4().hex[:8]
    name = f"nimbo-appliance-test-{tag}"
    workdir = Path(tempfile.mkdtemp(prefix="nimbo-appliance-", dir="/var/tmp"))
    workdir.chmod(0o755)  # QEMU runs as its own user
    network = None
    try:
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                str(appliance_image),
                str(workdir / "root.qcow2"),
            ],
            check=True,
        )
        with (workdir / "data.img").open("wb") as data:
            data.truncate(DATA_DISK_BYTES)
        iso = build_config_drive(SPEC)
        (workdir / "context.iso").write_bytes(iso)
        network = conn.networkCreateXML(_network_xml(f"nimbo-appl-{tag}", f"nbap{tag}"))
        conn.createXML(_domain_xml(name, network.name(), appliance_image, workdir), 0)
        console = workdir / "console.log"
        report = Report.parse(_wait_for_report(conn, name, console))
        yield Guest(
            conn=conn,
            name=name,
            console=console,
            iso_bytes=len(iso),
            root_bytes=_virtual_size(appliance_image),
            report=report,
        )
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.lookupByName(name).destroy()
        if network is not None:
            network.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def test_report_names_the_context_hostname(guest: Guest) -> None:
    assert guest.report.hostname == "appliance-test-1"


def test_report_shows_the_nic_configured_from_context(guest: Guest) -> None:
    assert guest.report.ifaces == {"eth0": (MAC, "10.77.0.5/24")}


def test_report_lists_every_disk_with_its_size(guest: Guest) -> None:
    assert guest.report.disks == {
        "vda": guest.root_bytes,
        "vdb": DATA_DISK_BYTES,
        "sr0": guest.iso_bytes,
    }


def test_report_digests_match_user_data_and_ssh_key(guest: Guest) -> None:
    assert guest.report.userdata_sha256 == hashlib.sha256(USER_DATA).hexdigest()
    authorized_keys = (SSH_KEY + "\n").encode()
    assert guest.report.sshkey_sha256 == hashlib.sha256(authorized_keys).hexdigest()


def test_user_data_script_ran(guest: Guest) -> None:
    lines = guest.console_lines()
    assert "NIMBO-USERDATA-RAN appliance-test-1" in lines
    assert lines.index("NIMBO-USERDATA-RAN appliance-test-1") < lines.index("NIMBO-REPORT-BEGIN")


def test_the_one_failure_is_reported_and_the_report_still_follows(guest: Guest) -> None:
    lines = guest.console_lines()
    errors = [line for line in lines if "NIMBO-ERROR" in line]
    assert errors == [
        f"NIMBO-ERROR interface not found: no interface has MAC {ABSENT_MAC} (ETH1_MAC)"
    ]
    assert lines.index(errors[0]) < lines.index("NIMBO-REPORT-BEGIN")


def test_acpi_shutdown_powers_the_guest_off(guest: Guest) -> None:
    domain = guest.conn.lookupByName(guest.name)
    domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT
    while not _domain_gone(guest.conn, guest.name):
        assert time.monotonic() < deadline, f"still running {SHUTDOWN_TIMEOUT:.0f} s after ACPI"
        time.sleep(0.5)
    lines = guest.console_lines()
    assert "NIMBO-POWEROFF" in lines
    assert lines.index("NIMBO-POWEROFF") > lines.index("NIMBO-REPORT-END")
