"""The driver against the real libvirt daemon with QEMU (``qemu:///system``).

Cheap: the guests have empty disks, so QEMU (TCG, ``virt_type='qemu'``) only sits in its BIOS;
that is enough to prove libvirt accepts our XML and that start/pause/hot-plug/stop work on a
real hypervisor. The daemons are started if they are not running (``virtlogd -d``,
``libvirtd -d``; there is no systemd here); the tests skip, saying why, if that fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

libvirt = pytest.importorskip("libvirt")

from backends.base import (  # noqa: E402
    ComputeSpec,
    DiskSpec,
    NetworkSpec,
    NicSpec,
    PowerState,
    RestartMethod,
    StopMethod,
    VolumeSpec,
)
from backends.configdrive import ContextSpec, build_config_drive  # noqa: E402
from backends.libvirt.driver import LibvirtDriver  # noqa: E402
from gateway.errors import BackendConflict  # noqa: E402

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]

URI = "qemu:///system"
SOCKET = Path("/var/run/libvirt/libvirt-sock")
MIB = 1024**2


def _daemon_up() -> bool:
    try:
        libvirt.open(URI).close()
        return True
    except libvirt.libvirtError:
        return False


@pytest.fixture(scope="module")
def daemon() -> None:
    """A reachable qemu:///system, starting virtlogd/libvirtd when they are not running."""
    if _daemon_up():
        return
    if os.geteuid() != 0 or shutil.which("libvirtd") is None:
        pytest.skip("libvirtd is not running and cannot be started here (needs root + libvirtd)")
    for daemon_name in ("virtlogd", "libvirtd"):
        if subprocess.run(["pgrep", "-x", daemon_name], capture_output=True).returncode:
            subprocess.run([daemon_name, "-d"], check=False)
    for _ in range(50):
        if _daemon_up():
            return
        time.sleep(0.1)
    pytest.skip(f"libvirtd started but {URI} is still unreachable")


@pytest.fixture
def qemu_dir() -> Iterator[Path]:
    """A scratch directory QEMU (running as its own user) can traverse; pytest's is 0700."""
    path = Path(tempfile.mkdtemp(prefix="nimbo-qemu-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def driver(daemon: None, qemu_dir: Path) -> Iterator[LibvirtDriver]:
    """A driver with its own dir pool under qemu_dir, cleaned up (pool included) afterwards."""
    tag = uuid.uuid4().hex[:8]
    driver = LibvirtDriver(
        URI,
        pool_name=f"nimbo-test-{tag}",
        pool_path=str(qemu_dir / "pool"),
        virt_type="qemu",
        console_dir=str(qemu_dir),
        graceful_timeout=1.0,
    )
    yield driver
    for compute in driver.list_computes():
        if compute.id.startswith("test-"):
            driver.delete_compute(compute.id)
    for volume in driver.list_volumes():
        driver.delete_volume(volume.id)
    for network in driver.list_networks():
        if network.id.startswith("test-"):
            driver.delete_network(network.id)
    pool = driver._pool()
    pool.destroy()
    pool.undefine()
    driver.close()


def test_volumes_on_real_pool(driver: LibvirtDriver, qemu_dir: Path) -> None:
    image = driver.ensure_volume(VolumeSpec(id="image", size_bytes=16 * MIB))
    assert Path(image.path).parent == qemu_dir / "pool"
    assert Path(image.path).read_bytes()[:4] == b"QFI\xfb"  # a real qcow2 file
    clone = driver.ensure_volume(
        VolumeSpec(id="clone", size_bytes=32 * MIB, backing_path=image.path)
    )
    info = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", clone.path], capture_output=True, text=True
    )
    assert f'"backing-filename": "{image.path}"' in info.stdout
    assert driver.resize_volume("clone", 64 * MIB).capacity_bytes == 64 * MIB
    with pytest.raises(BackendConflict):
        driver.resize_volume("clone", 16 * MIB)


def test_upload_on_real_pool(driver: LibvirtDriver, qemu_dir: Path) -> None:
    iso = build_config_drive(ContextSpec(instance_id="i-1", hostname="upload-test"))
    info = driver.upload_volume("drive", iso)
    assert (info.capacity_bytes, info.format) == (len(iso), "raw")
    assert Path(info.path) == qemu_dir / "pool" / "nimbo-drive.qcow2"
    assert Path(info.path).read_bytes() == iso
    # the pool refresh after an upload probes the file as "iso": still raw to us
    assert driver.volume_info("drive").format == "raw"
    data = bytes(range(256)) * 1000 + b"tail"  # several stream chunks, an odd length
    assert driver.upload_volume("drive", data).capacity_bytes == len(data)
    assert Path(info.path).read_bytes() == data
    driver.delete_volume("drive")
    assert not Path(info.path).exists()


def test_auto_virt_type_asks_domain_capabilities(daemon: None) -> None:
    driver = LibvirtDriver(URI)
    try:
        expected = "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "qemu"
        assert driver._domain_type("x86_64") == expected
    finally:
        driver.close()


def test_domain_lifecycle_on_qemu(driver: LibvirtDriver, qemu_dir: Path) -> None:
    net = f"test-{uuid.uuid4().hex[:8]}"
    assert driver.ensure_network(NetworkSpec(id=net, address="203.0.113.0/24")).active
    driver.ensure_volume(VolumeSpec(id="root", size_bytes=16 * MIB))
    driver.ensure_volume(VolumeSpec(id="data", size_bytes=16 * MIB))
    drive = qemu_dir / "context.iso"
    drive.write_bytes(b"\0" * 2048)
    cid = f"test-{uuid.uuid4()}"
    spec = ComputeSpec(
        id=cid,
        name="qemu test",
        cores=1,
        memory_mib=64,
        root_volume_id="root",
        nics=(NicSpec(link_id="l1", network_id=net, mac="52:54:00:77:00:01"),),
        config_drive=str(drive),
    )
    assert driver.ensure_compute(spec).state is PowerState.STOPPED
    assert driver.start_compute(cid).state is PowerState.RUNNING
    assert (qemu_dir / f"nimbo-{cid}.console.log").exists()
    driver.attach_disk(cid, DiskSpec(volume_id="data", target_dev="vdb"))
    driver.attach_nic(cid, NicSpec(link_id="l2", network_id=net, mac="52:54:00:77:00:02"))
    info = driver.compute_info(cid)
    assert (info.disks, info.macs) == (("vda", "vdb"), ("52:54:00:77:00:01", "52:54:00:77:00:02"))
    assert driver.suspend_compute(cid).state is PowerState.PAUSED
    assert driver.start_compute(cid).state is PowerState.RUNNING
    assert driver.restart_compute(cid, RestartMethod.WARM).state is PowerState.RUNNING
    # no guest OS answers ACPI: graceful stop falls back to power-off after graceful_timeout
    assert driver.stop_compute(cid, StopMethod.GRACEFUL).state is PowerState.STOPPED
    driver.delete_compute(cid)
    assert driver.compute_info(cid).state is PowerState.MISSING


def _qemu_img_info(path: str) -> dict[str, object]:
    """``qemu-img info`` of an image (``-U``: also while a running QEMU holds its lock)."""
    result = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", path], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    info: dict[str, object] = json.loads(result.stdout)
    return info


def _qemu_io(path: str, command: str) -> str:
    """Run one qemu-io command on the image (reads: read-only, not taking its lock)."""
    shared = ["-r", "-U"] if command.startswith("read") else []
    result = subprocess.run(
        ["qemu-io", *shared, "-c", command, path], capture_output=True, text=True
    )
    assert result.returncode == 0 and "failed" not in result.stdout, result.stdout + result.stderr
    return result.stdout


def test_copy_volume_on_real_pool_stopped_and_running(driver: LibvirtDriver) -> None:
    """Both ways of copying give a standalone qcow2 with the source's data (its image's bytes
    and its own): from a disk nothing uses (``qemu-img convert`` through the pool) and from
    the disk of a running then a paused domain (a backup job of QEMU's, which holds the
    image's lock); each copy still reads the same after the clone and its image are gone."""
    image = driver.ensure_volume(VolumeSpec(id="image", size_bytes=16 * MIB))
    _qemu_io(image.path, "write -P 0x5a 0 1M")
    clone = driver.ensure_volume(
        VolumeSpec(id="clone", size_bytes=32 * MIB, backing_path=image.path)
    )
    _qemu_io(clone.path, "write -P 0xa5 4M 1M")
    cid = f"test-{uuid.uuid4()}"
    driver.ensure_compute(
        ComputeSpec(id=cid, name="copy test", cores=1, memory_mib=64, root_volume_id="clone")
    )

    copies = {"stopped": driver.copy_volume("clone", "stopped")}
    assert driver.start_compute(cid).state is PowerState.RUNNING
    copies["running"] = driver.copy_volume("clone", "running")
    assert driver.suspend_compute(cid).state is PowerState.PAUSED
    copies["paused"] = driver.copy_volume("clone", "paused")
    assert driver.compute_info(cid).state is PowerState.PAUSED  # the guest was not disturbed

    for copy in copies.values():
        assert (copy.capacity_bytes, copy.format, copy.backing_path) == (32 * MIB, "qcow2", None)
        info = _qemu_img_info(copy.path)
        assert (info["format"], info["virtual-size"]) == ("qcow2", 32 * MIB)
        assert "backing-filename" not in info and "full-backing-filename" not in info
        compare = subprocess.run(
            ["qemu-img", "compare", "-U", clone.path, copy.path], capture_output=True, text=True
        )
        assert compare.returncode == 0, compare.stdout + compare.stderr
    driver.delete_compute(cid)
    driver.delete_volume("clone")
    driver.delete_volume("image")
    for copy in copies.values():
        _qemu_io(copy.path, "read -P 0x5a 0 1M")
        _qemu_io(copy.path, "read -P 0xa5 4M 1M")
        _qemu_io(copy.path, "read -P 0 8M 1M")
    assert sorted(v.id for v in driver.list_volumes()) == sorted(copies)


def test_qemu_gives_a_volume_to_one_domain_at_a_time(driver: LibvirtDriver) -> None:
    """Why the driver says it does not share volumes (``shares_volumes``), and so the API
    refuses a second storagelink to one storage: QEMU locks a writable disk image for the one
    domain that has it, and a second domain with the same volume does not start. The error
    names the cause."""
    assert not LibvirtDriver.shares_volumes(URI)
    assert LibvirtDriver.shares_volumes("test:///default")
    driver.ensure_volume(VolumeSpec(id="shared", size_bytes=16 * MIB))
    first, second = (f"test-{uuid.uuid4()}" for _ in range(2))
    for cid in (first, second):
        driver.ensure_compute(
            ComputeSpec(id=cid, name="lock test", cores=1, memory_mib=64,
                        disks=(DiskSpec(volume_id="shared", target_dev="vdb"),))
        )
    assert driver.start_compute(first).state is PowerState.RUNNING

    with pytest.raises(BackendConflict) as refused:
        driver.start_compute(second)

    assert "in use by another domain" in refused.value.message
    assert driver.compute_info(second).state is PowerState.STOPPED
    assert driver.compute_info(first).state is PowerState.RUNNING


def _no_8021q() -> str | None:
    """Why 802.1Q VLAN links cannot be made here (probed in a throwaway namespace), or None."""
    from tests.netns import run

    if shutil.which("ip") is None:
        return "ip is not installed (Debian package iproute2)"
    probe = f"nimbo-probe-{uuid.uuid4().hex[:8]}"
    if run("ip", "netns", "add", probe).returncode != 0:
        return "cannot create a network namespace"
    try:
        made = run("ip", "-n", probe, "link", "add", "link", "lo", "name", "lo.5", "type", "vlan",
                   "id", "5")
        if made.returncode != 0:
            return f"the kernel makes no 802.1Q VLAN links (CONFIG_VLAN_8021Q): {made.stderr}"
    finally:
        run("ip", "netns", "delete", probe)
    return None


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str]]:
    """Two network namespaces of this test's own (the site's switch side, a guest's side)."""
    from tests.netns import must, run

    reason = _no_8021q()
    if reason:
        pytest.skip(reason.strip())
    names = tuple(f"nimbo-vl{uuid.uuid4().hex[:6]}{side}" for side in "ab")
    for name in names:
        must("ip", "netns", "add", name)
    yield names[0], names[1]
    for name in names:
        run("ip", "netns", "delete", name)


def test_a_vlan_network_bridges_guests_onto_the_tagged_uplink(
    daemon: None, qemu_dir: Path, two_namespaces: tuple[str, str]
) -> None:
    """occi.network.vlan on Linux bridges: the driver makes the VLAN's sub-interface on the
    uplink and its bridge, and bridges the libvirt network onto it. Traffic runs only between
    two namespaces of the test: the site (namespace a, tagging VLAN 3987 and 3988 on its end of
    the uplink) and a port of the VLAN bridge (namespace b, as a guest's NIC is). VLAN 3987
    gets through, 3988 does not; the host's links have no address; a domain's NIC lands on the
    bridge; deleting the network removes the links."""
    from backends.libvirt import vlan
    from tests.netns import must, run

    site, port = two_namespaces
    tag = uuid.uuid4().hex[:6]
    uplink, guest_port = f"nvu{tag}", f"nvp{tag}"
    number = 3987
    bridge, sub = vlan.bridge_name(number), vlan.subinterface_name(number)
    must("ip", "link", "add", uplink, "type", "veth", "peer", "name", "up0", "netns", site)
    must("ip", "link", "add", guest_port, "type", "veth", "peer", "name", "g0", "netns", port)
    for other, address in ((number, "10.77.87.1/24"), (number + 1, "10.77.88.1/24")):
        must("ip", "-n", site, "link", "add", "link", "up0", "name", f"up0.{other}", "type",
             "vlan", "id", str(other))
        must("ip", "-n", site, "addr", "add", address, "dev", f"up0.{other}")
        must("ip", "-n", site, "link", "set", f"up0.{other}", "up")
    must("ip", "-n", site, "link", "set", "up0", "up")
    must("ip", "-n", port, "addr", "add", "10.77.87.2/24", "dev", "g0")
    must("ip", "-n", port, "addr", "add", "10.77.88.2/24", "dev", "g0")
    must("ip", "-n", port, "link", "set", "g0", "up")
    must("ip", "link", "set", "dev", uplink, "addrgenmode", "none")
    must("ip", "link", "set", "dev", guest_port, "addrgenmode", "none")
    must("ip", "link", "set", uplink, "up")
    driver = LibvirtDriver(URI, pool_name=f"nimbo-test-{tag}", pool_path=str(qemu_dir / "pool"),
                           virt_type="qemu", console_dir=str(qemu_dir), vlan_uplink=uplink)
    net = f"test-{tag}"
    cid = f"test-{uuid.uuid4()}"
    try:
        info = driver.ensure_network(NetworkSpec(id=net, vlan=number))
        assert info.active and info.bridge == bridge
        must("ip", "link", "set", guest_port, "master", bridge)
        must("ip", "link", "set", guest_port, "up")
        details = json.loads(run("ip", "-details", "-json", "link", "show", "dev", sub).stdout)[0]
        assert details["linkinfo"]["info_kind"] == "vlan"
        assert details["linkinfo"]["info_data"]["id"] == number
        assert details["link"] == uplink and details["master"] == bridge
        for name in (bridge, sub):  # the host itself sends nothing onto the VLAN
            shown = json.loads(run("ip", "-json", "addr", "show", "dev", name).stdout)[0]
            assert shown["addr_info"] == [], shown

        same_vlan = run("ip", "netns", "exec", site, "ping", "-c", "2", "-W", "2", "10.77.87.2")
        other_vlan = run("ip", "netns", "exec", site, "ping", "-c", "2", "-W", "1", "10.77.88.2")

        assert same_vlan.returncode == 0, same_vlan.stdout + same_vlan.stderr
        assert other_vlan.returncode != 0, other_vlan.stdout
        driver.ensure_compute(ComputeSpec(
            id=cid, name="vlan test", cores=1, memory_mib=64,
            nics=(NicSpec(link_id="l1", network_id=net, mac="52:54:00:77:0f:93"),)))
        assert driver.start_compute(cid).state is PowerState.RUNNING
        ports = json.loads(run("ip", "-json", "link", "show", "master", bridge).stdout)
        assert {p["ifname"] for p in ports} >= {sub, guest_port}
        assert len(ports) == 3, ports  # and the domain's tap
        driver.delete_compute(cid)
        driver.delete_network(net)
        assert run("ip", "link", "show", "dev", bridge).returncode != 0
        assert run("ip", "link", "show", "dev", sub).returncode != 0
    finally:
        driver.delete_compute(cid)
        driver.delete_network(net)
        for name in (guest_port, uplink, sub, bridge):
            run("ip", "link", "del", "dev", name)
        pool = driver._pool()
        pool.destroy()
        pool.undefine()
        driver.close()
