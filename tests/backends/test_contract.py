"""The HostDriver contract, written once, run against every implementation (see conftest)."""

from __future__ import annotations

import tempfile

import pytest

from backends.base import (
    ComputeSpec,
    DiskSpec,
    HostDriver,
    NetworkSpec,
    NicSpec,
    PowerState,
    RestartMethod,
    StopMethod,
    VolumeSpec,
    config_drive_volume_id,
)
from gateway.errors import BackendConflict, BackendError, BackendNotFound, BackendUnavailable
from tests.backends.conftest import DECLARED_HOSTS, DriverFactory, write_console

CID = "4f0c6b3e-1d2a-4c55-9e1f-0a1b2c3d4e5f"
NET = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
MAC1 = "52:54:00:12:34:01"
MAC2 = "52:54:00:12:34:02"
GIB = 1024**3


def _spec(**changes: object) -> ComputeSpec:
    fields: dict[str, object] = {
        "id": CID,
        "name": "vm one",
        "cores": 2,
        "memory_mib": 512,
        "root_volume_id": "root-1",
        "nics": (NicSpec(link_id="l1", network_id=NET, mac=MAC1),),
    }
    fields.update(changes)
    return ComputeSpec(**fields)  # type: ignore[arg-type]


def _state(driver: HostDriver) -> PowerState:
    return driver.compute_info(CID).state


class TestHost:
    @pytest.mark.parametrize("host", sorted(DECLARED_HOSTS))
    def test_host_info_is_what_the_host_declares(self, open_host: DriverFactory, host: str) -> None:
        info = open_host(host).host_info()
        assert (info.cores, info.memory_mib) == DECLARED_HOSTS[host]
        assert info.name == host

    def test_closed_driver_is_unavailable(self, driver: HostDriver) -> None:
        driver.close()
        with pytest.raises(BackendUnavailable):
            driver.compute_info(CID)


class TestComputeStates:
    def test_missing_compute(self, driver: HostDriver) -> None:
        assert _state(driver) is PowerState.MISSING
        for call in (driver.start_compute, driver.suspend_compute):
            with pytest.raises(BackendNotFound):
                call(CID)
        with pytest.raises(BackendNotFound):
            driver.stop_compute(CID, StopMethod.POWEROFF)

    def test_define_does_not_start(self, driver: HostDriver) -> None:
        info = driver.ensure_compute(_spec())
        assert (info.id, info.state, info.cores, info.memory_mib) == (
            CID,
            PowerState.STOPPED,
            2,
            512,
        )
        assert info.disks == ("vda",)
        assert info.macs == (MAC1,)
        assert [c.id for c in driver.list_computes()] == [CID]

    def test_redefine_stopped_updates(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        info = driver.ensure_compute(_spec(cores=4, memory_mib=1024))
        assert (info.cores, info.memory_mib) == (4, 1024)
        assert len(driver.list_computes()) == 1

    def test_start_is_idempotent(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        assert driver.start_compute(CID).state is PowerState.RUNNING
        assert driver.start_compute(CID).state is PowerState.RUNNING

    @pytest.mark.parametrize("method", list(StopMethod))
    def test_stop_then_stop_again(self, driver: HostDriver, method: StopMethod) -> None:
        driver.ensure_compute(_spec())
        driver.start_compute(CID)
        assert driver.stop_compute(CID, method).state is PowerState.STOPPED
        assert driver.stop_compute(CID, method).state is PowerState.STOPPED

    def test_stop_paused(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        driver.start_compute(CID)
        driver.suspend_compute(CID)
        assert driver.stop_compute(CID, StopMethod.GRACEFUL).state is PowerState.STOPPED

    @pytest.mark.parametrize("method", list(RestartMethod))
    def test_restart_running(self, driver: HostDriver, method: RestartMethod) -> None:
        driver.ensure_compute(_spec())
        driver.start_compute(CID)
        assert driver.restart_compute(CID, method).state is PowerState.RUNNING

    @pytest.mark.parametrize("method", list(RestartMethod))
    def test_restart_stopped_conflicts(self, driver: HostDriver, method: RestartMethod) -> None:
        driver.ensure_compute(_spec())
        with pytest.raises(BackendConflict):
            driver.restart_compute(CID, method)
        assert _state(driver) is PowerState.STOPPED

    def test_restart_paused_conflicts(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        driver.start_compute(CID)
        driver.suspend_compute(CID)
        with pytest.raises(BackendConflict):
            driver.restart_compute(CID, RestartMethod.WARM)

    def test_suspend_resume(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        driver.start_compute(CID)
        assert driver.suspend_compute(CID).state is PowerState.PAUSED
        assert driver.suspend_compute(CID).state is PowerState.PAUSED
        assert driver.start_compute(CID).state is PowerState.RUNNING

    def test_suspend_stopped_conflicts(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        with pytest.raises(BackendConflict):
            driver.suspend_compute(CID)

    def test_cold_restart_applies_new_definition(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        driver.start_compute(CID)
        assert driver.ensure_compute(_spec(cores=4)).cores == 2  # live keeps running as is
        assert driver.restart_compute(CID, RestartMethod.COLD).cores == 4

    @pytest.mark.parametrize("start", [False, True])
    def test_delete_is_idempotent(self, driver: HostDriver, start: bool) -> None:
        driver.ensure_compute(_spec())
        if start:
            driver.start_compute(CID)
        driver.delete_compute(CID)
        assert _state(driver) is PowerState.MISSING
        driver.delete_compute(CID)
        assert driver.list_computes() == []


class TestHotPlug:
    @pytest.fixture(params=["stopped", "running", "paused"])
    def compute(self, request: pytest.FixtureRequest, driver: HostDriver) -> PowerState:
        driver.ensure_compute(_spec())
        if request.param != "stopped":
            driver.start_compute(CID)
        if request.param == "paused":
            driver.suspend_compute(CID)
        return driver.compute_info(CID).state

    def test_disk(self, driver: HostDriver, compute: PowerState) -> None:
        disk = DiskSpec(volume_id="data-1", target_dev="vdb")
        driver.attach_disk(CID, disk)
        driver.attach_disk(CID, disk)
        info = driver.compute_info(CID)
        assert (info.disks, info.state) == (("vda", "vdb"), compute)
        driver.detach_disk(CID, "vdb")
        driver.detach_disk(CID, "vdb")
        info = driver.compute_info(CID)
        assert (info.disks, info.state) == (("vda",), compute)

    def test_nic(self, driver: HostDriver, compute: PowerState) -> None:
        nic = NicSpec(link_id="l2", network_id=NET, mac=MAC2.upper())
        driver.attach_nic(CID, nic)
        driver.attach_nic(CID, nic)
        info = driver.compute_info(CID)
        assert (info.macs, info.state) == ((MAC1, MAC2), compute)
        driver.detach_nic(CID, MAC1)
        driver.detach_nic(CID, MAC1)
        info = driver.compute_info(CID)
        assert (info.macs, info.state) == ((MAC2,), compute)

    def test_attach_to_missing_compute(self, driver: HostDriver) -> None:
        with pytest.raises(BackendNotFound):
            driver.attach_disk(CID, DiskSpec(volume_id="data-1", target_dev="vdb"))
        driver.detach_nic(CID, MAC1)  # quietly nothing to do


class TestVolumes:
    def test_create_is_idempotent(self, driver: HostDriver) -> None:
        first = driver.ensure_volume(VolumeSpec(id="v1", size_bytes=GIB))
        again = driver.ensure_volume(VolumeSpec(id="v1", size_bytes=GIB))
        assert first == again
        assert (first.id, first.capacity_bytes, first.format) == ("v1", GIB, "qcow2")
        assert driver.volume_info("v1") == first
        assert [v.id for v in driver.list_volumes()] == ["v1"]

    def test_ensure_grows_smaller_volume(self, driver: HostDriver) -> None:
        driver.ensure_volume(VolumeSpec(id="v1", size_bytes=GIB))
        assert driver.ensure_volume(VolumeSpec(id="v1", size_bytes=2 * GIB)).capacity_bytes == (
            2 * GIB
        )

    def test_clone(self, driver: HostDriver) -> None:
        image = driver.ensure_volume(VolumeSpec(id="image", size_bytes=GIB))
        clone = driver.ensure_volume(
            VolumeSpec(id="clone", size_bytes=2 * GIB, backing_path=image.path)
        )
        assert (clone.capacity_bytes, clone.format) == (2 * GIB, "qcow2")
        assert clone.path != image.path
        assert (clone.backing_path, image.backing_path) == (image.path, None)
        assert sorted(v.id for v in driver.list_volumes()) == ["clone", "image"]

    def test_resize(self, driver: HostDriver) -> None:
        driver.ensure_volume(VolumeSpec(id="v1", size_bytes=GIB))
        assert driver.resize_volume("v1", 3 * GIB).capacity_bytes == 3 * GIB
        assert driver.resize_volume("v1", 3 * GIB).capacity_bytes == 3 * GIB
        with pytest.raises(BackendConflict):
            driver.resize_volume("v1", GIB)
        assert driver.volume_info("v1").capacity_bytes == 3 * GIB

    def test_missing(self, driver: HostDriver) -> None:
        with pytest.raises(BackendNotFound):
            driver.volume_info("nope")
        with pytest.raises(BackendNotFound):
            driver.resize_volume("nope", GIB)

    def test_delete_is_idempotent(self, driver: HostDriver) -> None:
        driver.ensure_volume(VolumeSpec(id="v1", size_bytes=GIB))
        driver.delete_volume("v1")
        driver.delete_volume("v1")
        with pytest.raises(BackendNotFound):
            driver.volume_info("v1")
        assert driver.list_volumes() == []


class TestCopy:
    def _clone(self, driver: HostDriver) -> None:
        image = driver.ensure_volume(VolumeSpec(id="image", size_bytes=GIB))
        driver.ensure_volume(VolumeSpec(id="clone", size_bytes=2 * GIB, backing_path=image.path))

    def test_copy_of_a_clone_stands_alone(self, driver: HostDriver) -> None:
        self._clone(driver)
        copy = driver.copy_volume("clone", "copy")
        assert (copy.id, copy.capacity_bytes, copy.format) == ("copy", 2 * GIB, "qcow2")
        assert copy.backing_path is None
        assert copy.path not in (driver.volume_info("clone").path, driver.volume_info("image").path)
        assert driver.volume_info("copy") == copy
        driver.delete_volume("clone")
        driver.delete_volume("image")
        assert driver.volume_info("copy") == copy
        assert [v.id for v in driver.list_volumes()] == ["copy"]

    def test_copy_twice_converges(self, driver: HostDriver) -> None:
        self._clone(driver)
        first = driver.copy_volume("clone", "copy")
        assert driver.copy_volume("clone", "copy") == first
        assert sorted(v.id for v in driver.list_volumes()) == ["clone", "copy", "image"]

    def test_copy_replaces_a_volume_of_that_id(self, driver: HostDriver) -> None:
        self._clone(driver)
        driver.upload_volume("copy", b"\1" * 4096)
        copy = driver.copy_volume("clone", "copy")
        assert (copy.capacity_bytes, copy.format, copy.backing_path) == (2 * GIB, "qcow2", None)

    def test_copy_of_a_running_computes_disk(self, driver: HostDriver) -> None:
        self._clone(driver)
        driver.ensure_compute(_spec(root_volume_id="clone"))
        driver.start_compute(CID)
        copy = driver.copy_volume("clone", "copy")
        assert (copy.capacity_bytes, copy.backing_path) == (2 * GIB, None)
        assert _state(driver) is PowerState.RUNNING

    def test_missing_source_creates_nothing(self, driver: HostDriver) -> None:
        with pytest.raises(BackendNotFound):
            driver.copy_volume("nope", "copy")
        assert driver.list_volumes() == []

    def test_no_copy_onto_itself(self, driver: HostDriver) -> None:
        self._clone(driver)
        with pytest.raises(BackendError, match="onto itself"):
            driver.copy_volume("clone", "clone")
        assert driver.volume_info("clone").backing_path == driver.volume_info("image").path


class TestUpload:
    DRIVE = config_drive_volume_id(CID)
    ISO = b"\0" * 32768 + b"\1CD001" + bytes(range(256)) * 8  # any bytes, a made-up length

    def test_upload_creates_a_raw_volume_of_the_data(self, driver: HostDriver) -> None:
        info = driver.upload_volume(self.DRIVE, self.ISO)
        assert (info.id, info.format, info.capacity_bytes) == (self.DRIVE, "raw", len(self.ISO))
        assert info.path and info.path != driver.ensure_volume(VolumeSpec("v1", GIB)).path
        assert driver.volume_info(self.DRIVE) == info
        assert sorted(v.id for v in driver.list_volumes()) == sorted([self.DRIVE, "v1"])

    def test_upload_twice_converges(self, driver: HostDriver) -> None:
        first = driver.upload_volume(self.DRIVE, self.ISO)
        assert driver.upload_volume(self.DRIVE, self.ISO) == first
        assert [v.id for v in driver.list_volumes()] == [self.DRIVE]

    @pytest.mark.parametrize("size", [2048, 5 * 65536 + 3], ids=["smaller", "larger"])
    def test_upload_replaces(self, driver: HostDriver, size: int) -> None:
        driver.upload_volume(self.DRIVE, self.ISO)
        info = driver.upload_volume(self.DRIVE, b"\xa5" * size)
        assert (info.capacity_bytes, info.format) == (size, "raw")
        assert driver.volume_info(self.DRIVE).capacity_bytes == size
        assert len(driver.list_volumes()) == 1

    def test_upload_replaces_a_qcow2_volume(self, driver: HostDriver) -> None:
        driver.ensure_volume(VolumeSpec(id=self.DRIVE, size_bytes=GIB))
        info = driver.upload_volume(self.DRIVE, self.ISO)
        assert (info.capacity_bytes, info.format) == (len(self.ISO), "raw")

    def test_uploaded_volume_deletes_like_any(self, driver: HostDriver) -> None:
        driver.upload_volume(self.DRIVE, self.ISO)
        driver.delete_volume(self.DRIVE)
        driver.delete_volume(self.DRIVE)
        with pytest.raises(BackendNotFound):
            driver.volume_info(self.DRIVE)
        assert driver.list_volumes() == []

    def test_nothing_to_upload(self, driver: HostDriver) -> None:
        with pytest.raises(BackendError, match="nothing to upload"):
            driver.upload_volume(self.DRIVE, b"")
        with pytest.raises(BackendError, match="nothing to upload"), tempfile.TemporaryFile() as f:
            driver.upload_volume(self.DRIVE, f)
        assert driver.list_volumes() == []

    def test_upload_from_a_file_sends_it_from_where_it_stands(self, driver: HostDriver) -> None:
        with tempfile.TemporaryFile() as image:
            image.write(b"skipped" + self.ISO)
            image.seek(len(b"skipped"))
            info = driver.upload_volume(self.DRIVE, image)
        assert (info.format, info.capacity_bytes) == ("raw", len(self.ISO))
        assert driver.volume_info(self.DRIVE) == info

    def test_config_drive_volume_is_the_computes_own(self) -> None:
        other = "5f0c6b3e-1d2a-4c55-9e1f-0a1b2c3d4e5f"
        assert config_drive_volume_id(CID) not in (CID, config_drive_volume_id(other))


class TestConsole:
    def test_missing_compute(self, driver: HostDriver) -> None:
        with pytest.raises(BackendNotFound):
            driver.console_log(CID)

    def test_nothing_printed_yet(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        assert driver.console_log(CID) == ""

    def test_whole_console_when_short(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        driver.start_compute(CID)
        write_console(driver, CID, b"boot\nNIMBO-REPORT-BEGIN\nhostname=h\n")
        assert driver.console_log(CID) == "boot\nNIMBO-REPORT-BEGIN\nhostname=h\n"

    def test_tail_of_at_most_max_bytes(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        write_console(driver, CID, b"x" * 100_000 + b"\nlast line\n")
        assert driver.console_log(CID) == "x" * (65536 - 11) + "\nlast line\n"
        assert driver.console_log(CID, max_bytes=5) == "line\n"

    def test_tail_does_not_start_with_half_a_character(self, driver: HostDriver) -> None:
        driver.ensure_compute(_spec())
        write_console(driver, CID, "h\u00e9\u20ac!".encode())  # 1 + 2 + 3 + 1 bytes
        assert driver.console_log(CID, max_bytes=5) == "\u20ac!"  # é cut: dropped, not replaced
        assert driver.console_log(CID, max_bytes=3) == "!"
        assert driver.console_log(CID, max_bytes=6) == "\u00e9\u20ac!"

    @pytest.mark.parametrize("max_bytes", [0, -1])
    def test_max_bytes_must_be_positive(self, driver: HostDriver, max_bytes: int) -> None:
        driver.ensure_compute(_spec())
        with pytest.raises(BackendError, match="max_bytes"):
            driver.console_log(CID, max_bytes=max_bytes)


class TestNetworks:
    SPEC = NetworkSpec(id=NET, address="192.0.2.0/24", gateway="192.0.2.1")

    def test_ensure_is_idempotent(self, driver: HostDriver) -> None:
        info = driver.ensure_network(self.SPEC)
        assert (info.id, info.active, info.bridge) == (NET, True, "nbr9a8b7c6d5e")
        assert driver.ensure_network(self.SPEC) == info
        assert driver.list_networks() == [info]

    def test_down_and_up(self, driver: HostDriver) -> None:
        driver.ensure_network(self.SPEC)
        assert driver.set_network_active(NET, False).active is False
        assert driver.set_network_active(NET, False).active is False
        assert driver.network_info(NET).active is False
        assert driver.set_network_active(NET, True).active is True
        driver.set_network_active(NET, False)
        assert driver.ensure_network(self.SPEC).active is True

    def test_bridge_mode_uses_host_bridge(self, driver: HostDriver) -> None:
        spec = NetworkSpec(id=NET, mode="bridge", bridge_device="br0", vlan=42)
        assert driver.ensure_network(spec).bridge == "br0"

    def test_missing(self, driver: HostDriver) -> None:
        with pytest.raises(BackendNotFound):
            driver.network_info(NET)
        with pytest.raises(BackendNotFound):
            driver.set_network_active(NET, True)

    def test_delete_is_idempotent(self, driver: HostDriver) -> None:
        driver.ensure_network(self.SPEC)
        driver.delete_network(NET)
        driver.delete_network(NET)
        with pytest.raises(BackendNotFound):
            driver.network_info(NET)
        assert driver.list_networks() == []


class TestHosts:
    def test_hosts_are_separate(self, open_host: DriverFactory) -> None:
        host_a, host_b = open_host("host-a"), open_host("host-b")
        host_a.ensure_compute(_spec())
        assert host_b.compute_info(CID).state is PowerState.MISSING
        assert host_b.list_volumes() == [] and host_b.list_networks() == []
