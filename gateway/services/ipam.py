"""IP address management: leases of a network's addresses to network interfaces.

A network with the ``ipnetwork`` mixin (``occi.network.address`` a CIDR) hands out its host
addresses, except the gateway, to the interfaces linked to it. A lease is a row of ``leases``
whose primary key (network, address) makes an address unique per network under any
concurrency: two transactions choosing the same free address collide in the database, and the
loser takes the next one. Leases are written in the transaction that creates the interface and
removed with its rows.

The interface's MAC is derived from the leased address the way the StratusLab/OpenNebula
contextualization does it (``02:00`` followed by the four octets), so a guest can work out its
address from its MAC alone; the config drive carries the address too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backends.portmap import PortMapping
from gateway.errors import Conflict, InvalidAttribute, InvalidRequest
from gateway.store.models import Lease

MAC_PREFIX = "02:00"


@dataclass(frozen=True)
class Granted:
    """What a lease gives an interface: its address (CIDR), gateway and MAC."""

    address: str
    gateway: str | None
    mac: str
    allocation: str


def mac_for(address: ipaddress.IPv4Address) -> str:
    """``02:00:aa:bb:cc:dd`` for ``aa.bb.cc.dd`` (locally administered, unicast)."""
    return MAC_PREFIX + "".join(f":{octet:02x}" for octet in address.packed)


def address_of_mac(mac: str) -> ipaddress.IPv4Address | None:
    """The address a ``02:00:…`` MAC encodes, else None."""
    parts = mac.lower().split(":")
    if len(parts) != 6 or ":".join(parts[:2]) != MAC_PREFIX:
        return None
    return ipaddress.IPv4Address(bytes(int(p, 16) for p in parts[2:]))


def network_of(attributes: Mapping[str, Any]) -> ipaddress.IPv4Network | None:
    """The network's address range, or None when it has no ``occi.network.address``."""
    address = attributes.get("occi.network.address")
    if not address:
        return None
    try:
        network = ipaddress.ip_network(str(address), strict=False)
    except ValueError as exc:
        raise InvalidAttribute(f"occi.network.address: {exc}") from exc
    if not isinstance(network, ipaddress.IPv4Network):
        raise InvalidAttribute("occi.network.address must be an IPv4 network")
    return network


def lease(
    session: Session,
    network_id: str,
    network_attributes: Mapping[str, Any],
    link_id: str,
    interface: Mapping[str, Any],
) -> Granted | None:
    """Lease an address of the network to the interface ``link_id``; None when the network
    manages no addresses.

    ``interface`` holds the interface's requested attributes: ``occi.networkinterface.address``
    asks for that address (static), otherwise the lowest free one is taken (dynamic);
    ``occi.networkinterface.mac`` keeps a MAC the client chose.
    """
    network = network_of(network_attributes)
    if network is None:
        return None
    gateway = gateway_in(network, network_attributes.get("occi.network.gateway"))
    wanted = interface.get("occi.networkinterface.address")
    allocation = "static" if wanted else "dynamic"
    if not wanted and network_attributes.get("occi.network.allocation") == "static":
        raise InvalidRequest(
            f"network {network_id} allocates static addresses only: give the interface "
            "occi.networkinterface.address"
        )
    chosen_mac = interface.get("occi.networkinterface.mac")
    if chosen_mac:
        same = select(Lease.address).where(
            Lease.network_id == network_id, Lease.mac == str(chosen_mac).lower()
        )
        if session.scalar(same) is not None:
            raise Conflict(f"MAC {chosen_mac} is in use on network {network_id} already")
    if wanted:
        address = _requested(network, gateway, str(wanted))
        if not _insert(session, network_id, address, link_id, chosen_mac):
            raise Conflict(f"address {address} of network {network_id} is leased already")
    else:
        address = _first_free(session, network_id, network, gateway, link_id, chosen_mac)
    return Granted(
        address=f"{address}/{network.prefixlen}",
        gateway=str(gateway) if gateway else None,
        mac=_mac(chosen_mac, address),
        allocation=allocation,
    )


def gateway_in(
    network: ipaddress.IPv4Network, value: object
) -> ipaddress.IPv4Address | None:
    """``occi.network.gateway`` as an address inside ``network`` (None when not given)."""
    if not value:
        return None
    try:
        gateway = ipaddress.IPv4Address(str(value))
    except ValueError as exc:
        raise InvalidAttribute(f"occi.network.gateway: {exc}") from exc
    if gateway not in network:
        raise InvalidAttribute(f"occi.network.gateway {gateway} is outside {network}")
    return gateway


def _requested(
    network: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address | None, value: str
) -> ipaddress.IPv4Address:
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError as exc:
        raise InvalidAttribute(f"occi.networkinterface.address: {exc}") from exc
    address = interface.ip
    if not isinstance(address, ipaddress.IPv4Address) or address not in network:
        raise InvalidAttribute(f"occi.networkinterface.address {value} is outside {network}")
    if "/" in value and interface.network.prefixlen != network.prefixlen:
        raise InvalidAttribute(
            f"occi.networkinterface.address {value}: the network is /{network.prefixlen}"
        )
    if network.prefixlen < 31 and address in (network.network_address, network.broadcast_address):
        raise InvalidAttribute(
            f"occi.networkinterface.address {address} is the network's "
            f"{'network' if address == network.network_address else 'broadcast'} address"
        )
    if address == gateway:
        raise Conflict(f"address {address} is the gateway of {network}")
    return address


def _first_free(
    session: Session,
    network_id: str,
    network: ipaddress.IPv4Network,
    gateway: ipaddress.IPv4Address | None,
    link_id: str,
    mac: object,
) -> ipaddress.IPv4Address:
    taken = {
        ipaddress.IPv4Address(a)
        for a in session.scalars(select(Lease.address).where(Lease.network_id == network_id))
    }
    for address in network.hosts():
        if address == gateway or address in taken:
            continue
        if _insert(session, network_id, address, link_id, mac):
            return address
        taken.add(address)  # leased meanwhile by a concurrent transaction: try the next
    raise Conflict(f"network {network_id} ({network}) has no free address left")


def _mac(chosen: object, address: ipaddress.IPv4Address) -> str:
    """The client's MAC if it chose one, else the one derived from the address."""
    return str(chosen).lower() if chosen else mac_for(address)


def _insert(
    session: Session,
    network_id: str,
    address: ipaddress.IPv4Address,
    link_id: str,
    mac: object,
) -> bool:
    """Insert the lease in a savepoint; False when the database says it is taken."""
    row = Lease(
        network_id=network_id,
        address=str(address),
        link_id=link_id,
        mac=_mac(mac, address),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def port_rules(rules: str) -> list[tuple[str, int, int]]:
    """``tcp:2222:22, udp:5353:53`` as (protocol, public port, guest port) triples."""
    out = []
    for rule in rules.replace(",", " ").split():
        parts = rule.split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise InvalidAttribute(
                f"port mapping {rule!r} is not protocol:public_port:guest_port (tcp:2222:22)"
            )
        out.append((parts[0], int(parts[1]), int(parts[2])))
    publics = [(protocol, public) for protocol, public, _ in out]
    if len(set(publics)) != len(publics):
        raise InvalidAttribute(f"port mapping {rules!r} maps one public port twice")
    return out


def port_mappings(rules: str, address: str) -> list[PortMapping]:
    """The mappings of ``rules`` to the interface at ``address`` (CIDR or plain), validated."""
    guest = address.split("/", 1)[0]
    return [PortMapping(p, public, guest, port) for p, public, port in port_rules(rules)]
