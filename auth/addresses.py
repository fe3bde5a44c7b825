"""Client addresses and the address lists of settings (trusted proxies, exemptions)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from gateway.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(value: str, setting: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks (``10.0.0.0/8``) of a setting."""
    found = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigurationError(f"{setting}: {item!r} is no address or network") from exc
    return tuple(found)


def listed(address: str, among: Iterable[Network]) -> bool:
    """Whether ``address`` (IPv4-mapped IPv6 as its IPv4) is in one of ``among``."""
    return _listed(address, tuple(among))


@functools.lru_cache(maxsize=4096)  # asked several times a request, of a few addresses
def _listed(address: str, among: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in among)
