"""Driver factories shared by the backend tests, and the seams a contract test needs to play
the guest's part (:func:`write_console`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.base import HostDriver, domain_name
from backends.memory import MemoryDriver, reset_memory_hosts

HOSTS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "hosts"

# What each host file under tests/fixtures/hosts declares: (active CPUs, memory in MiB).
DECLARED_HOSTS: dict[str, tuple[int, int]] = {
    "host-a": (16, 32768),
    "host-b": (4, 8192),
    "host-c": (32, 131072),
}

DriverFactory = Callable[[str], HostDriver]
_Implementation = Callable[[str, Path], HostDriver]  # (host, scratch directory) -> driver


def host_file_uri(host: str) -> str:
    """``test:///<abs path>`` of a host file."""
    return f"test://{HOSTS_DIR / f'{host}.xml'}"


def _memory(host: str, _scratch: Path) -> HostDriver:
    cores, memory_mib = DECLARED_HOSTS[host]
    return MemoryDriver(f"memory://{host}?cores={cores}&memory_mib={memory_mib}")


def _libvirt_test(host: str, scratch: Path) -> HostDriver:
    from backends.libvirt.driver import LibvirtDriver

    return LibvirtDriver(
        host_file_uri(host),
        pool_path="/srv/nimbo-test/pool",
        console_dir=str(scratch / "consoles"),
        graceful_timeout=2,
    )


def write_console(driver: HostDriver, compute_id: str, data: bytes) -> None:
    """Make ``data`` what the compute's serial console printed, as its guest would have."""
    if isinstance(driver, MemoryDriver):
        driver.ex_set_console_log(compute_id, data.decode())
        return
    from backends.libvirt.driver import LibvirtDriver

    assert isinstance(driver, LibvirtDriver)
    path = Path(driver.console_dir) / f"{domain_name(compute_id)}.console.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


FACTORIES = [
    pytest.param(_memory, id="memory"),
    pytest.param(_libvirt_test, id="libvirt-test", marks=pytest.mark.libvirt),
]


@pytest.fixture(params=FACTORIES)
def open_host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DriverFactory]:
    """Open drivers on named hosts with one implementation; closes them afterwards."""
    factory: _Implementation = request.param
    opened: list[HostDriver] = []

    def open_(host: str) -> HostDriver:
        driver = factory(host, tmp_path)
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
