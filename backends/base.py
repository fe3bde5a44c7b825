"""The driver contract every host backend implements.

A driver manages one hypervisor host. All methods are idempotent where the name says
``ensure``/``delete``: calling them twice, or after a crash half way, converges. Objects are
addressed by the entity uuid of the OCCI resource they realise; drivers derive backend names
from it (:func:`domain_name`, :func:`volume_name`, :func:`network_name`, :func:`bridge_name`).
A compute's config drive is the volume :func:`config_drive_volume_id`.

Errors: every method may raise :class:`~gateway.errors.BackendUnavailable` (host unreachable)
and :class:`~gateway.errors.BackendError` (anything else, message readable by a person);
methods on a named object raise :class:`~gateway.errors.BackendNotFound` when it does not
exist (except ``delete_*``, which succeed quietly), and :class:`~gateway.errors.BackendConflict`
when the object's state forbids the operation.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import BinaryIO

UploadData = bytes | BinaryIO
"""What :meth:`HostDriver.upload_volume` takes: the bytes, or a binary file read from its
current position to its end, in pieces (an image built on disk never sits in memory)."""


def upload_size(data: UploadData) -> int:
    """The number of bytes ``data`` holds (a file's from its current position)."""
    if isinstance(data, bytes):
        return len(data)
    here = data.tell()
    end = data.seek(0, os.SEEK_END)
    data.seek(here)
    return end - here


def upload_pieces(data: UploadData, piece: int) -> Iterator[bytes]:
    """``data`` in pieces of at most ``piece`` bytes."""
    if isinstance(data, bytes):
        view = memoryview(data)
        for start in range(0, len(data), piece):
            yield bytes(view[start : start + piece])
        return
    while chunk := data.read(piece):
        yield chunk


class PowerState(StrEnum):
    """Observed state of a domain, mapped from the backend through one table per driver."""

    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    MISSING = "missing"
    CRASHED = "crashed"


class StopMethod(StrEnum):
    GRACEFUL = "graceful"  # ACPI power button, the guest shuts down
    ACPIOFF = "acpioff"  # same as graceful on libvirt
    POWEROFF = "poweroff"  # pull the plug


class RestartMethod(StrEnum):
    GRACEFUL = "graceful"  # guest reboot via ACPI
    WARM = "warm"  # reset
    COLD = "cold"  # destroy + start


@dataclass(frozen=True)
class DiskSpec:
    """A disk of a domain: the volume of an OCCI storage (or the instance root disk)."""

    volume_id: str
    target_dev: str  # vda, vdb, ...
    read_only: bool = False


@dataclass(frozen=True)
class NicSpec:
    """A network interface of a domain."""

    link_id: str
    network_id: str
    mac: str


@dataclass(frozen=True)
class ComputeSpec:
    """Everything a host needs to define a domain for an OCCI compute."""

    id: str
    name: str
    cores: int
    memory_mib: int
    architecture: str = "x64"
    root_volume_id: str | None = None  # the cloned os_tpl image, vda
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    config_drive: str | None = None  # path of an ISO attached as a cdrom
    hostname: str | None = None


@dataclass(frozen=True)
class VolumeSpec:
    """A volume in the host's pool. ``backing_path`` makes a copy-on-write clone."""

    id: str
    size_bytes: int
    backing_path: str | None = None
    backing_format: str = "qcow2"


@dataclass(frozen=True)
class NetworkSpec:
    """A network realised on a host: a bridge, optionally tagged, with an address plan."""

    id: str
    vlan: int | None = None
    address: str | None = None  # CIDR of the network, e.g. 192.0.2.0/24
    gateway: str | None = None
    mode: str = "isolated"  # isolated | nat | bridge
    bridge_device: str | None = None


@dataclass(frozen=True)
class ComputeInfo:
    id: str
    state: PowerState
    cores: int
    memory_mib: int
    disks: tuple[str, ...] = ()  # target devs
    macs: tuple[str, ...] = ()


@dataclass(frozen=True)
class VolumeInfo:
    """A volume as its pool reports it; ``backing_path`` is set for a copy-on-write clone
    (the file or LV it reads unwritten data from) and None for a standalone volume."""

    id: str
    path: str
    capacity_bytes: int
    allocation_bytes: int
    format: str
    backing_path: str | None = None


@dataclass(frozen=True)
class NetworkInfo:
    id: str
    active: bool
    bridge: str


@dataclass(frozen=True)
class HostInfo:
    """Capacity of a host as the hypervisor reports it."""

    name: str
    cores: int
    memory_mib: int
    hypervisor: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def domain_name(compute_id: str) -> str:
    return f"nimbo-{compute_id}"


def volume_name(volume_id: str) -> str:
    """Name of a volume in a file pool (a logical pool drops the suffix).

    Raw volumes (``upload_volume``) are named the same way, so every lookup by id finds them:
    the suffix does not tell the format, the pool's record of the volume does.
    """
    return f"nimbo-{volume_id}.qcow2"


def config_drive_volume_id(compute_id: str) -> str:
    """Id of the volume holding a compute's config drive ISO (see ``upload_volume``)."""
    return f"{compute_id}-configdrive"


def network_name(network_id: str) -> str:
    return f"nimbo-{network_id}"


def bridge_name(network_id: str) -> str:
    """Linux bridge names are at most 15 characters."""
    return f"nbr{network_id.replace('-', '')[:10]}"


DEFAULT_CONSOLE_BYTES = 65536
"""How much of the end of a serial console ``console_log`` returns by default."""


def console_text(tail: bytes, *, cut: bool) -> str:
    """Console bytes as text: UTF-8 with bad bytes replaced.

    ``cut`` says ``tail`` starts mid-log: the continuation bytes of a character cut in two are
    dropped rather than shown as a replacement character.
    """
    if cut:
        start = 0
        while start < min(3, len(tail)) and 0x80 <= tail[start] < 0xC0:
            start += 1
        tail = tail[start:]
    return tail.decode("utf-8", errors="replace")


class HostDriver(ABC):
    """One hypervisor host: its domains, its storage pool and its networks."""

    # --- host -----------------------------------------------------------------------------

    @classmethod
    def shares_volumes(cls, uri: str) -> bool:
        """Whether domains of the host at ``uri`` can have one volume attached, writable, at
        the same time (multi-attach). The API asks before it links a storage that is already
        linked to another compute, without opening a connection: where not, it refuses with
        409 rather than letting the attach fail on the host. Default: no."""
        return False

    @abstractmethod
    def host_info(self) -> HostInfo:
        """Cores and memory of the host."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection. The driver may not be used afterwards."""

    # --- compute --------------------------------------------------------------------------

    @abstractmethod
    def ensure_compute(self, spec: ComputeSpec) -> ComputeInfo:
        """Define the domain from ``spec`` (or update a stopped domain's definition) without
        starting it. Returns its info."""

    @abstractmethod
    def compute_info(self, compute_id: str) -> ComputeInfo:
        """Observed state. A domain that does not exist has state ``MISSING`` (no raise)."""

    @abstractmethod
    def list_computes(self) -> list[ComputeInfo]:
        """All domains this driver manages on the host (those named by :func:`domain_name`)."""

    @abstractmethod
    def start_compute(self, compute_id: str) -> ComputeInfo:
        """Start (or resume a paused) domain. Already running: no-op."""

    @abstractmethod
    def stop_compute(self, compute_id: str, method: StopMethod) -> ComputeInfo:
        """Stop the domain. Already stopped: no-op. ``graceful`` waits for the guest to stop
        within a bounded time, then powers off."""

    @abstractmethod
    def restart_compute(self, compute_id: str, method: RestartMethod) -> ComputeInfo:
        """Restart a running domain; BackendConflict if it is not running."""

    @abstractmethod
    def suspend_compute(self, compute_id: str) -> ComputeInfo:
        """Pause a running domain; already paused: no-op; stopped: BackendConflict."""

    @abstractmethod
    def delete_compute(self, compute_id: str) -> None:
        """Destroy and undefine the domain. Missing: no-op. Disks are not touched."""

    @abstractmethod
    def console_log(self, compute_id: str, max_bytes: int = DEFAULT_CONSOLE_BYTES) -> str:
        """The end of the compute's serial console output: at most its last ``max_bytes`` bytes,
        as text (UTF-8, undecodable bytes replaced). The log accumulates over the compute's
        boots; "" when nothing was written yet (e.g. never started). BackendNotFound when the
        compute does not exist; BackendError when ``max_bytes`` is not positive or this driver
        cannot read that host's console from here (libvirt: only on a local URI)."""

    @abstractmethod
    def attach_disk(self, compute_id: str, disk: DiskSpec) -> None:
        """Attach live if running, else to the persistent definition. Already attached: no-op."""

    @abstractmethod
    def detach_disk(self, compute_id: str, target_dev: str) -> None:
        """Detach live if running, and from the definition. Not attached: no-op."""

    @abstractmethod
    def attach_nic(self, compute_id: str, nic: NicSpec) -> None:
        """Attach live if running, else to the definition. Same MAC attached: no-op."""

    @abstractmethod
    def detach_nic(self, compute_id: str, mac: str) -> None:
        """Detach by MAC, live and persistent. Not attached: no-op."""

    # --- storage --------------------------------------------------------------------------

    @abstractmethod
    def ensure_volume(self, spec: VolumeSpec) -> VolumeInfo:
        """Create the volume in the host's pool (a clone when ``backing_path`` is set). Exists
        already: returned as is (grown to ``size_bytes`` if smaller)."""

    @abstractmethod
    def volume_info(self, volume_id: str) -> VolumeInfo:
        """The volume; BackendNotFound if missing."""

    @abstractmethod
    def list_volumes(self) -> list[VolumeInfo]:
        """All volumes this driver manages in its pool."""

    @abstractmethod
    def upload_volume(self, volume_id: str, data: UploadData) -> VolumeInfo:
        """Create the raw volume ``volume_id`` in the host's pool holding exactly ``data``,
        sent over the driver's connection (so it works on a remote host: the worker uses it for
        the config drive ISO and for CDMI export images). ``data`` is bytes or a binary file
        (see :data:`UploadData`), which is sent in pieces: the whole never needs to be in
        memory. A volume of that id already there, of any format, is deleted first: uploading
        replaces, and uploading the same bytes twice converges.

        Returns the volume: format ``raw``, ``path`` the host path a domain can use (e.g.
        ``ComputeSpec.config_drive``), ``capacity_bytes`` the size of ``data`` in a file pool;
        a block pool (LVM) rounds the size up to its allocation unit and the bytes past
        ``data`` read as zeros. If the transfer fails, the volume is deleted. Empty ``data``:
        BackendError."""

    @abstractmethod
    def copy_volume(self, source_id: str, volume_id: str) -> VolumeInfo:
        """Create the volume ``volume_id`` in the host's pool as a full, standalone copy of the
        volume ``source_id``: every byte the source shows (a clone's backing chain flattened),
        the source's capacity, the pool's volume format (qcow2 in a file pool, raw on LVM) and
        no backing store, so the copy outlives the source and whatever the source was cloned
        from. A volume ``volume_id`` already there, of any format, is deleted first: copying
        replaces, copying twice converges and a copy interrupted half way is redone.

        The source may be a disk of a running or paused compute: the copy is then the disk as
        it was at one instant (crash-consistent, like pulling the plug), taken without stopping
        the guest. BackendNotFound when the source does not exist (nothing is created);
        BackendError when ``volume_id`` is ``source_id``. If the copy fails, the half-made
        volume is deleted."""

    @abstractmethod
    def resize_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo:
        """Grow the volume. Shrinking raises BackendConflict."""

    @abstractmethod
    def delete_volume(self, volume_id: str) -> None:
        """Delete the volume. Missing: no-op."""

    # --- network --------------------------------------------------------------------------

    @abstractmethod
    def ensure_network(self, spec: NetworkSpec) -> NetworkInfo:
        """Define the network (bridge) if missing, and start it. Returns its info."""

    @abstractmethod
    def network_info(self, network_id: str) -> NetworkInfo:
        """The network; BackendNotFound if not defined on this host."""

    @abstractmethod
    def list_networks(self) -> list[NetworkInfo]:
        """All networks this driver manages on the host."""

    @abstractmethod
    def set_network_active(self, network_id: str, active: bool) -> NetworkInfo:
        """Start or stop a defined network."""

    @abstractmethod
    def delete_network(self, network_id: str) -> None:
        """Stop and undefine the network. Missing: no-op."""
