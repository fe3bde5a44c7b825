"""The registry picks the driver class by URI scheme."""

from __future__ import annotations

import pytest

from backends.memory import MemoryDriver
from backends.registry import open_driver
from gateway.errors import ConfigurationError


def test_memory_uri_opens_memory_driver() -> None:
    driver = open_driver("memory://reg?cores=3", graceful_timeout=1.0)
    assert isinstance(driver, MemoryDriver)
    assert driver.host_info().cores == 3


@pytest.mark.libvirt
def test_test_uri_opens_libvirt_driver() -> None:
    from backends.libvirt.driver import LibvirtDriver

    driver = open_driver("test:///default", pool_name="reg")
    assert isinstance(driver, LibvirtDriver)
    driver.close()


def test_unknown_scheme() -> None:
    with pytest.raises(ConfigurationError):
        open_driver("xen:///system")
