"""Driver registry: a URI scheme picks a driver class, imported only when first used."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from backends.base import HostDriver
from gateway.errors import ConfigurationError

# URI scheme prefix -> "module:Class". libvirt URIs (qemu:///system, test:///default,
# qemu+ssh://host/system) all go to the libvirt driver; memory:// is the in-memory driver.
DRIVERS: dict[str, str] = {
    "memory": "backends.memory:MemoryDriver",
    "qemu": "backends.libvirt.driver:LibvirtDriver",
    "test": "backends.libvirt.driver:LibvirtDriver",
    "kvm": "backends.libvirt.driver:LibvirtDriver",
}


def driver_class(uri: str) -> type[HostDriver]:
    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    target = DRIVERS.get(scheme)
    if target is None:
        raise ConfigurationError(f"no driver for host URI {uri!r} (known: {', '.join(DRIVERS)})")
    module_name, _, class_name = target.partition(":")
    cls: type[HostDriver] = getattr(importlib.import_module(module_name), class_name)
    return cls


def open_driver(uri: str, **options: Any) -> HostDriver:
    """Open a driver for the host at ``uri``; options are driver-specific keyword settings."""
    # every driver class takes (uri, **options); the abstract base declares no constructor
    factory: Callable[..., HostDriver] = driver_class(uri)
    return factory(uri, **options)


def shares_volumes(uri: str) -> bool:
    """Whether the host at ``uri`` can attach one volume to several domains at once (see
    :meth:`HostDriver.shares_volumes`); asked of the driver class, no connection opened."""
    return driver_class(uri).shares_volumes(uri)
