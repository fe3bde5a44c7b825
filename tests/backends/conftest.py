"""Driver factories shared by the backend tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.base import HostDriver
from backends.memory import MemoryDriver, reset_memory_hosts

HOSTS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "hosts"

# What each host file under tests/fixtures/hosts declares: (active CPUs, memory in MiB).
DECLARED_HOSTS: dict[str, tuple[int, int]] = {
    "host-a": (16, 32768),
    "host-b": (4, 8192),
    "host-c": (32, 131072),
}

DriverFactory = Callable[[str], HostDriver]


def host_file_uri(host: str) -> str:
    """``test:///<abs path>`` of a host file."""
    return f"test://{HOSTS_DIR / f'{host}.xml'}"


def _memory(host: str) -> HostDriver:
    cores, memory_mib = DECLARED_HOSTS[host]
    return MemoryDriver(f"memory://{host}?cores={cores}&memory_mib={memory_mib}")


def _libvirt_test(host: str) -> HostDriver:
    from backends.libvirt.driver import LibvirtDriver

    return LibvirtDriver(host_file_uri(host), pool_path="/srv/nimbo-test/pool", graceful_timeout=2)


FACTORIES = [
    pytest.param(_memory, id="memory"),
    pytest.param(_libvirt_test, id="libvirt-test", marks=pytest.mark.libvirt),
]


@pytest.fixture(params=FACTORIES)
def open_host(request: pytest.FixtureRequest) -> Iterator[DriverFactory]:
    """Open drivers on named hosts with one implementation; closes them afterwards."""
    factory: DriverFactory = request.param
    opened: list[HostDriver] = []

    def open_(host: str) -> HostDriver:
        driver = factory(host)
        opened.append(driver)
        return driver

    reset_memory_hosts()
    yield open_
    for driver in opened:
        driver.close()
    reset_memory_hosts()


@pytest.fixture
def driver(open_host: DriverFactory) -> HostDriver:
    """A driver on host-a."""
    return open_host("host-a")
