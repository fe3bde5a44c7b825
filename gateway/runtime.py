"""What a job needs at run time: the store, the configuration and one driver per host.

A worker process installs one :class:`WorkerContext` before it takes jobs; tests install
their own. Jobs read it with :func:`current`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from backends.base import HostDriver
from backends.registry import open_driver
from gateway.config import Config
from gateway.errors import BackendUnavailable, ConfigurationError
from gateway.store.db import Store
from gateway.store.models import Host


def driver_options(config: Config) -> dict[str, object]:
    """Keyword options every driver takes, from the configuration."""
    return {
        "pool_name": config.storage_pool,
        "pool_type": config.storage_pool_type,
        "pool_path": config.effective_pool_path,
        "virt_type": config.virt_type,
        "network_mode": config.network_mode,
        "bridge_device": config.network_bridge_device or None,
        "vlan_uplink": config.network_vlan_uplink or None,
        "virtual_switch": config.network_virtual_switch,
        "console_dir": str(config.data_path / "consoles"),
    }


@dataclass
class WorkerContext:
    store: Store
    config: Config
    drivers: dict[str, HostDriver] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def driver(self, host: str) -> HostDriver:
        """The driver of ``host``, opened on first use from the host registry."""
        with self._lock:
            if host in self.drivers:
                return self.drivers[host]
        with self.store.session() as session:
            row = session.get(Host, host)
            uri = row.uri if row else None
        if uri is None:
            raise BackendUnavailable(f"host {host} is not registered")
        options = driver_options(self.config)
        # The worker runs on its hypervisor host: the consoles' directory is local to it, and
        # QEMU will not start a domain whose serial log it cannot create.
        Path(str(options["console_dir"])).mkdir(parents=True, exist_ok=True)
        driver = open_driver(uri, **options)
        with self._lock:
            self.drivers.setdefault(host, driver)
            return self.drivers[host]

    def close(self) -> None:
        with self._lock:
            for driver in self.drivers.values():
                driver.close()
            self.drivers.clear()


_context: WorkerContext | None = None


def install(context: WorkerContext | None) -> None:
    global _context
    _context = context


def current() -> WorkerContext:
    if _context is None:
        raise ConfigurationError("no worker context installed: jobs run only inside `nimbo worker`")
    return _context
