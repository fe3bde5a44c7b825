"""The config drive: an ISO 9660 image that contextualizes a guest on its first boot.

One image serves two conventions at once:

- cloud-init NoCloud: volume label ``cidata`` with ``meta-data``, ``user-data`` and
  ``network-config`` (network config version 2) at the root;
- OpenNebula/StratusLab: ``context.sh``, POSIX shell variable assignments a guest sources.

The image carries Rock Ridge and Joliet, so the names keep their case and dashes. The module
does no I/O: :func:`build_config_drive` returns the image as bytes and the caller writes it.

Every value is validated when a spec is made (an RFC 1123 hostname, a unicast MAC, an IPv4
address in CIDR form, ...); a bad one raises :class:`gateway.errors.InvalidAttribute` naming the
value and what is wrong with it.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import pycdlib

from gateway.errors import InvalidAttribute

VOLUME_LABEL = "cidata"
"""The volume identifier cloud-init NoCloud looks for."""

DEFAULT_USER_DATA = b"#cloud-config\n{}\n"
"""``user-data`` when the spec has none: an empty cloud-config."""

# file name on the image -> its ISO 9660 level 3 name (for readers without Rock Ridge/Joliet)
_ISO_NAMES = {
    "meta-data": "META_DATA.;1",
    "user-data": "USER_DATA.;1",
    "network-config": "NETWORK_CONFIG.;1",
    "context.sh": "CONTEXT.SH;1",
}

_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
# YAML words a plain (unquoted) key must not be: YAML 1.1 reads them as booleans or null
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
_PLAIN_KEY = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


@dataclass(frozen=True)
class InterfaceContext:
    """One network interface of the guest, found by its MAC address.

    ``address`` is the IPv4 address with its prefix (``10.1.0.5/24``), or None for an interface
    left unconfigured; ``gateway`` (the default route) must lie in that network; ``dns`` holds
    name server addresses. ``name`` is the name cloud-init gives the interface (``set-name``).
    """

    name: str
    mac: str
    address: str | None = None
    gateway: str | None = None
    dns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _IFNAME.fullmatch(self.name) or self.name in {".", ".."}:
            raise InvalidAttribute(
                f"interface name {self.name!r}: 1 to 15 letters, digits, '_', '.' or '-'"
            )
        _check_mac(self.mac)
        network = _check_address(self.address) if self.address is not None else None
        if self.gateway is not None:
            _check_gateway(self.gateway, network)
        for server in self.dns:
            _check_ip(server, what="name server")

    @property
    def interface(self) -> ipaddress.IPv4Interface | None:
        """The address as an interface (address + network), None when unconfigured."""
        return None if self.address is None else ipaddress.IPv4Interface(self.address)


@dataclass(frozen=True)
class ContextSpec:
    """What a guest learns from its config drive.

    ``ssh_keys`` are OpenSSH public key lines (one key each); ``user_data`` is passed on as is
    (a cloud-config, a script, ...), None meaning an empty cloud-config.
    """

    instance_id: str
    hostname: str
    interfaces: tuple[InterfaceContext, ...] = ()
    ssh_keys: tuple[str, ...] = ()
    user_data: bytes | None = None

    def __post_init__(self) -> None:
        if not self.instance_id or len(self.instance_id) > 255:
            raise InvalidAttribute(f"instance id {self.instance_id!r}: 1 to 255 characters")
        _check_printable(self.instance_id, what="instance id")
        _check_hostname(self.hostname)
        for key in self.ssh_keys:
            if not key.strip():
                raise InvalidAttribute("ssh key: empty")
            _check_printable(key, what="ssh key")
        names = [interface.name for interface in self.interfaces]
        macs = [interface.mac.lower() for interface in self.interfaces]
        for kind, values in (("name", names), ("MAC address", macs)):
            if len(set(values)) != len(values):
                raise InvalidAttribute(f"two interfaces have the same {kind}: {values}")


def build_config_drive(spec: ContextSpec) -> bytes:
    """The config drive of ``spec``: an ISO 9660 image (Rock Ridge, Joliet) labelled ``cidata``.

    Root files: ``meta-data``, ``user-data``, ``network-config`` and ``context.sh``.
    """
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=VOLUME_LABEL, joliet=3, rock_ridge="1.09")
    for name, content in config_files(spec).items():
        iso.add_fp(
            io.BytesIO(content),
            len(content),
            iso_path=f"/{_ISO_NAMES[name]}",
            rr_name=name,
            joliet_path=f"/{name}",
        )
    image = io.BytesIO()
    iso.write_fp(image)
    iso.close()
    return image.getvalue()


def config_files(spec: ContextSpec) -> dict[str, bytes]:
    """The files of the config drive of ``spec``, by name."""
    return {
        "meta-data": meta_data(spec),
        "user-data": DEFAULT_USER_DATA if spec.user_data is None else spec.user_data,
        "network-config": network_config(spec),
        "context.sh": context_sh(spec),
    }


def meta_data(spec: ContextSpec) -> bytes:
    """NoCloud ``meta-data`` (YAML): instance id, hostname and public keys."""
    return _yaml(
        {
            "instance-id": spec.instance_id,
            "local-hostname": spec.hostname,
            "public-keys": list(spec.ssh_keys),
        }
    )


def network_config(spec: ContextSpec) -> bytes:
    """cloud-init network config version 2: static addresses, interfaces matched by MAC."""
    return _yaml(
        {
            "version": 2,
            "ethernets": {interface.name: _ethernet(interface) for interface in spec.interfaces},
        }
    )


def context_sh(spec: ContextSpec) -> bytes:
    """OpenNebula/StratusLab ``context.sh``: one single-quoted shell assignment a line."""
    user_data = spec.user_data or b""
    variables: dict[str, str] = {
        "HOSTNAME": spec.hostname,
        "SET_HOSTNAME": spec.hostname,
        "SSH_PUBLIC_KEY": "\n".join(spec.ssh_keys),
        "USER_DATA_BASE64": base64.b64encode(user_data).decode("ascii"),
        "USERDATA_ENCODING": "base64",
    }
    if spec.interfaces:
        variables["NETWORK"] = "YES"
    for index, interface in enumerate(spec.interfaces):
        variables.update(_interface_variables(f"ETH{index}", interface))
    lines = ["# Contextualization variables, sourced by the guest (generated by nimbostratus)."]
    lines += [f"{name}={shell_quote(value)}" for name, value in variables.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")


def shell_quote(value: str) -> str:
    """``value`` as one single-quoted POSIX shell word (``'`` written as ``'\\''``)."""
    return "'" + value.replace("'", "'\\''") + "'"


# --- the parts -------------------------------------------------------------------------------


def _ethernet(interface: InterfaceContext) -> dict[str, object]:
    ethernet: dict[str, object] = {
        "match": {"macaddress": interface.mac.lower()},
        "set-name": interface.name,
        "dhcp4": False,
    }
    if interface.address is not None:
        ethernet["addresses"] = [interface.address]
    if interface.gateway is not None:
        ethernet["routes"] = [{"to": "0.0.0.0/0", "via": interface.gateway}]
    if interface.dns:
        ethernet["nameservers"] = {"addresses": list(interface.dns)}
    return ethernet


def _interface_variables(prefix: str, interface: InterfaceContext) -> dict[str, str]:
    address = interface.interface
    return {
        f"{prefix}_MAC": interface.mac.lower(),
        f"{prefix}_IP": "" if address is None else str(address.ip),
        f"{prefix}_MASK": "" if address is None else str(address.netmask),
        f"{prefix}_PREFIX": "" if address is None else str(address.network.prefixlen),
        f"{prefix}_GATEWAY": interface.gateway or "",
        f"{prefix}_DNS": " ".join(interface.dns),
    }


# --- YAML (block style, every string double-quoted: no YAML reading surprises) --------------


def _yaml(document: Mapping[str, object]) -> bytes:
    return ("\n".join(_yaml_mapping(document, indent="")) + "\n").encode("utf-8")


def _yaml_mapping(mapping: Mapping[str, object], indent: str) -> Iterator[str]:
    for key, value in mapping.items():
        name = key if _PLAIN_KEY.fullmatch(key) and key not in _YAML_WORDS else _yaml_str(key)
        if isinstance(value, Mapping) and value:
            yield f"{indent}{name}:"
            yield from _yaml_mapping(value, indent + "  ")
        elif isinstance(value, list) and value:
            yield f"{indent}{name}:"
            yield from _yaml_sequence(value, indent + "  ")
        else:
            yield f"{indent}{name}: {_yaml_scalar(value)}"


def _yaml_sequence(items: Sequence[object], indent: str) -> Iterator[str]:
    for item in items:
        if isinstance(item, Mapping) and item:
            first, *rest = _yaml_mapping(item, indent + "  ")
            yield f"{indent}- {first.lstrip()}"
            yield from rest
        else:
            yield f"{indent}- {_yaml_scalar(item)}"


def _yaml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _yaml_str(value)
    if value == {}:
        return "{}"
    if value == []:
        return "[]"
    raise TypeError(f"no YAML for {value!r}")


def _yaml_str(value: str) -> str:
    # A JSON string is a YAML double-quoted scalar; values are printable (checked), so the
    # only escapes are \" and \\.
    return json.dumps(value, ensure_ascii=False)


# --- validation ------------------------------------------------------------------------------


def _check_printable(value: str, what: str) -> None:
    if not value.isprintable():
        raise InvalidAttribute(f"{what} {value!r}: control or non-printable characters")


def _check_hostname(hostname: str) -> None:
    labels = hostname.split(".")
    if len(hostname) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise InvalidAttribute(
            f"hostname {hostname!r}: not an RFC 1123 host name (dot-separated labels of 1 to 63 "
            "letters, digits and '-', not starting or ending with '-'; 253 characters at most)"
        )


def _check_mac(mac: str) -> None:
    if not _MAC.fullmatch(mac):
        raise InvalidAttribute(f"MAC address {mac!r}: not six ':'-separated hex bytes")
    if int(mac[:2], 16) & 1:
        raise InvalidAttribute(f"MAC address {mac!r}: a multicast address, not a NIC's")


def _check_address(address: str) -> ipaddress.IPv4Network:
    try:
        interface = ipaddress.IPv4Interface(address)
    except ValueError as exc:
        raise InvalidAttribute(f"address {address!r}: not an IPv4 address/prefix") from exc
    network = interface.network
    if not re.fullmatch(r"[^/]+/[0-9]{1,2}", address):
        raise InvalidAttribute(f"address {address!r}: not in CIDR form (like 10.1.0.5/24)")
    if network.prefixlen < 31 and interface.ip in {
        network.network_address,
        network.broadcast_address,
    }:
        raise InvalidAttribute(
            f"address {address!r}: the network or broadcast address of {network}"
        )
    return network


def _check_gateway(gateway: str, network: ipaddress.IPv4Network | None) -> None:
    if network is None:
        raise InvalidAttribute(f"gateway {gateway!r} given for an interface without an address")
    try:
        address = ipaddress.IPv4Address(gateway)
    except ValueError as exc:
        raise InvalidAttribute(f"gateway {gateway!r}: not an IPv4 address") from exc
    if address not in network:
        raise InvalidAttribute(f"gateway {gateway}: outside the interface's network {network}")


def _check_ip(value: str, what: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise InvalidAttribute(f"{what} {value!r}: not an IP address") from exc
