"""The libvirt host driver: domains, one storage pool and networks on one hypervisor host.

One driver holds one libvirt connection, opened on first use, reopened once when it has
dropped, released by :meth:`LibvirtDriver.close`. The same code serves ``qemu:///system``
(real KVM/QEMU guests), remote URIs (``qemu+ssh://host/system``) and libvirt's ``test:``
driver.

**State of** ``test:`` **URIs** (checked with libvirt 9.0):

- ``test:///default`` is one in-memory host shared by every connection of the process
  (preloaded with a domain ``test``, a network ``default`` and a pool ``default-pool``).
- ``test:///<abs path>.xml`` (a custom node file, see ``tests/fixtures/hosts/``) is parsed
  anew by every ``libvirt.open()``: each connection gets its own private host and two
  connections to the same file share nothing; everything is lost when the connection closes.
  A worker holds one driver (so one connection) per host for its life, so within a worker the
  simulated host behaves like a real one; two drivers on the same file are two hosts.

**Test driver gaps** (all marked ``TEST DRIVER`` in the code, used only when the URI scheme is
``test`` and libvirt answers ``VIR_ERR_NO_SUPPORT``; on QEMU the real call is made and its error
is raised): it has no ``attachDeviceFlags``/``detachDeviceFlags`` (emulated by redefining the
domain and power-cycling it if active), no ``virStorageVolResize`` (emulated by recreating the
volume with the new capacity), no ``virStorageVolUpload`` (``upload_volume`` creates the volume
with the data's capacity and sends nothing: simulated volumes hold no bytes) and no
``getDomainCapabilities`` (domain type is ``test``, the only one its capabilities advertise,
although it accepts any) and no ``virDomainBackupBegin`` (``copy_volume`` copies a running
domain's disk as it copies any other: its domains lock no image). Its ``shutdown`` powers off
at once. Its domains write no console: ``console_log`` reads the file their XML names, as on
QEMU, and finds it missing ("").

**Consoles**: a domain's serial console goes to a log file on its host (``console_dir``),
named in the domain XML. :meth:`LibvirtDriver.console_log` reads that file, so only when the
URI is local (no host part and no transport but a unix socket: ``qemu:///system``,
``qemu:///session``, ``test:``); on a remote URI it raises BackendError: read the console on
that host (its own worker drives it through a local URI).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import libvirt

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
    console_text,
    domain_name,
    network_name,
    upload_pieces,
    upload_size,
    volume_name,
)
from backends.libvirt import vlan, xml
from backends.libvirt.errors import is_unsupported, translated
from backends.libvirt.states import power_state
from gateway.errors import BackendConflict, BackendError, BackendNotFound, BackendUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Obj = TypeVar("Obj")  # a libvirt object
Info = TypeVar("Info")  # our info about it
_Finder = Callable[[str], Element | None]

PREFIX = "nimbo-"
ACTIVE = (PowerState.RUNNING, PowerState.PAUSED)
LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG
MIB = 1024**2
UPLOAD_CHUNK_BYTES = 64 * 1024
"""Bytes per ``virStreamSend`` (well under libvirt's 256 KiB RPC payload limit)."""


def is_local_uri(uri: str) -> bool:
    """True when ``uri`` reaches the libvirt of this machine: no host part and no transport
    but a unix socket (``qemu:///system``, ``qemu+unix:///session``, ``test:///default``)."""
    parts = urlsplit(uri)
    return not parts.netloc and parts.scheme.partition("+")[2] in ("", "unix")


def read_console(path: str, max_bytes: int, *, what: str) -> str:
    """The last ``max_bytes`` of the log file at ``path`` as text; "" when it does not exist."""
    try:
        with open(path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - max_bytes))
            tail = log.read(max_bytes)
    except FileNotFoundError:
        return ""  # never started: nothing written yet
    except OSError as exc:
        raise BackendError(f"{what}: cannot read {path}: {exc.strerror or exc}") from exc
    return console_text(tail, cut=size > max_bytes)


def _still_there(info: Callable[[Obj], Info], listed: list[Obj]) -> list[Info]:
    """``info`` of each listed object but those gone since the listing (BackendNotFound): other
    workers and people share the host, and a listing is no lock."""
    found: list[Info] = []
    for item in listed:
        with contextlib.suppress(BackendNotFound):
            found.append(info(item))
    return found


def upload_chunks(data: UploadData, size: int) -> Iterator[bytes]:
    """``data`` then zeros up to ``size`` bytes, in pieces of at most UPLOAD_CHUNK_BYTES."""
    sent = 0
    for piece in upload_pieces(data, UPLOAD_CHUNK_BYTES):
        sent += len(piece)
        yield piece
    padding = size - sent
    while padding > 0:
        yield bytes(min(padding, UPLOAD_CHUNK_BYTES))
        padding -= UPLOAD_CHUNK_BYTES


class LibvirtDriver(HostDriver):
    """A hypervisor host reached through libvirt.

    Options: ``pool_*`` name the storage pool the driver keeps its volumes in (created, built,
    started and set to autostart on first use; a ``logical`` pool expects its volume group
    ``basename(pool_path)`` to exist). ``virt_type``: ``kvm``, ``qemu`` or ``auto`` (kvm when
    libvirt's domain capabilities say this host can run it). ``network_mode``/``bridge_device``
    are the host's defaults for a network spec left at ``isolated``/without a device.
    ``console_dir`` holds the serial console logs (default ``/var/log/libvirt/qemu``), which
    :meth:`console_log` reads on a local URI.
    ``graceful_timeout`` bounds a graceful stop before power-off. ``virtual_switch``: ``linux``
    or ``openvswitch`` (see :func:`backends.libvirt.xml.network_xml` for VLANs).
    """

    @classmethod
    def shares_volumes(cls, uri: str) -> bool:
        """Only on libvirt's ``test:///`` driver, whose simulated domains lock nothing.

        QEMU takes an exclusive write lock on every writable disk image it opens (qcow2 files
        and LVs alike): a second domain given the same volume fails to start or to hot-plug it
        ("Failed to get "write" lock"), and even a read-only attach needs the writer to share.
        Sharing would take raw volumes marked ``<shareable/>`` and a cluster file system in
        the guests; this driver's volumes are qcow2, so a volume is one domain's at a time."""
        return uri.split(":", 1)[0] == "test"

    def __init__(
        self,
        uri: str,
        *,
        pool_name: str = "nimbostratus",
        pool_type: str = "dir",
        pool_path: str = "/var/lib/nimbostratus/pool",
        virt_type: str = "auto",
        network_mode: str = "isolated",
        bridge_device: str | None = None,
        console_dir: str | None = None,
        graceful_timeout: float = 60.0,
        virtual_switch: str = "linux",
        vlan_uplink: str | None = None,
    ) -> None:
        if virt_type not in ("auto", "kvm", "qemu"):
            raise BackendError(f"unknown virt_type {virt_type!r} (auto, kvm or qemu)")
        if pool_type not in ("dir", "logical"):
            raise BackendError(f"unknown pool_type {pool_type!r} (dir or logical)")
        self.uri = uri
        self.pool_name = pool_name
        self.pool_type = pool_type
        self.pool_path = pool_path.rstrip("/")
        self.virt_type = virt_type
        self.network_mode = network_mode
        self.bridge_device = bridge_device
        self.console_dir = console_dir or "/var/log/libvirt/qemu"
        self.graceful_timeout = graceful_timeout
        self.virtual_switch = virtual_switch
        self.vlan_uplink = vlan_uplink or None
        self.poll_interval = 0.2
        self._is_test = uri.split(":", 1)[0] == "test"
        self._is_local = is_local_uri(uri)
        self._connection: libvirt.virConnect | None = None
        self._closed = False
        self._domain_types: dict[str, str] = {}

    # --- connection -------------------------------------------------------------------------

    def _conn(self) -> libvirt.virConnect:
        if self._closed:
            raise BackendUnavailable(f"driver for {self.uri} is closed")
        if self._connection is not None:
            try:
                if self._connection.isAlive():
                    return self._connection
            except libvirt.libvirtError:
                pass
            self._drop()
        with translated(f"connect to {self.uri}", connecting=True):
            self._connection = libvirt.open(self.uri)
        return self._connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(libvirt.libvirtError):  # already gone: nothing to release
                connection.close()

    def close(self) -> None:
        """Close the connection; later calls raise BackendUnavailable."""
        self._drop()
        self._closed = True

    def _lookup(self, action: str, lookup: Callable[[str], T], name: str) -> T | None:
        """``lookup(name)``, or None when libvirt says the object does not exist."""
        try:
            with translated(f"{action} {name}"):
                return lookup(name)
        except BackendNotFound:
            return None

    # --- host -------------------------------------------------------------------------------

    def host_info(self) -> HostInfo:
        """Cores (active CPUs) and memory from ``getInfo``; name from ``getHostname``."""
        conn = self._conn()
        with translated(f"host info of {self.uri}"):
            arch, memory_mib, cpus, mhz = conn.getInfo()[:4]
            hostname = conn.getHostname()
            hypervisor = conn.getType().lower()
        if self._is_test and self.uri.endswith(".xml"):
            # TEST DRIVER: getHostname is this machine's; name the simulated host by its file
            hostname = os.path.splitext(os.path.basename(self.uri))[0]
        extra = {"uri": self.uri, "arch": str(arch), "mhz": str(mhz)}
        return HostInfo(hostname, int(cpus), int(memory_mib), hypervisor, extra)

    # --- compute ----------------------------------------------------------------------------

    def _domain(self, compute_id: str) -> libvirt.virDomain | None:
        return self._lookup("look up domain", self._conn().lookupByName, domain_name(compute_id))

    def _require_domain(self, compute_id: str) -> libvirt.virDomain:
        domain = self._domain(compute_id)
        if domain is None:
            raise BackendNotFound(f"compute {compute_id}: no domain {domain_name(compute_id)}")
        return domain

    @staticmethod
    def _state(domain: libvirt.virDomain) -> PowerState:
        with translated(f"state of {domain.name()}"):
            return power_state(domain.state()[0])

    @staticmethod
    def _xml(domain: libvirt.virDomain, *, inactive: bool = False) -> str:
        with translated(f"XML of {domain.name()}"):
            return str(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0))

    def _info(self, domain: libvirt.virDomain) -> ComputeInfo:
        text = self._xml(domain)
        cores, memory_mib = xml.domain_size(text)
        entity_id = xml.domain_entity_id(text) or domain.name().removeprefix(PREFIX)
        return ComputeInfo(
            id=entity_id,
            state=self._state(domain),
            cores=cores,
            memory_mib=memory_mib,
            disks=xml.domain_disks(text),
            macs=xml.domain_macs(text),
        )

    def _domain_type(self, arch: str) -> str:
        if self._is_test:
            return "test"  # TEST DRIVER: the only type its capabilities advertise
        if self.virt_type != "auto":
            return self.virt_type
        if arch not in self._domain_types:
            try:
                self._conn().getDomainCapabilities(None, arch, None, "kvm", 0)
                self._domain_types[arch] = "kvm"
            except libvirt.libvirtError:
                self._domain_types[arch] = "qemu"  # no usable /dev/kvm for this arch
        return self._domain_types[arch]

    def _volume_name(self, volume_id: str) -> str:
        name = volume_name(volume_id)
        return name.removesuffix(".qcow2") if self.pool_type == "logical" else name

    def _in_logical_pool(self, path: str | None) -> bool:
        """True for the path of an LV of our logical pool (e.g. an uploaded config drive)."""
        return (
            self.pool_type == "logical"
            and path is not None
            and os.path.dirname(path) == self.pool_path
        )

    def _disk_source(self, disk: DiskSpec) -> xml.DiskSource:
        logical = self.pool_type == "logical"
        return xml.DiskSource(
            target_dev=disk.target_dev,
            path=f"{self.pool_path}/{self._volume_name(disk.volume_id)}",
            format="raw" if logical else "qcow2",
            block=logical,
            read_only=disk.read_only,
        )

    def ensure_compute(self, spec: ComputeSpec) -> ComputeInfo:
        """Define (or redefine) the domain; a running domain's change applies at next boot."""
        disks = list(spec.disks)
        if spec.root_volume_id:
            disks.insert(0, DiskSpec(volume_id=spec.root_volume_id, target_dev="vda"))
        text = xml.domain_xml(
            spec,
            domain_type=self._domain_type(xml.guest_arch(spec.architecture)),
            disks=[self._disk_source(disk) for disk in disks],
            console_path=f"{self.console_dir}/{domain_name(spec.id)}.console.log",
            config_drive_block=self._in_logical_pool(spec.config_drive),
        )
        with translated(f"define domain {domain_name(spec.id)}"):
            domain = self._conn().defineXML(text)
        return self._info(domain)

    def compute_info(self, compute_id: str) -> ComputeInfo:
        """Observed state; MISSING (not an error) when the domain does not exist."""
        domain = self._domain(compute_id)
        if domain is None:
            return ComputeInfo(compute_id, PowerState.MISSING, 0, 0)
        return self._info(domain)

    def list_computes(self) -> list[ComputeInfo]:
        """Every domain named ``nimbo-*`` on the host (one undefined meanwhile is left out)."""
        with translated(f"list domains on {self.uri}"):
            domains = self._conn().listAllDomains(0)
        return _still_there(self._info, [d for d in domains if d.name().startswith(PREFIX)])

    def start_compute(self, compute_id: str) -> ComputeInfo:
        """Start a stopped (or crashed) domain, resume a paused one; running: no-op."""
        domain = self._require_domain(compute_id)
        state = self._state(domain)
        with translated(f"start {domain.name()}"):
            if state is PowerState.PAUSED:
                domain.resume()
            elif state is PowerState.CRASHED:
                domain.destroy()
                domain.create()
            elif state is PowerState.STOPPED:
                domain.create()
        return self._info(domain)

    def stop_compute(self, compute_id: str, method: StopMethod) -> ComputeInfo:
        """Power off, or shut down via ACPI and power off after ``graceful_timeout``."""
        domain = self._require_domain(compute_id)
        state = self._state(domain)
        if state is PowerState.STOPPED:
            return self._info(domain)
        if method is StopMethod.POWEROFF or state is PowerState.CRASHED:
            self._destroy(domain)
        else:
            self._shutdown(domain, paused=state is PowerState.PAUSED)
        return self._info(domain)

    def _destroy(self, domain: libvirt.virDomain) -> None:
        try:
            with translated(f"power off {domain.name()}"):
                domain.destroy()
        except BackendConflict:
            pass  # stopped meanwhile: that is what we wanted

    def _shutdown(self, domain: libvirt.virDomain, *, paused: bool) -> None:
        try:
            with translated(f"shut down {domain.name()}"):
                if paused:
                    domain.resume()  # a paused guest cannot see the ACPI button
                domain.shutdown()
        except BackendConflict:
            return  # stopped meanwhile
        deadline = time.monotonic() + self.graceful_timeout
        while time.monotonic() < deadline:
            if self._state(domain) is PowerState.STOPPED:
                return
            time.sleep(self.poll_interval)
        self._destroy(domain)

    def restart_compute(self, compute_id: str, method: RestartMethod) -> ComputeInfo:
        """warm = reset, graceful = ACPI reboot, cold = power off and start."""
        domain = self._require_domain(compute_id)
        state = self._state(domain)
        if state is not PowerState.RUNNING:
            raise BackendConflict(f"compute {compute_id} is {state}: only a running one restarts")
        with translated(f"restart ({method}) {domain.name()}"):
            if method is RestartMethod.WARM:
                domain.reset(0)
            elif method is RestartMethod.GRACEFUL:
                domain.reboot(0)
            else:
                domain.destroy()
                domain.create()
        return self._info(domain)

    def suspend_compute(self, compute_id: str) -> ComputeInfo:
        """Pause a running domain; paused: no-op; otherwise BackendConflict."""
        domain = self._require_domain(compute_id)
        state = self._state(domain)
        if state is PowerState.RUNNING:
            with translated(f"suspend {domain.name()}"):
                domain.suspend()
        elif state is not PowerState.PAUSED:
            raise BackendConflict(f"compute {compute_id} is {state}: only a running one suspends")
        return self._info(domain)

    def delete_compute(self, compute_id: str) -> None:
        """Power off and undefine; the disks stay. Missing: no-op."""
        domain = self._domain(compute_id)
        if domain is None:
            return
        if self._state(domain) is not PowerState.STOPPED:
            self._destroy(domain)
        try:
            with translated(f"undefine {domain.name()}"):
                domain.undefine()
        except BackendNotFound:
            pass  # deleted meanwhile

    def console_log(self, compute_id: str, max_bytes: int = DEFAULT_CONSOLE_BYTES) -> str:
        """Tail of the serial log file the domain XML names; local URIs only (module doc)."""
        what = f"console of compute {compute_id}"
        if max_bytes < 1:
            raise BackendError(f"{what}: max_bytes must be positive, not {max_bytes}")
        if not self._is_local:
            raise BackendError(
                f"{what}: {self.uri} is a remote host and the console log is a file on it; "
                "read it on that host (through a local URI such as qemu:///system)"
            )
        path = xml.console_path(self._xml(self._require_domain(compute_id)))
        return "" if path is None else read_console(path, max_bytes, what=what)

    # --- hot-plug ---------------------------------------------------------------------------

    def attach_disk(self, compute_id: str, disk: DiskSpec) -> None:
        """Attach live and persistent when active, persistent only when stopped."""
        element = xml.disk_element(self._disk_source(disk))
        self._plug(compute_id, element, lambda text: xml.find_disk(text, disk.target_dev))

    def detach_disk(self, compute_id: str, target_dev: str) -> None:
        """Detach from the live domain (if active) and the definition; absent: no-op."""
        self._unplug(compute_id, lambda text: xml.find_disk(text, target_dev))

    def attach_nic(self, compute_id: str, nic: NicSpec) -> None:
        """Attach a virtio NIC on the network; same MAC present: no-op."""
        element = xml.nic_element(nic)
        self._plug(compute_id, element, lambda text: xml.find_nic(text, nic.mac))

    def detach_nic(self, compute_id: str, mac: str) -> None:
        """Detach the NIC with ``mac``, live and persistent; absent: no-op."""
        self._unplug(compute_id, lambda text: xml.find_nic(text, mac))

    def _plug(self, compute_id: str, element: Element, find: _Finder) -> None:
        domain = self._require_domain(compute_id)
        active = self._state(domain) in ACTIVE
        flags = 0
        if active and find(self._xml(domain)) is None:
            flags |= LIVE
        if find(self._xml(domain, inactive=True)) is None:
            flags |= CONFIG
        if flags:
            self._device_call(domain, "attach", element, flags)

    def _unplug(self, compute_id: str, find: _Finder) -> None:
        domain = self._domain(compute_id)
        if domain is None:
            return
        live = find(self._xml(domain)) if self._state(domain) in ACTIVE else None
        persistent = find(self._xml(domain, inactive=True))
        flags = (LIVE if live is not None else 0) | (CONFIG if persistent is not None else 0)
        element = live if live is not None else persistent
        if element is not None:
            self._device_call(domain, "detach", element, flags)

    def _device_call(
        self, domain: libvirt.virDomain, verb: str, element: Element, flags: int
    ) -> None:
        call = domain.attachDeviceFlags if verb == "attach" else domain.detachDeviceFlags
        try:
            with translated(f"{verb} {element.tag} on {domain.name()}"):
                call(xml.device_xml(element), flags)
        except BackendError as exc:
            if not (self._is_test and is_unsupported(exc)):
                raise
            self._emulate_hotplug(domain, verb, element)

    def _emulate_hotplug(self, domain: libvirt.virDomain, verb: str, element: Element) -> None:
        """TEST DRIVER: no device hot-plug API. Rewrite the persistent definition, then
        power-cycle an active domain so its live definition follows (state is kept)."""
        state = self._state(domain)
        change = xml.with_device if verb == "attach" else xml.without_device
        with translated(f"redefine {domain.name()} (test driver {verb})"):
            self._conn().defineXML(change(self._xml(domain, inactive=True), element))
            if state in ACTIVE:
                domain.destroy()
                domain.create()
            if state is PowerState.PAUSED:
                domain.suspend()

    # --- storage ----------------------------------------------------------------------------

    def _pool(self) -> libvirt.virStoragePool:
        """The driver's pool, defined, built, started and set to autostart if need be."""
        conn = self._conn()
        pool = self._lookup("look up pool", conn.storagePoolLookupByName, self.pool_name)
        with translated(f"prepare pool {self.pool_name}"):
            if pool is None:
                text = xml.pool_xml(self.pool_name, self.pool_type, self.pool_path)
                pool = conn.storagePoolDefineXML(text, 0)
                if self.pool_type == "dir":  # a logical pool's volume group exists already
                    pool.build(0)  # a dir pool: mkdir -p of its path
                pool.setAutostart(1)
            if not pool.isActive():
                pool.create(0)
        return pool

    def _volume(self, volume_id: str) -> libvirt.virStorageVol | None:
        pool = self._pool()
        return self._lookup(
            "look up volume", pool.storageVolLookupByName, self._volume_name(volume_id)
        )

    def _require_volume(self, volume_id: str) -> libvirt.virStorageVol:
        volume = self._volume(volume_id)
        if volume is None:
            raise BackendNotFound(f"volume {volume_id}: none in pool {self.pool_name}")
        return volume

    @staticmethod
    def _volume_info(volume_id: str, volume: libvirt.virStorageVol) -> VolumeInfo:
        with translated(f"info of volume {volume.name()}"):
            _kind, capacity, allocation = volume.info()
            text = volume.XMLDesc(0)
            return VolumeInfo(
                id=volume_id,
                path=volume.path(),
                capacity_bytes=int(capacity),
                allocation_bytes=int(allocation),
                format=xml.volume_format(text),
                backing_path=xml.volume_backing(text),
            )

    def ensure_volume(self, spec: VolumeSpec) -> VolumeInfo:
        """Create the volume (a copy-on-write clone with ``backing_path``); grow if smaller."""
        volume = self._volume(spec.id)
        if volume is not None:
            return self._grow(spec.id, volume, spec.size_bytes, shrink_ok=True)
        name = self._volume_name(spec.id)
        text = xml.volume_xml(spec, name=name, pool_type=self.pool_type)
        with translated(f"create volume {name}"):
            volume = self._pool().createXML(text, 0)
        return self._volume_info(spec.id, volume)

    def volume_info(self, volume_id: str) -> VolumeInfo:
        """The volume; BackendNotFound if missing."""
        return self._volume_info(volume_id, self._require_volume(volume_id))

    def list_volumes(self) -> list[VolumeInfo]:
        """Every ``nimbo-*`` volume of the pool (one deleted meanwhile is left out)."""
        with translated(f"list volumes of {self.pool_name}"):
            volumes = self._pool().listAllVolumes(0)
        return _still_there(
            lambda v: self._volume_info(v.name().removeprefix(PREFIX).removesuffix(".qcow2"), v),
            [v for v in volumes if v.name().startswith(PREFIX)],
        )

    def upload_volume(self, volume_id: str, data: UploadData) -> VolumeInfo:
        """Delete any volume of that id, create a raw one and stream ``data`` into it.

        A dir pool gets a file of exactly the size of ``data``; a logical pool an LV of the
        size rounded up to a MiB (LVM rounds further, to its extent size), the rest sent as
        zeros so that no earlier LV's bytes show through. A failed transfer deletes the volume.
        """
        length = upload_size(data)
        if not length:
            raise BackendError(f"volume {volume_id}: nothing to upload (0 bytes)")
        self.delete_volume(volume_id)
        name = self._volume_name(volume_id)
        size = length if self.pool_type == "dir" else -(-length // MIB) * MIB
        spec = VolumeSpec(id=volume_id, size_bytes=size)
        text = xml.volume_xml(spec, name=name, pool_type=self.pool_type, image_format="raw")
        with translated(f"create volume {name}"):
            volume = self._pool().createXML(text, 0)
        try:
            self._upload(
                volume, data, length, self._volume_info(volume_id, volume).capacity_bytes
            )
        except BaseException:
            with contextlib.suppress(BackendError):
                self.delete_volume(volume_id)
            raise
        return self._volume_info(volume_id, volume)

    def _upload(
        self, volume: libvirt.virStorageVol, data: UploadData, length: int, size: int
    ) -> None:
        with translated(f"open a stream to {self.uri}"):
            stream = self._conn().newStream(0)
        try:
            with translated(f"upload {length} bytes into volume {volume.name()}"):
                volume.upload(stream, 0, size, 0)
                for chunk in upload_chunks(data, size):
                    sent = 0
                    while sent < len(chunk):
                        sent += stream.send(chunk[sent:])
                stream.finish()
        except BackendError as exc:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()  # the transfer is over either way; its own error says nothing
            if not (self._is_test and is_unsupported(exc)):
                raise
            # TEST DRIVER: no virStorageVolUpload; the simulated volume already has the data's
            # capacity and, like every simulated volume, holds no bytes

    def copy_volume(self, source_id: str, volume_id: str) -> VolumeInfo:
        """Copy through libvirt, so that it works on a remote host too.

        No active domain uses the source: ``virStorageVolCreateXMLFrom`` (``qemu-img convert``
        in a file pool, which reads the whole backing chain; a copy into a new LV on LVM).
        An active domain does: QEMU holds the image's write lock, which ``qemu-img`` honours,
        so the domain itself copies the disk, by a push-mode backup (``virDomainBackupBegin``)
        into the new volume, a point-in-time image of the disk while the guest runs on.
        """
        if volume_id == source_id:
            raise BackendError(f"volume {source_id}: cannot be copied onto itself")
        source = self._require_volume(source_id)
        origin = self._volume_info(source_id, source)
        self.delete_volume(volume_id)
        name = self._volume_name(volume_id)
        spec = VolumeSpec(id=volume_id, size_bytes=origin.capacity_bytes)
        text = xml.volume_xml(spec, name=name, pool_type=self.pool_type)
        user = self._disk_user(origin.path)
        try:
            if user is None:
                copy = self._copy_offline(text, source, name)
            else:
                copy = self._copy_live(text, source, name, *user)
        except BaseException:
            with contextlib.suppress(BackendError):
                self.delete_volume(volume_id)
            raise
        return self._volume_info(volume_id, copy)

    def _copy_offline(
        self, text: str, source: libvirt.virStorageVol, name: str
    ) -> libvirt.virStorageVol:
        with translated(f"copy volume {source.name()} to {name}"):
            return self._pool().createXMLFrom(text, source, 0)

    def _copy_live(
        self,
        text: str,
        source: libvirt.virStorageVol,
        name: str,
        domain: libvirt.virDomain,
        target_dev: str,
    ) -> libvirt.virStorageVol:
        what = f"copy disk {target_dev} of {domain.name()} to {name}"
        with translated(f"create volume {name}"):
            copy = self._pool().createXML(text, 0)
        logical = self.pool_type == "logical"
        backup = xml.backup_xml(
            target_dev, copy.path(), block=logical, image_format="raw" if logical else "qcow2"
        )
        try:
            with translated(what):
                domain.backupBegin(backup, None, libvirt.VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL)
        except BackendError as exc:
            if not (self._is_test and is_unsupported(exc)):
                raise
            # TEST DRIVER: no backups; its domains lock no image, so copy as from a stopped one
            with translated(f"delete volume {name}"):
                copy.delete(0)
            return self._copy_offline(text, source, name)
        self._wait_for_backup(domain, what)
        return copy

    def _disk_user(self, path: str) -> tuple[libvirt.virDomain, str] | None:
        """The active domain with a disk on ``path``, and that disk's target dev, if any."""
        with translated(f"list active domains on {self.uri}"):
            domains = self._conn().listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        for domain in domains:
            with contextlib.suppress(BackendNotFound):  # undefined since the listing
                target = xml.disk_with_source(self._xml(domain), path)
                if target is not None:
                    return domain, target
        return None

    def _wait_for_backup(self, domain: libvirt.virDomain, what: str) -> None:
        """Until the domain's backup job has ended; BackendError unless it completed. Anything
        that interrupts the wait (the worker's job timeout) aborts the backup."""
        try:
            while True:
                with translated(what):
                    if domain.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:
                        stats = domain.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
                        break
                time.sleep(self.poll_interval)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):  # ended anyway: nothing to abort
                domain.abortJob()
            raise
        if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
            raise BackendError(f"{what}: {stats.get('errmsg') or 'the backup job failed'}")

    def resize_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo:
        """Grow the volume; a smaller size raises BackendConflict."""
        return self._grow(volume_id, self._require_volume(volume_id), size_bytes, shrink_ok=False)

    def _grow(
        self, volume_id: str, volume: libvirt.virStorageVol, size: int, *, shrink_ok: bool
    ) -> VolumeInfo:
        current = self._volume_info(volume_id, volume)
        if size < current.capacity_bytes and not shrink_ok:
            raise BackendConflict(
                f"volume {volume_id} is {current.capacity_bytes} bytes: cannot shrink to {size}"
            )
        if size <= current.capacity_bytes:
            return current
        try:
            with translated(f"resize volume {volume.name()}"):
                volume.resize(size, 0)
        except BackendError as exc:
            if not (self._is_test and is_unsupported(exc)):
                raise
            volume = self._emulate_resize(volume, size)
        return self._volume_info(volume_id, volume)

    def _emulate_resize(self, volume: libvirt.virStorageVol, size: int) -> libvirt.virStorageVol:
        """TEST DRIVER: no volume resize; recreate the (empty, simulated) volume larger."""
        with translated(f"recreate volume {volume.name()} (test driver resize)"):
            text = xml.with_capacity(volume.XMLDesc(0), size)
            volume.delete(0)
            return self._pool().createXML(text, 0)

    def delete_volume(self, volume_id: str) -> None:
        """Delete the volume; missing: no-op."""
        volume = self._volume(volume_id)
        if volume is None:
            return
        try:
            with translated(f"delete volume {volume.name()}"):
                volume.delete(0)
        except BackendNotFound:
            pass  # deleted meanwhile

    # --- network ----------------------------------------------------------------------------

    def _network(self, network_id: str) -> libvirt.virNetwork | None:
        conn = self._conn()
        return self._lookup("look up network", conn.networkLookupByName, network_name(network_id))

    def _require_network(self, network_id: str) -> libvirt.virNetwork:
        network = self._network(network_id)
        if network is None:
            raise BackendNotFound(f"network {network_id}: not defined on {self.uri}")
        return network

    @staticmethod
    def _network_info(network_id: str, network: libvirt.virNetwork) -> NetworkInfo:
        with translated(f"info of network {network.name()}"):
            return NetworkInfo(
                id=network_id,
                active=bool(network.isActive()),
                bridge=xml.network_bridge(network.XMLDesc(0)),
            )

    def _host_defaults(self, spec: NetworkSpec) -> NetworkSpec:
        if self._on_vlan_bridge(spec):
            assert spec.vlan is not None
            return dataclasses.replace(
                spec, mode="bridge", bridge_device=vlan.bridge_name(int(spec.vlan))
            )
        mode = self.network_mode if spec.mode == "isolated" else spec.mode
        return dataclasses.replace(
            spec, mode=mode, bridge_device=spec.bridge_device or self.bridge_device
        )

    def _on_vlan_bridge(self, spec: NetworkSpec) -> bool:
        """A network with a VLAN on a host with a VLAN uplink and Linux bridges is bridged onto
        that VLAN's bridge (see backends.libvirt.vlan), whatever its mode."""
        return spec.vlan is not None and bool(self.vlan_uplink) and self.virtual_switch == "linux"

    def ensure_network(self, spec: NetworkSpec) -> NetworkInfo:
        """Define the network if missing (autostart), and start it; a network on a VLAN
        bridge gets the bridge made first (again after a reboot of the host)."""
        if self._on_vlan_bridge(spec) and not self._is_test:  # a simulated host has no links
            if not self._is_local:
                raise BackendError(
                    f"VLAN {spec.vlan}: its bridge is made on the host itself; run the worker "
                    f"there with a local URI, not {self.uri}"
                )
            assert self.vlan_uplink is not None and spec.vlan is not None
            vlan.ensure_bridge(self.vlan_uplink, int(spec.vlan))
        network = self._network(spec.id)
        if network is None:
            text = xml.network_xml(self._host_defaults(spec), virtual_switch=self.virtual_switch)
            with translated(f"define network {network_name(spec.id)}"):
                network = self._conn().networkDefineXML(text)
                network.setAutostart(1)
        return self.set_network_active(spec.id, True)

    def network_info(self, network_id: str) -> NetworkInfo:
        """The network; BackendNotFound if not defined."""
        return self._network_info(network_id, self._require_network(network_id))

    def list_networks(self) -> list[NetworkInfo]:
        """Every ``nimbo-*`` network of the host (one undefined meanwhile is left out)."""
        with translated(f"list networks on {self.uri}"):
            networks = self._conn().listAllNetworks(0)
        return _still_there(
            lambda n: self._network_info(n.name().removeprefix(PREFIX), n),
            [n for n in networks if n.name().startswith(PREFIX)],
        )

    def set_network_active(self, network_id: str, active: bool) -> NetworkInfo:
        """Start or stop the network; already so: no-op."""
        network = self._require_network(network_id)
        with translated(f"{'start' if active else 'stop'} network {network.name()}"):
            if active and not network.isActive():
                network.create()
            elif not active and network.isActive():
                network.destroy()
        return self._network_info(network_id, network)

    def delete_network(self, network_id: str) -> None:
        """Stop and undefine; missing: no-op. The last network on a VLAN bridge takes the
        bridge and its sub-interface with it."""
        network = self._network(network_id)
        if network is None:
            return
        try:
            bridge = self._network_info(network_id, network).bridge
        except BackendNotFound:
            return  # deleted meanwhile
        try:
            with translated(f"delete network {network.name()}"):
                if network.isActive():
                    network.destroy()
                network.undefine()
        except BackendNotFound:
            pass  # deleted meanwhile
        tag = vlan.vlan_of_bridge(bridge)
        if tag is None or self._is_test or not self._is_local:
            return
        if all(other.bridge != bridge for other in self.list_networks()):
            try:
                vlan.remove_bridge(tag)
            except BackendError as exc:  # the network is gone; a link left over is harmless
                log.warning("VLAN %s: links not removed: %s", tag, exc.message)
