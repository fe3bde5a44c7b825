"""Pure functions between our specs and libvirt XML (domain, volume, network, pool).

Nothing here talks to libvirt: every function takes specs and plain values and returns a string
(or parses one), so the output can be compared with golden files. Rendering uses
:mod:`xml.etree.ElementTree`, indented with two spaces.
"""

from __future__ import annotations

import ipaddress
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from backends.base import (
    ComputeSpec,
    NetworkSpec,
    NicSpec,
    VolumeSpec,
    bridge_name,
    domain_name,
    network_name,
)
from gateway.errors import BackendError

METADATA_NS = "https://nimbostratus.dev/xmlns/libvirt/1"
"""Namespace of our element in a domain's ``<metadata>``: ``<nimbo:entity id='…'/>``."""

ET.register_namespace("nimbo", METADATA_NS)

ARCHITECTURES = {"x64": "x86_64", "x86": "i686", "x86_64": "x86_64", "i686": "i686"}
"""OCCI ``occi.compute.architecture`` -> libvirt guest arch."""

_UUID_NAMESPACE = uuid.UUID("6f1c3b0e-6a52-4c1e-9b6a-1f6d2c1b7a10")

CONFIG_DRIVE_DEV = "sda"
"""Target of the config drive cdrom (SCSI, so it never collides with virtio ``vd*`` disks)."""


@dataclass(frozen=True)
class DiskSource:
    """A disk resolved to a host path: a qcow2 file (dir pool) or a raw block device (LVM)."""

    target_dev: str
    path: str
    format: str = "qcow2"
    block: bool = False
    read_only: bool = False


def libvirt_uuid(entity_id: str) -> str:
    """The entity id itself when it is a UUID, else a stable UUID derived from it.

    A stable UUID lets ``defineXML`` update an existing domain instead of clashing with it.
    """
    try:
        return str(uuid.UUID(entity_id))
    except ValueError:
        return str(uuid.uuid5(_UUID_NAMESPACE, entity_id))


def guest_arch(architecture: str) -> str:
    """Map the OCCI architecture to libvirt's; BackendError for one we cannot run."""
    try:
        return ARCHITECTURES[architecture]
    except KeyError:
        raise BackendError(f"unsupported architecture {architecture!r}") from None


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _render(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


# --- domain ---------------------------------------------------------------------------------


def disk_element(disk: DiskSource) -> ET.Element:
    """``<disk>`` for a virtio disk backed by a file or a block device."""
    element = ET.Element("disk", {"type": "block" if disk.block else "file", "device": "disk"})
    _sub(element, "driver", name="qemu", type=disk.format, discard="unmap")
    _sub(element, "source", **({"dev": disk.path} if disk.block else {"file": disk.path}))
    _sub(element, "target", dev=disk.target_dev, bus="virtio")
    if disk.read_only:
        _sub(element, "readonly")
    return element


def cdrom_element(path: str, *, block: bool = False) -> ET.Element:
    """``<disk device='cdrom'>`` for the config drive ISO, on the virtio-scsi controller.

    Not SATA: cloud kernels (Debian's ``-cloud-amd64`` among them) have no AHCI driver, so a
    SATA cdrom is invisible to their guests, while virtio-scsi comes with every virtio guest.
    The domain needs :func:`scsi_controller_element` beside it. ``block``: the ISO is a block
    device (an LV of a logical pool), which QEMU does not open as a file.
    """
    element = ET.Element("disk", {"type": "block" if block else "file", "device": "cdrom"})
    _sub(element, "driver", name="qemu", type="raw")
    _sub(element, "source", **({"dev": path} if block else {"file": path}))
    _sub(element, "target", dev=CONFIG_DRIVE_DEV, bus="scsi")
    _sub(element, "readonly")
    return element


def scsi_controller_element() -> ET.Element:
    """``<controller type='scsi' model='virtio-scsi'/>``, the bus of the config drive cdrom.

    Without it libvirt would add a SCSI controller of its default model (``lsilogic`` on x86),
    which guests built for virtio do not drive.
    """
    return ET.Element("controller", {"type": "scsi", "index": "0", "model": "virtio-scsi"})


def nic_element(nic: NicSpec) -> ET.Element:
    """``<interface type='network'>``: virtio on the libvirt network of ``nic.network_id``."""
    element = ET.Element("interface", {"type": "network"})
    _sub(element, "mac", address=nic.mac.lower())
    _sub(element, "source", network=network_name(nic.network_id))
    _sub(element, "model", type="virtio")
    return element


def device_xml(element: ET.Element) -> str:
    """One device element as a string for ``attachDeviceFlags``/``detachDeviceFlags``."""
    return ET.tostring(element, encoding="unicode")


def _console_elements(devices: ET.Element, console_path: str) -> None:
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=console_path, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=console_path, append="on")
    _sub(console, "target", type="serial", port="0")


def _domain_head(spec: ComputeSpec, domain_type: str) -> ET.Element:
    root = ET.Element("domain", {"type": domain_type})
    _sub(root, "name", domain_name(spec.id))
    _sub(root, "uuid", libvirt_uuid(spec.id))
    _sub(root, "title", spec.name)
    metadata = _sub(root, "metadata")
    ET.SubElement(metadata, f"{{{METADATA_NS}}}entity", {"id": spec.id})
    _sub(root, "memory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.cores))
    os_element = _sub(root, "os")
    _sub(os_element, "type", "hvm", arch=guest_arch(spec.architecture))
    _sub(os_element, "boot", dev="hd")
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    return root


def domain_xml(
    spec: ComputeSpec,
    *,
    domain_type: str,
    disks: Sequence[DiskSource],
    console_path: str,
    config_drive_block: bool = False,
) -> str:
    """The persistent definition of the domain realising ``spec``.

    ``disks`` are the spec's root volume and disks already resolved to host paths (the driver
    knows its pool); NICs and the config drive come from the spec itself. The config drive is a
    read-only cdrom ``sda`` on a virtio-scsi controller (see :func:`cdrom_element`), a block
    device with ``config_drive_block``; a domain without one has no SCSI controller.
    """
    root = _domain_head(spec, domain_type)
    devices = _sub(root, "devices")
    for disk in disks:
        devices.append(disk_element(disk))
    if spec.config_drive:
        devices.append(scsi_controller_element())
        devices.append(cdrom_element(spec.config_drive, block=config_drive_block))
    for nic in spec.nics:
        devices.append(nic_element(nic))
    _console_elements(devices, console_path)
    _sub(devices, "memballoon", model="virtio")
    return _render(root)


def console_path(text: str) -> str | None:
    """Path of the file the domain's serial console writes to, or None when it has none."""
    for serial in ET.fromstring(text).iterfind("devices/serial[@type='file']"):
        source = serial.find("source")
        if source is not None and source.get("path"):
            return source.get("path")
    return None


def domain_entity_id(text: str) -> str | None:
    """The entity id stored in our ``<metadata>``, or None if the domain is not ours."""
    entity = ET.fromstring(text).find(f"metadata/{{{METADATA_NS}}}entity")
    return None if entity is None else entity.get("id")


_KIB_PER_UNIT = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "m": 1024, "mib": 1024}
_KIB_PER_UNIT.update({"g": 1024**2, "gib": 1024**2, "kb": 1000 / 1024, "mb": 1000**2 / 1024})


def domain_size(text: str) -> tuple[int, int]:
    """(vcpus, memory in MiB) of a domain from its XML."""
    root = ET.fromstring(text)
    vcpu = root.find("vcpu")
    memory = root.find("memory")
    cores = int(vcpu.text or 0) if vcpu is not None else 0
    if memory is None:
        return cores, 0
    kib = int(memory.text or 0) * _KIB_PER_UNIT.get(memory.get("unit", "KiB").lower(), 1)
    return cores, int(kib // 1024)


def domain_disks(text: str) -> tuple[str, ...]:
    """Target devs of the domain's disks (cdroms excluded), in document order."""
    root = ET.fromstring(text)
    return tuple(
        target.get("dev", "")
        for disk in root.iterfind("devices/disk[@device='disk']")
        if (target := disk.find("target")) is not None
    )


def domain_macs(text: str) -> tuple[str, ...]:
    """MAC addresses of the domain's interfaces, lower case, in document order."""
    root = ET.fromstring(text)
    return tuple(mac.get("address", "").lower() for mac in root.iterfind("devices/interface/mac"))


def _disk_target(disk: ET.Element) -> str | None:
    target = disk.find("target")
    return None if target is None else target.get("dev")


def _nic_mac(interface: ET.Element) -> str | None:
    mac = interface.find("mac")
    return None if mac is None else mac.get("address", "").lower()


def find_disk(text: str, target_dev: str) -> ET.Element | None:
    """The ``<disk>`` element with ``target_dev``, if any."""
    for disk in ET.fromstring(text).iterfind("devices/disk"):
        if _disk_target(disk) == target_dev:
            return disk
    return None


def find_nic(text: str, mac: str) -> ET.Element | None:
    """The ``<interface>`` element with ``mac``, if any."""
    for interface in ET.fromstring(text).iterfind("devices/interface"):
        if _nic_mac(interface) == mac.lower():
            return interface
    return None


def with_device(text: str, device: ET.Element) -> str:
    """Domain XML with ``device`` appended to ``<devices>``."""
    root = ET.fromstring(text)
    devices = root.find("devices")
    if devices is None:
        devices = _sub(root, "devices")
    devices.append(device)
    return _render(root)


def without_device(text: str, device: ET.Element) -> str:
    """Domain XML without the disk (same target dev) or interface (same MAC) ``device``."""
    root = ET.fromstring(text)
    devices = root.find("devices")
    key = _disk_target(device) if device.tag == "disk" else _nic_mac(device)
    for child in [] if devices is None else list(devices):
        child_key = _disk_target(child) if child.tag == "disk" else _nic_mac(child)
        if child.tag == device.tag and child_key == key:
            devices.remove(child)  # type: ignore[union-attr]
    return _render(root)


# --- storage ----------------------------------------------------------------------------------


def pool_xml(name: str, pool_type: str, path: str) -> str:
    """A ``dir`` pool at ``path``, or a ``logical`` pool on the volume group ``basename(path)``."""
    root = ET.Element("pool", {"type": pool_type})
    _sub(root, "name", name)
    if pool_type == "logical":
        source = _sub(root, "source")
        _sub(source, "name", path.rstrip("/").rsplit("/", 1)[-1])
        _sub(source, "format", type="lvm2")
    elif pool_type != "dir":
        raise BackendError(f"unsupported pool type {pool_type!r} (dir or logical)")
    target = _sub(root, "target")
    _sub(target, "path", path)
    return _render(root)


def volume_xml(spec: VolumeSpec, *, name: str, pool_type: str, image_format: str = "qcow2") -> str:
    """A qcow2 file (dir pool) or a logical volume; with ``backing_path`` a copy-on-write clone.

    In a dir pool the clone is a qcow2 overlay on the backing file; in a logical pool libvirt
    turns a ``<backingStore>`` into an LVM snapshot of the origin LV (``lvcreate -s``).
    ``image_format='raw'`` makes a plain file in a dir pool (an LV is raw anyway).
    """
    root = ET.Element("volume", {"type": "block" if pool_type == "logical" else "file"})
    _sub(root, "name", name)
    _sub(root, "capacity", str(spec.size_bytes), unit="bytes")
    if pool_type == "dir":
        _sub(root, "allocation", "0", unit="bytes")
        target = _sub(root, "target")
        _sub(target, "format", type=image_format)
    if spec.backing_path:
        backing = _sub(root, "backingStore")
        _sub(backing, "path", spec.backing_path)
        if pool_type == "dir":
            _sub(backing, "format", type=spec.backing_format)
    return _render(root)


RAW_FORMATS = frozenset({"none", "iso"})
"""Volume formats libvirt reports for what is a raw image to a domain: ``none`` (an LV) and
``iso`` (a dir pool's refresh probes a raw file holding ISO 9660, e.g. a config drive)."""


def volume_format(text: str) -> str:
    """Format of a volume from its XML (``raw`` for the :data:`RAW_FORMATS` and when none)."""
    element = ET.fromstring(text).find("target/format")
    kind = None if element is None else element.get("type")
    return kind if kind and kind not in RAW_FORMATS else "raw"


def volume_backing(text: str) -> str | None:
    """Path of the volume's backing store (a clone's image, an LVM snapshot's origin), or None
    for a standalone volume."""
    path = ET.fromstring(text).find("backingStore/path")
    return path.text if path is not None and path.text else None


def disk_with_source(text: str, path: str) -> str | None:
    """Target dev of the domain's disk whose source is the file or device ``path``, if any."""
    for disk in ET.fromstring(text).iterfind("devices/disk"):
        source = disk.find("source")
        if source is not None and path in (source.get("file"), source.get("dev")):
            return _disk_target(disk)
    return None


def backup_xml(target_dev: str, path: str, *, block: bool, image_format: str) -> str:
    """A push-mode ``<domainbackup>`` of the one disk ``target_dev`` into ``path``: a full
    copy of what the guest sees on that disk, written into an existing volume (the caller
    passes ``VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL``), a block device with ``block``."""
    root = ET.Element("domainbackup", {"mode": "push"})
    disks = _sub(root, "disks")
    disk = _sub(disks, "disk", name=target_dev, backup="yes", type="block" if block else "file")
    _sub(disk, "target", **({"dev": path} if block else {"file": path}))
    _sub(disk, "driver", type=image_format)
    return _render(root)


def with_capacity(text: str, size_bytes: int) -> str:
    """Volume XML with a new capacity (used to recreate a volume on the test driver)."""
    root = ET.fromstring(text)
    capacity = root.find("capacity")
    if capacity is None:
        capacity = _sub(root, "capacity")
    capacity.set("unit", "bytes")
    capacity.text = str(size_bytes)
    for tag in ("key", "allocation", "physical"):
        for element in root.findall(tag):
            root.remove(element)
    return _render(root)


# --- network ----------------------------------------------------------------------------------


def _host_address(spec: NetworkSpec) -> tuple[str, str] | None:
    """(address of the host on the bridge, netmask), or None when the spec has no plan."""
    if spec.address is None and spec.gateway is None:
        return None
    if spec.address is None:
        return str(spec.gateway), "255.255.255.0"
    net = ipaddress.ip_network(spec.address, strict=False)
    host = spec.gateway or str(next(net.hosts()))
    return host, str(net.netmask)


def network_xml(spec: NetworkSpec, *, virtual_switch: str = "linux") -> str:
    """The libvirt network of ``spec``.

    ``isolated``: a bridge libvirt creates, no ``<forward>`` and no ``<ip>``: the guests
    reach each other and nothing else. The host takes no address on the bridge, so it offers
    the guests none of its own services (no dnsmasq, no API, no sshd) and routes nothing; the
    network's ``occi.network.gateway`` is left for a guest that routes. ``nat``: the bridge
    with ``<forward mode='nat'/>`` and ``<ip>``, the host being the gateway that masquerades,
    when the spec has an address plan. Never a DHCP range: guests are configured by
    contextualization. ``bridge``: ``<forward mode='bridge'/>`` onto the existing host bridge
    ``bridge_device``.

    VLANs: libvirt accepts ``<vlan>`` in a network only for Open vSwitch (and hostdev/macvtap
    passthrough modes); on a plain Linux bridge it refuses the definition ("<vlan> element
    specified for network …, whose type doesn't support vlan configuration"), and it cannot
    create 802.1Q sub-interfaces itself (``virInterfaceDefineXML`` is unsupported with the udev
    backend Debian builds). So with ``virtual_switch='openvswitch'`` a bridge-mode network gets
    ``<virtualport type='openvswitch'/><vlan><tag id=…/></vlan>`` and libvirt tags the ports;
    with Linux bridges the network is bridged onto a host bridge that already carries the
    tagged traffic: the one the driver makes on its ``vlan_uplink`` (:mod:`backends.libvirt.vlan`)
    or one named as ``bridge_device`` (e.g. ``br42`` enslaving ``eth0.42``). Isolated/NAT
    networks have no uplink for a tag to matter. In all these cases no ``<vlan>`` is written.
    """
    root = ET.Element("network")
    _sub(root, "name", network_name(spec.id))
    _sub(root, "uuid", libvirt_uuid(spec.id))
    if spec.mode == "bridge":
        return _bridge_network(root, spec, virtual_switch)
    if spec.mode == "nat":
        _sub(root, "forward", mode="nat")
    elif spec.mode != "isolated":
        raise BackendError(f"unsupported network mode {spec.mode!r} (isolated, nat or bridge)")
    _sub(root, "bridge", name=bridge_name(spec.id), stp="on", delay="0")
    plan = _host_address(spec) if spec.mode == "nat" else None
    if plan is not None:
        _sub(root, "ip", address=plan[0], netmask=plan[1])
    return _render(root)


def _bridge_network(root: ET.Element, spec: NetworkSpec, virtual_switch: str) -> str:
    if not spec.bridge_device:
        raise BackendError(f"network {spec.id}: mode 'bridge' needs a bridge_device")
    _sub(root, "forward", mode="bridge")
    _sub(root, "bridge", name=spec.bridge_device)
    if virtual_switch == "openvswitch":
        _sub(root, "virtualport", type="openvswitch")
        if spec.vlan is not None:
            vlan = _sub(root, "vlan")
            _sub(vlan, "tag", id=str(spec.vlan))
    elif virtual_switch != "linux":
        raise BackendError(f"unsupported virtual switch {virtual_switch!r} (linux, openvswitch)")
    return _render(root)


def network_bridge(text: str) -> str:
    """Bridge name of a network from its XML ('' when it has none)."""
    element = ET.fromstring(text).find("bridge")
    return "" if element is None else element.get("name", "")
