"""An in-memory host: the whole driver contract without a hypervisor, for fast tests.

Domains follow the same state machine as :class:`backends.libvirt.driver.LibvirtDriver` (start
on running is a no-op, restart or suspend of a stopped domain is a BackendConflict, ...), and
keep a persistent and a live definition like libvirt: hot-plug on an active domain changes both,
:meth:`MemoryDriver.ensure_compute` on an active domain changes only the persistent one, which
becomes live at the next (cold) start.

Beyond the contract (``ex_`` extras for tests): :meth:`MemoryDriver.ex_volume_bytes` returns
what :meth:`~MemoryDriver.upload_volume` stored, :meth:`MemoryDriver.ex_set_console_log` sets
what :meth:`~MemoryDriver.console_log` shows for a compute.

Hosts: ``memory://host-a?cores=16&memory_mib=65536`` (defaults 8 cores, 16384 MiB). A URI with
a host part names a host shared by every driver of the process opened on the same name (the
first opener sets its capacity); ``memory://`` without a name gives a private host per driver.
:func:`reset_memory_hosts` forgets all shared hosts (for tests).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from backends.base import (
    DEFAULT_CONSOLE_BYTES,
    ComputeInfo,
    ComputeSpec,
    DiskSpec,
    HostDriver,
    HostInfo,
    NetworkInfo,
    NetworkSpec,
    NicSpec,
    PowerState,
    RestartMethod,
    StopMethod,
    UploadData,
    VolumeInfo,
    VolumeSpec,
    bridge_name,
    console_text,
    upload_pieces,
    volume_name,
)
from gateway.errors import BackendConflict, BackendError, BackendNotFound, BackendUnavailable

DEFAULT_CORES = 8
DEFAULT_MEMORY_MIB = 16384
ACTIVE = (PowerState.RUNNING, PowerState.PAUSED)


@dataclass
class _Definition:
    cores: int
    memory_mib: int
    disks: dict[str, DiskSpec] = field(default_factory=dict)  # by target dev
    nics: dict[str, NicSpec] = field(default_factory=dict)  # by lower-case MAC


@dataclass
class _Domain:
    config: _Definition
    live: _Definition | None = None  # set while active
    state: PowerState = PowerState.STOPPED
    console: str = ""  # what the serial console printed (set by tests)


@dataclass
class _Host:
    name: str
    cores: int
    memory_mib: int
    domains: dict[str, _Domain] = field(default_factory=dict)
    volumes: dict[str, VolumeInfo] = field(default_factory=dict)
    volume_data: dict[str, bytes] = field(default_factory=dict)  # uploaded volumes' bytes
    networks: dict[str, NetworkInfo] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


_HOSTS: dict[str, _Host] = {}
_HOSTS_LOCK = threading.Lock()


def reset_memory_hosts() -> None:
    """Forget every shared in-memory host (tests call this between cases)."""
    with _HOSTS_LOCK:
        _HOSTS.clear()


def _open_host(uri: str) -> _Host:
    parts = urlsplit(uri)
    if parts.scheme != "memory":
        raise BackendError(f"not a memory:// URI: {uri!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    try:
        cores = int(query.get("cores", DEFAULT_CORES))
        memory_mib = int(query.get("memory_mib", DEFAULT_MEMORY_MIB))
    except ValueError as exc:
        raise BackendError(f"bad capacity in {uri!r}: {exc}") from exc
    name = parts.hostname or ""
    if not name:
        return _Host("memory", cores, memory_mib)
    with _HOSTS_LOCK:
        return _HOSTS.setdefault(name, _Host(name, cores, memory_mib))


def _definition(spec: ComputeSpec) -> _Definition:
    disks = list(spec.disks)
    if spec.root_volume_id:
        disks.insert(0, DiskSpec(volume_id=spec.root_volume_id, target_dev="vda"))
    return _Definition(
        cores=spec.cores,
        memory_mib=spec.memory_mib,
        disks={disk.target_dev: disk for disk in disks},
        nics={nic.mac.lower(): nic for nic in spec.nics},
    )


class MemoryDriver(HostDriver):
    """A simulated host held in this process (see the module docstring for sharing)."""

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri
        self.options = options  # accepted for parity with real drivers, unused
        self._host = _open_host(uri)
        self._closed = False

    @classmethod
    def shares_volumes(cls, uri: str) -> bool:
        """A simulated volume has no lock: any number of domains may attach it."""
        return True

    def _locked(self) -> threading.RLock:
        if self._closed:
            raise BackendUnavailable(f"driver for {self.uri} is closed")
        return self._host.lock

    # --- host -------------------------------------------------------------------------------

    def host_info(self) -> HostInfo:
        """Capacity declared in the URI."""
        with self._locked():
            host = self._host
            return HostInfo(host.name, host.cores, host.memory_mib, "memory", {"uri": self.uri})

    def close(self) -> None:
        """Later calls raise BackendUnavailable; a shared host keeps its state."""
        self._closed = True

    # --- compute ----------------------------------------------------------------------------

    def _domain(self, compute_id: str) -> _Domain:
        domain = self._host.domains.get(compute_id)
        if domain is None:
            raise BackendNotFound(f"compute {compute_id}: no such domain")
        return domain

    @staticmethod
    def _info(compute_id: str, domain: _Domain) -> ComputeInfo:
        shown = domain.live or domain.config
        return ComputeInfo(
            id=compute_id,
            state=domain.state,
            cores=shown.cores,
            memory_mib=shown.memory_mib,
            disks=tuple(shown.disks),
            macs=tuple(shown.nics),
        )

    def ensure_compute(self, spec: ComputeSpec) -> ComputeInfo:
        """Define or redefine; an active domain's change applies at the next start."""
        with self._locked():
            domain = self._host.domains.get(spec.id)
            if domain is None:
                domain = self._host.domains[spec.id] = _Domain(_definition(spec))
            else:
                domain.config = _definition(spec)
            return self._info(spec.id, domain)

    def compute_info(self, compute_id: str) -> ComputeInfo:
        """Observed state; MISSING when undefined."""
        with self._locked():
            domain = self._host.domains.get(compute_id)
            if domain is None:
                return ComputeInfo(compute_id, PowerState.MISSING, 0, 0)
            return self._info(compute_id, domain)

    def list_computes(self) -> list[ComputeInfo]:
        """Every domain of the host."""
        with self._locked():
            return [self._info(cid, d) for cid, d in self._host.domains.items()]

    def start_compute(self, compute_id: str) -> ComputeInfo:
        """Start a stopped/crashed domain, resume a paused one; running: no-op."""
        with self._locked():
            domain = self._domain(compute_id)
            if domain.state not in ACTIVE:
                domain.live = copy.deepcopy(domain.config)
            domain.state = PowerState.RUNNING
            return self._info(compute_id, domain)

    def stop_compute(self, compute_id: str, method: StopMethod) -> ComputeInfo:
        """Stop (every method ends stopped at once here); stopped: no-op."""
        with self._locked():
            domain = self._domain(compute_id)
            domain.state, domain.live = PowerState.STOPPED, None
            return self._info(compute_id, domain)

    def restart_compute(self, compute_id: str, method: RestartMethod) -> ComputeInfo:
        """Running only: cold reloads the definition, warm/graceful keep the live one."""
        with self._locked():
            domain = self._domain(compute_id)
            if domain.state is not PowerState.RUNNING:
                raise BackendConflict(
                    f"compute {compute_id} is {domain.state}: only a running one restarts"
                )
            if method is RestartMethod.COLD:
                domain.live = copy.deepcopy(domain.config)
            return self._info(compute_id, domain)

    def suspend_compute(self, compute_id: str) -> ComputeInfo:
        """Pause a running domain; paused: no-op; otherwise BackendConflict."""
        with self._locked():
            domain = self._domain(compute_id)
            if domain.state not in ACTIVE:
                raise BackendConflict(
                    f"compute {compute_id} is {domain.state}: only a running one suspends"
                )
            domain.state = PowerState.PAUSED
            return self._info(compute_id, domain)

    def delete_compute(self, compute_id: str) -> None:
        """Forget the domain; missing: no-op."""
        with self._locked():
            self._host.domains.pop(compute_id, None)

    def console_log(self, compute_id: str, max_bytes: int = DEFAULT_CONSOLE_BYTES) -> str:
        """The end of the console text set by :meth:`ex_set_console_log` ("" until then)."""
        if max_bytes < 1:
            raise BackendError(f"console of compute {compute_id}: max_bytes must be positive")
        with self._locked():
            data = self._domain(compute_id).console.encode()
        return console_text(data[-max_bytes:], cut=len(data) > max_bytes)

    def ex_set_console_log(self, compute_id: str, text: str) -> None:
        """Set what the compute's serial console shows (tests stand in for the guest)."""
        with self._locked():
            self._domain(compute_id).console = text

    # --- hot-plug ---------------------------------------------------------------------------

    def _definitions(self, compute_id: str) -> list[_Definition]:
        domain = self._domain(compute_id)
        return [domain.config] + ([domain.live] if domain.live is not None else [])

    def attach_disk(self, compute_id: str, disk: DiskSpec) -> None:
        """Live (if active) and persistent; same target present: no-op."""
        with self._locked():
            for definition in self._definitions(compute_id):
                definition.disks.setdefault(disk.target_dev, disk)

    def detach_disk(self, compute_id: str, target_dev: str) -> None:
        """Live and persistent; absent or no domain: no-op."""
        with self._locked():
            if compute_id in self._host.domains:
                for definition in self._definitions(compute_id):
                    definition.disks.pop(target_dev, None)

    def attach_nic(self, compute_id: str, nic: NicSpec) -> None:
        """Live (if active) and persistent; same MAC present: no-op."""
        with self._locked():
            for definition in self._definitions(compute_id):
                definition.nics.setdefault(nic.mac.lower(), nic)

    def detach_nic(self, compute_id: str, mac: str) -> None:
        """Live and persistent; absent or no domain: no-op."""
        with self._locked():
            if compute_id in self._host.domains:
                for definition in self._definitions(compute_id):
                    definition.nics.pop(mac.lower(), None)

    # --- storage ----------------------------------------------------------------------------

    def _volume(self, volume_id: str) -> VolumeInfo:
        volume = self._host.volumes.get(volume_id)
        if volume is None:
            raise BackendNotFound(f"volume {volume_id}: none on {self._host.name}")
        return volume

    def ensure_volume(self, spec: VolumeSpec) -> VolumeInfo:
        """Create (a clone when ``backing_path`` is set); exists: grown if smaller."""
        with self._locked():
            current = self._host.volumes.get(spec.id)
            if current is not None:
                if current.capacity_bytes < spec.size_bytes:
                    return self.resize_volume(spec.id, spec.size_bytes)
                return current
            volume = VolumeInfo(
                id=spec.id,
                path=self._volume_path(spec.id),
                capacity_bytes=spec.size_bytes,
                allocation_bytes=0,
                format="qcow2",
                backing_path=spec.backing_path,
            )
            self._host.volumes[spec.id] = volume
            return volume

    def _volume_path(self, volume_id: str) -> str:
        return f"/memory/{self._host.name}/pool/{volume_name(volume_id)}"

    def volume_info(self, volume_id: str) -> VolumeInfo:
        """The volume; BackendNotFound if missing."""
        with self._locked():
            return self._volume(volume_id)

    def list_volumes(self) -> list[VolumeInfo]:
        """Every volume of the host."""
        with self._locked():
            return list(self._host.volumes.values())

    def upload_volume(self, volume_id: str, data: UploadData) -> VolumeInfo:
        """Replace the volume by a raw one holding ``data`` (kept, see :meth:`ex_volume_bytes`)."""
        data = b"".join(upload_pieces(data, 1 << 20))
        if not data:
            raise BackendError(f"volume {volume_id}: nothing to upload (0 bytes)")
        with self._locked():
            volume = VolumeInfo(
                id=volume_id,
                path=self._volume_path(volume_id),
                capacity_bytes=len(data),
                allocation_bytes=len(data),
                format="raw",
            )
            self._host.volumes[volume_id] = volume
            self._host.volume_data[volume_id] = bytes(data)
            return volume

    def ex_volume_bytes(self, volume_id: str) -> bytes:
        """What :meth:`upload_volume` stored in the volume, or in the volume it is a
        :meth:`copy_volume` of (b"" for one made empty)."""
        with self._locked():
            self._volume(volume_id)
            return self._host.volume_data.get(volume_id, b"")

    def copy_volume(self, source_id: str, volume_id: str) -> VolumeInfo:
        """A qcow2 volume of the source's capacity without backing, holding the source's
        uploaded bytes (if any); replaces a volume ``volume_id``."""
        if volume_id == source_id:
            raise BackendError(f"volume {source_id}: cannot be copied onto itself")
        with self._locked():
            source = self._volume(source_id)
            data = self._host.volume_data.get(source_id)
            self.delete_volume(volume_id)
            copy = VolumeInfo(
                id=volume_id,
                path=self._volume_path(volume_id),
                capacity_bytes=source.capacity_bytes,
                allocation_bytes=source.allocation_bytes,
                format="qcow2",
            )
            self._host.volumes[volume_id] = copy
            if data is not None:
                self._host.volume_data[volume_id] = data
            return copy

    def resize_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo:
        """Grow; shrinking raises BackendConflict."""
        with self._locked():
            volume = self._volume(volume_id)
            if size_bytes < volume.capacity_bytes:
                raise BackendConflict(
                    f"volume {volume_id} is {volume.capacity_bytes} bytes: "
                    f"cannot shrink to {size_bytes}"
                )
            grown = dataclasses.replace(volume, capacity_bytes=size_bytes)
            self._host.volumes[volume_id] = grown
            return grown

    def delete_volume(self, volume_id: str) -> None:
        """Forget the volume; missing: no-op."""
        with self._locked():
            self._host.volumes.pop(volume_id, None)
            self._host.volume_data.pop(volume_id, None)

    # --- network ----------------------------------------------------------------------------

    def _network(self, network_id: str) -> NetworkInfo:
        network = self._host.networks.get(network_id)
        if network is None:
            raise BackendNotFound(f"network {network_id}: not defined on {self._host.name}")
        return network

    def ensure_network(self, spec: NetworkSpec) -> NetworkInfo:
        """Define if missing, and start."""
        with self._locked():
            if spec.mode == "bridge" and not spec.bridge_device:
                raise BackendError(f"network {spec.id}: mode 'bridge' needs a bridge_device")
            if spec.id not in self._host.networks:
                bridge = spec.bridge_device if spec.mode == "bridge" else bridge_name(spec.id)
                self._host.networks[spec.id] = NetworkInfo(spec.id, False, bridge or "")
            return self.set_network_active(spec.id, True)

    def network_info(self, network_id: str) -> NetworkInfo:
        """The network; BackendNotFound if not defined."""
        with self._locked():
            return self._network(network_id)

    def list_networks(self) -> list[NetworkInfo]:
        """Every network of the host."""
        with self._locked():
            return list(self._host.networks.values())

    def set_network_active(self, network_id: str, active: bool) -> NetworkInfo:
        """Start or stop a defined network."""
        with self._locked():
            network = self._network(network_id)
            changed = NetworkInfo(network.id, active, network.bridge)
            self._host.networks[network_id] = changed
            return changed

    def delete_network(self, network_id: str) -> None:
        """Forget the network; missing: no-op."""
        with self._locked():
            self._host.networks.pop(network_id, None)
