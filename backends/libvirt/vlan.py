"""802.1Q VLANs on plain Linux bridges, made on the worker's own host with iproute2.

libvirt cannot make them: a ``<vlan>`` in a network is refused for Linux bridges, and Debian's
udev backend does not offer ``virInterfaceDefineXML``. So for a network with
``occi.network.vlan`` N on a host whose setting ``network_vlan_uplink`` names the interface
carrying the site's tagged traffic, the driver makes

* ``nvlN``: the VLAN sub-interface, ``ip link add link UPLINK name nvlN type vlan id N``, and
* ``nbvN``: a bridge with ``nvlN`` as its port,

and bridges the libvirt network onto ``nbvN`` (``<forward mode='bridge'/>``): the guests' frames
leave the uplink tagged N. Neither link gets an address, IPv6 link-local included
(``addrgenmode none``): the host itself sends nothing onto the VLAN. Networks of one VLAN share
its bridge; the last one deleted removes both links.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from gateway.errors import BackendConflict, BackendError

BRIDGE_PREFIX = "nbv"
SUBINTERFACE_PREFIX = "nvl"
VLAN_IDS = range(1, 4095)


def bridge_name(vlan: int) -> str:
    """The host bridge of VLAN ``vlan``."""
    return f"{BRIDGE_PREFIX}{vlan}"


def subinterface_name(vlan: int) -> str:
    """The 802.1Q sub-interface of VLAN ``vlan`` on the uplink."""
    return f"{SUBINTERFACE_PREFIX}{vlan}"


def vlan_of_bridge(name: str) -> int | None:
    """The VLAN whose bridge ``name`` is, or None for any other bridge."""
    digits = name.removeprefix(BRIDGE_PREFIX)
    if name.startswith(BRIDGE_PREFIX) and digits.isdigit() and int(digits) in VLAN_IDS:
        return int(digits)
    return None


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("ip") is None:
        raise BackendError("VLAN bridges need iproute2 (the ip command) on the host")
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


def _ip(*args: str) -> str:
    result = _run(*args)
    if result.returncode != 0:
        raise BackendError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result.stdout


def _link(name: str) -> dict[str, Any] | None:
    """``ip -details -json link show NAME``, or None when there is no such link."""
    result = _run("-details", "-json", "link", "show", "dev", name)
    if result.returncode != 0:
        return None
    links: list[dict[str, Any]] = json.loads(result.stdout)
    return links[0] if links else None


def ensure_bridge(uplink: str, vlan: int) -> str:
    """Make (or find) the sub-interface and bridge of ``vlan`` on ``uplink``, both up and
    without addresses; returns the bridge's name. BackendError when the uplink is missing,
    BackendConflict when a link of that name exists and is something else."""
    if vlan not in VLAN_IDS:
        raise BackendError(f"VLAN {vlan}: 802.1Q ids are 1 to 4094")
    if _link(uplink) is None:
        raise BackendError(f"VLAN uplink {uplink}: no such interface on this host")
    bridge, sub = bridge_name(vlan), subinterface_name(vlan)
    existing = _link(bridge)
    if existing is None:
        _ip("link", "add", "name", bridge, "type", "bridge")
    elif existing.get("linkinfo", {}).get("info_kind") != "bridge":
        raise BackendConflict(f"host interface {bridge} exists and is not a bridge")
    _ip("link", "set", "dev", bridge, "addrgenmode", "none")
    existing = _link(sub)
    if existing is None:
        _ip("link", "add", "link", uplink, "name", sub, "type", "vlan", "id", str(vlan))
    else:
        info = existing.get("linkinfo", {})
        if info.get("info_kind") != "vlan" or info.get("info_data", {}).get("id") != vlan:
            raise BackendConflict(f"host interface {sub} exists and is not VLAN {vlan}")
        if existing.get("link") != uplink:
            raise BackendConflict(f"host interface {sub} is VLAN {vlan} on another uplink")
    _ip("link", "set", "dev", sub, "addrgenmode", "none")
    _ip("link", "set", "dev", sub, "master", bridge)
    _ip("link", "set", "dev", sub, "up")
    _ip("link", "set", "dev", bridge, "up")
    return bridge


def remove_bridge(vlan: int) -> None:
    """Delete the bridge and sub-interface of ``vlan`` (missing: no-op)."""
    for name in (subinterface_name(vlan), bridge_name(vlan)):
        if _link(name) is not None:
            _ip("link", "del", "dev", name)
