"""The libvirt driver, and nothing else, runs the appliance on ``qemu:///system``.

Everything goes through :class:`~backends.libvirt.driver.LibvirtDriver` as a worker would use it:
a dir pool of its own, an isolated network (no host address, so no dnsmasq), a copy-on-write
root volume on the appliance image, a data disk, the config drive uploaded into the pool, one
compute (TCG). The guest's reports, read with ``console_log``, prove what it really got: after
the first boot, a graceful stop (ACPI, not the power-off fallback), a second start, a disk and a
NIC hot-plugged and unplugged while it runs, cold, warm and graceful restarts. Then the running
guest's root disk is saved (``copy_volume``) as a standalone image, which boots the guest again
once the compute, its disks and the appliance image are gone; deleting leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.base import (
    ComputeSpec,
    DiskSpec,
    NetworkSpec,
    NicSpec,
    PowerState,
    RestartMethod,
    StopMethod,
    VolumeInfo,
    VolumeSpec,
    config_drive_volume_id,
)
from backends.configdrive import ContextSpec, InterfaceContext, build_config_drive
from gateway.errors import BackendError
from tests.appliance.report import BOOT, Report, console_lines, reports

pytest.importorskip("libvirt")

from backends.libvirt.driver import LibvirtDriver

pytestmark = [
    pytest.mark.libvirt,
    pytest.mark.slow,
    pytest.mark.appliance,
    pytest.mark.timeout(900),
]

URI = "qemu:///system"
MIB = 1024**2
BOOT_TIMEOUT = 180.0  # TCG on a shared two-core machine
GRACEFUL_TIMEOUT = 60.0
ROOT_BYTES = 64 * MIB
DATA_BYTES = 64 * MIB
HOT_BYTES = 32 * MIB
WHOLE_LOG = 16 * MIB  # console_log max_bytes that always returns the whole log of this test
MAC = "52:54:00:6e:63:01"
HOT_MAC = "52:54:00:6e:63:02"
HOSTNAME = "driver-test-1"
ADDRESS = "10.79.0.5/24"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDRpdmVy driver@test"
USER_DATA = b"#!/bin/sh\necho NIMBO-USERDATA-RAN\n"


@dataclass
class Host:
    """A driver with its own pool and network, and the ids of this test's objects."""

    driver: LibvirtDriver
    image: Path
    network_id: str
    compute_id: str

    def volume_id(self, role: str) -> str:
        return f"{self.compute_id}-{role}"


@dataclass
class Console:
    """The compute's serial console as ``console_log`` shows it, read from a mark onwards."""

    driver: LibvirtDriver
    compute_id: str

    def lines(self) -> list[str]:
        return console_lines(self.driver.console_log(self.compute_id, max_bytes=WHOLE_LOG))

    def mark(self) -> int:
        """Where the console is now: later waits look only at what comes after (from the
        line being written, the last one, which is complete only once a newline ends it)."""
        return len(self.lines()) - 1

    def wait_for(self, what: str, found: Callable[[list[str]], Report | None], mark: int) -> Report:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            lines = self.lines()[mark:]
            if (report := found(lines)) is not None:
                return report
            state = self.driver.compute_info(self.compute_id).state
            assert state is PowerState.RUNNING, f"{state} while waiting for {what}:\n" + "\n".join(
                lines[-40:]
            )
            time.sleep(0.5)
        tail = "\n".join(self.lines()[mark:][-40:])
        pytest.fail(f"no {what} within {BOOT_TIMEOUT:.0f} s; console tail:\n{tail}")

    def boot_report(self, mark: int) -> Report:
        """The first report of the first boot after ``mark``."""

        def first_after_boot(lines: list[str]) -> Report | None:
            if BOOT not in lines:
                return None
            found = reports(lines[lines.index(BOOT) :])
            return found[0] if found else None

        return self.wait_for("report of a new boot", first_after_boot, mark)

    def report_where(self, what: str, wanted: Callable[[Report], bool], mark: int) -> Report:
        """The first report after ``mark`` for which ``wanted`` holds."""

        def matching(lines: list[str]) -> Report | None:
            return next((report for report in reports(lines) if wanted(report)), None)

        return self.wait_for(what, matching, mark)


@pytest.fixture
def host(appliance_image: Path) -> Iterator[Host]:
    """A LibvirtDriver on qemu:///system with a private pool and network; all removed after."""
    tag = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="nimbo-driver-", dir="/var/tmp"))
    workdir.chmod(0o755)  # QEMU runs as its own user
    image = workdir / "appliance.qcow2"  # libvirt relabels backing files: not the shared cache
    shutil.copyfile(appliance_image, image)
    image.chmod(0o644)
    driver = LibvirtDriver(
        URI,
        pool_name=f"nimbo-appl-{tag}",
        pool_path=str(workdir / "pool"),
        virt_type="qemu",
        console_dir=str(workdir),
        graceful_timeout=GRACEFUL_TIMEOUT,
    )
    host = Host(driver, image, network_id=f"appl-{tag}", compute_id=f"appl-{uuid.uuid4()}")
    try:
        yield host
    finally:
        with contextlib.suppress(BackendError):
            driver.delete_compute(host.compute_id)
        with contextlib.suppress(BackendError):
            for volume in driver.list_volumes():
                driver.delete_volume(volume.id)
        with contextlib.suppress(BackendError):
            driver.delete_network(host.network_id)
        with contextlib.suppress(Exception):
            pool = driver._pool()
            pool.destroy()
            pool.undefine()
        driver.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _config_drive(compute_id: str) -> bytes:
    return build_config_drive(
        ContextSpec(
            instance_id=compute_id,
            hostname=HOSTNAME,
            interfaces=(InterfaceContext(name="eth0", mac=MAC, address=ADDRESS),),
            ssh_keys=(SSH_KEY,),
            user_data=USER_DATA,
        )
    )


def _provision(host: Host) -> tuple[ComputeSpec, int]:
    """Network, volumes, config drive and the domain, as the worker makes them; (spec, ISO size)."""
    driver = host.driver
    network = driver.ensure_network(NetworkSpec(id=host.network_id))
    assert network.active
    root = driver.ensure_volume(
        VolumeSpec(id=host.volume_id("root"), size_bytes=ROOT_BYTES, backing_path=str(host.image))
    )
    assert (root.capacity_bytes, root.format) == (ROOT_BYTES, "qcow2")
    driver.ensure_volume(VolumeSpec(id=host.volume_id("data"), size_bytes=DATA_BYTES))
    iso = _config_drive(host.compute_id)
    drive = driver.upload_volume(config_drive_volume_id(host.compute_id), iso)
    assert (drive.capacity_bytes, drive.format) == (len(iso), "raw")
    spec = ComputeSpec(
        id=host.compute_id,
        name="appliance through the driver",
        cores=1,
        memory_mib=192,
        root_volume_id=root.id,
        disks=(DiskSpec(volume_id=host.volume_id("data"), target_dev="vdb"),),
        nics=(NicSpec(link_id="l1", network_id=host.network_id, mac=MAC),),
        config_drive=drive.path,
        hostname=HOSTNAME,
    )
    assert driver.ensure_compute(spec).state is PowerState.STOPPED
    return spec, len(iso)


def _disks_become(driver: LibvirtDriver, compute_id: str, disks: tuple[str, ...]) -> None:
    """Device removal completes when the guest lets go: wait for libvirt's live definition."""
    deadline = time.monotonic() + 30
    while (seen := driver.compute_info(compute_id).disks) != disks:
        assert time.monotonic() < deadline, f"disks {seen}, expected {disks}"
        time.sleep(0.2)


def test_appliance_lifecycle_through_the_driver(host: Host) -> None:
    driver, cid = host.driver, host.compute_id
    console = Console(driver, cid)
    spec, iso_bytes = _provision(host)
    assert driver.console_log(cid) == ""  # defined, never started

    # first boot: the guest got what the driver and the config drive promised
    assert driver.start_compute(cid).state is PowerState.RUNNING
    first = console.boot_report(0)
    assert first.hostname == HOSTNAME
    assert first.ifaces == {"eth0": (MAC, ADDRESS)}
    assert first.disks == {"vda": ROOT_BYTES, "vdb": DATA_BYTES, "sr0": iso_bytes}
    assert first.userdata_sha256 == hashlib.sha256(USER_DATA).hexdigest()
    assert first.sshkey_sha256 == hashlib.sha256(f"{SSH_KEY}\n".encode()).hexdigest()
    assert "NIMBO-USERDATA-RAN" in console.lines()
    assert not [line for line in console.lines() if "NIMBO-ERROR" in line]

    # graceful stop is the ACPI power button, answered by the guest well before the fallback
    mark = console.mark()
    started = time.monotonic()
    assert driver.stop_compute(cid, StopMethod.GRACEFUL).state is PowerState.STOPPED
    assert time.monotonic() - started < GRACEFUL_TIMEOUT - 10
    assert "NIMBO-POWEROFF" in console.lines()[mark:]

    # a second start boots the same guest again
    mark = console.mark()
    assert driver.start_compute(cid).state is PowerState.RUNNING
    assert console.boot_report(mark) == first

    # hot-plug while running: the guest sees the new disk (with its size) or NIC come and go
    hot = driver.ensure_volume(VolumeSpec(id=host.volume_id("hot"), size_bytes=HOT_BYTES))
    mark = console.mark()
    driver.attach_disk(cid, DiskSpec(volume_id=hot.id, target_dev="vdc"))
    plugged = console.report_where("report with vdc", lambda r: "vdc" in r.disks, mark)
    assert plugged.disks == {**first.disks, "vdc": HOT_BYTES}
    assert driver.compute_info(cid).disks == ("vda", "vdb", "vdc")
    mark = console.mark()
    driver.detach_disk(cid, "vdc")
    unplugged = console.report_where("report without vdc", lambda r: "vdc" not in r.disks, mark)
    assert unplugged.disks == first.disks
    _disks_become(driver, cid, ("vda", "vdb"))
    mark = console.mark()
    driver.attach_nic(cid, NicSpec(link_id="l2", network_id=host.network_id, mac=HOT_MAC))
    plugged = console.report_where("report with 2 NICs", lambda r: len(r.ifaces) == 2, mark)
    assert plugged.ifaces == {"eth0": (MAC, ADDRESS), "eth1": (HOT_MAC, "none")}
    mark = console.mark()
    driver.detach_nic(cid, HOT_MAC)
    unplugged = console.report_where("report with 1 NIC", lambda r: len(r.ifaces) == 1, mark)
    assert unplugged == first

    # every restart leaves it running, through a fresh boot
    for method in (RestartMethod.COLD, RestartMethod.WARM, RestartMethod.GRACEFUL):
        mark = console.mark()
        assert driver.restart_compute(cid, method).state is PowerState.RUNNING
        assert console.boot_report(mark) == first, f"after a {method} restart"

    # saving copies the running guest's root disk whole (a backup job of QEMU's)
    saved = driver.copy_volume(spec.root_volume_id, host.volume_id("saved"))
    assert driver.compute_info(cid).state is PowerState.RUNNING
    assert (saved.capacity_bytes, saved.backing_path) == (ROOT_BYTES, None)
    assert "backing-filename" not in _qemu_img_info(saved.path)

    # deleting leaves nothing of this test on the host but the saved image
    volumes = [v for v in driver.list_volumes() if v.id != saved.id]
    assert sorted(v.id for v in volumes) == sorted(
        [spec.root_volume_id, host.volume_id("data"), hot.id, config_drive_volume_id(cid)]
    )
    driver.delete_compute(cid)
    for volume in volumes:
        driver.delete_volume(volume.id)
    assert driver.compute_info(cid).state is PowerState.MISSING
    assert cid not in [c.id for c in driver.list_computes()]
    assert [v.id for v in driver.list_volumes()] == [saved.id]
    assert [v.path for v in volumes if Path(v.path).exists()] == []

    # the saved image alone, without the appliance image it came from, boots the guest again
    host.image.unlink()
    again = _from_saved_image(host, spec, saved.path)
    mark = console.mark()
    assert driver.start_compute(cid).state is PowerState.RUNNING
    assert console.boot_report(mark) == dataclasses.replace(
        first, disks={"vda": ROOT_BYTES, "sr0": iso_bytes}
    )
    driver.delete_compute(cid)
    for volume in driver.list_volumes():
        driver.delete_volume(volume.id)
    assert driver.list_volumes() == []
    assert not Path(again.path).exists()


def _qemu_img_info(path: str) -> dict[str, object]:
    result = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", path], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    info: dict[str, object] = json.loads(result.stdout)
    return info


def _from_saved_image(host: Host, spec: ComputeSpec, image_path: str) -> VolumeInfo:
    """The compute defined anew (same id) on a clone of the saved image, without its data
    disk, with a fresh config drive; its new root volume."""
    driver = host.driver
    root = driver.ensure_volume(
        VolumeSpec(id=host.volume_id("root"), size_bytes=ROOT_BYTES, backing_path=image_path)
    )
    drive = driver.upload_volume(config_drive_volume_id(spec.id), _config_drive(spec.id))
    again = dataclasses.replace(spec, root_volume_id=root.id, disks=(), config_drive=drive.path)
    assert driver.ensure_compute(again).state is PowerState.STOPPED
    return root
